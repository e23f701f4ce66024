//! `classify`: request JSON on stdin -> one JSON line on stdout.
//!
//!   classify [--debug]   classify the request on stdin; exit 0 with the result, exit 1 with
//!                        {"error": ...} on stdout
//!   classify --info      print the model facts as JSON
//!   classify --bench N   (development) also classify the request N more times and print
//!                        model-load and per-request times to stderr; stdout is unchanged
//!
//! On wasm32 the same module also serves the OpenWhisk `wasm:0.1` ABI (see `classifier::abi`):
//! if the host allocated the memory buffer before `_start`, the request is taken from there.

use classifier::{classify_request, info, max_request_bytes, GuestError, Options};
use std::io::{Read, Write};

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn fail(e: GuestError) -> ! {
    emit(&e.to_json().to_string());
    std::process::exit(1);
}

fn read_stdin() -> Result<Vec<u8>, GuestError> {
    let cap = max_request_bytes();
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| GuestError::io(format!("cannot read the request from stdin: {e}")))?;
    if buf.len() > cap {
        return Err(GuestError::bad_request(format!(
            "request on stdin is over {cap} bytes; send a smaller image"
        )));
    }
    Ok(buf)
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    if classifier::abi::is_abi_mode() {
        classifier::abi::run();
        return;
    }

    // A panic is a bug; still answer with the error contract (and exit 1, not a trap).
    std::panic::set_hook(Box::new(|p| {
        emit(&serde_json::json!({ "error": format!("internal error: {p}") }).to_string());
        std::process::exit(1);
    }));

    let mut opts = Options::default();
    let mut show_info = false;
    let mut bench: Option<usize> = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--bench") => {
                bench = args.next().and_then(|n| n.to_str().and_then(|n| n.parse().ok()));
                if bench.is_none() {
                    fail(GuestError::bad_request("--bench needs a count"));
                }
            }
            Some("--debug") => opts.debug = true,
            Some("--info") => show_info = true,
            Some("--help") | Some("-h") => {
                emit("usage: classify [--debug] < request.json | classify --info");
                return;
            }
            _ => fail(GuestError::bad_request(format!(
                "unknown argument {arg:?}; usage: classify [--debug] < request.json | classify --info"
            ))),
        }
    }
    if show_info {
        emit(&info().to_string());
        return;
    }
    let request = match read_stdin() {
        Ok(r) => r,
        Err(e) => fail(e),
    };
    if let Some(n) = bench {
        run_bench(&request, opts, n);
    }
    let result = classify_request(&request, opts);
    match result {
        Ok(c) => match serde_json::to_string(&c) {
            Ok(s) => emit(&s),
            Err(e) => fail(GuestError::io(format!("cannot serialise the result: {e}"))),
        },
        Err(e) => fail(e),
    }
}

/// Timing aid for development: load time, then `n` full requests; report on stderr.
fn run_bench(request: &[u8], opts: Options, n: usize) {
    use std::time::Instant;
    let t = Instant::now();
    if let Err(e) = classifier::warm_up() {
        fail(e);
    }
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut ms: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let _ = classify_request(request, opts);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let median = ms.get(n / 2).copied().unwrap_or(f64::NAN);
    let min = ms.first().copied().unwrap_or(f64::NAN);
    eprintln!(
        "{}",
        serde_json::json!({"load_ms": load_ms, "runs": n, "median_ms": median, "min_ms": min})
    );
}

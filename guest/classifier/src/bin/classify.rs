//! `classify`: request JSON on stdin -> one JSON line on stdout.
//!
//!   classify [--debug]   classify the request on stdin; exit 0 with the result, exit 1 with
//!                        {"error": ...} on stdout
//!   classify --info      print the model facts as JSON
//!   classify --bench N   (development) also classify the request N more times and print
//!                        model-load and per-request times to stderr; stdout is unchanged
//!   classify --profile N (development) each op kind's time per inference of the request's tensor,
//!                        over N inferences, and the matmul kernels the plan runs, as one JSON line on
//!                        stderr; stdout is unchanged
//!   classify serve       (native) OpenWhisk action server on port $ACTION_PORT (8080)
//!   classify actionloop  (native) OpenWhisk actionloop protocol on stdin / fd 3
//!
//! Named `exec` (as in an OpenWhisk zip) it speaks actionloop when fd 3 is open (the Go
//! proxy's runtimes), and otherwise answers one activation as the CLI does: the value on
//! stdin, the result as the last stdout line (the docker skeleton of `--native`, which also
//! passes the value as argv[1]; that copy is ignored).
//!
//! One binary serves every native artifact (CLI, exec zip, image), so they are the same bytes
//! and one build.
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
    let cap = max_request_bytes()?;
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

const USAGE: &str = "classify [--debug] < request.json | classify --info | classify serve | \
                     classify actionloop";

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

    #[cfg(not(target_arch = "wasm32"))]
    let one_shot_exec = native_modes::dispatch();
    #[cfg(target_arch = "wasm32")]
    let one_shot_exec = false;

    let mut opts = Options::default();
    let mut show_info = false;
    let mut bench: Option<usize> = None;
    let mut profile: Option<usize> = None;
    let mut args = std::env::args_os().skip(if one_shot_exec { usize::MAX } else { 1 });
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--bench") => {
                bench = args.next().and_then(|n| n.to_str().and_then(|n| n.parse().ok()));
                if bench.is_none() {
                    fail(GuestError::bad_request("--bench needs a count"));
                }
            }
            Some("--profile") => {
                profile = args.next().and_then(|n| n.to_str().and_then(|n| n.parse().ok()));
                if profile.is_none() {
                    fail(GuestError::bad_request("--profile needs a count"));
                }
            }
            Some("--debug") => opts.debug = true,
            Some("--info") => show_info = true,
            Some("--help") | Some("-h") => {
                emit(USAGE);
                return;
            }
            _ => fail(GuestError::bad_request(format!(
                "unknown argument {arg:?}; usage: {USAGE}"
            ))),
        }
    }
    if show_info {
        match info() {
            Ok(v) => emit(&v.to_string()),
            Err(e) => fail(e),
        }
        return;
    }
    let request = match read_stdin() {
        Ok(r) => r,
        Err(e) => fail(e),
    };
    if let Some(n) = bench {
        run_bench(&request, opts, n);
    }
    if let Some(n) = profile {
        match classifier::profile_request(&request, n) {
            Ok(rows) => {
                let ops: Vec<_> = rows.iter().map(|(op, ms)| serde_json::json!([op, ms])).collect();
                let kernels = classifier::matmul_kernels().unwrap_or_else(|e| fail(e));
                let depthwise = classifier::depthwise_kernel();
                let clip = classifier::clip_kernels();
                let record = serde_json::json!({
                    "profile_runs": n, "op_ms": ops, "matmul_kernels": kernels, "depthwise_kernel": depthwise,
                    "clip_kernels": clip
                });
                eprintln!("{record}");
            }
            Err(e) => fail(e),
        }
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
    let samples = ms.clone();
    ms.sort_by(f64::total_cmp);
    let median = ms.get(n / 2).copied().unwrap_or(f64::NAN);
    let min = ms.first().copied().unwrap_or(f64::NAN);
    eprintln!(
        "{}",
        serde_json::json!({"load_ms": load_ms, "runs": n, "median_ms": median, "min_ms": min,
                           "samples_ms": samples})
    );
}

/// Native builds allocate with mimalloc: the long-lived modes keep a flat RSS with it, where glibc's
/// heap fragmented under requests of varying sizes (see guest/classifier/Cargo.toml).
#[cfg(not(target_arch = "wasm32"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The OpenWhisk modes of the native binary: picked by the first argument, or by the name
/// `exec` (the actionloop proxy runs `exec` with no arguments).
#[cfg(not(target_arch = "wasm32"))]
mod native_modes {
    use classifier::openwhisk::{actionloop, server};

    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn _exit(status: i32) -> !;
    }

    extern "C" fn exit_now(_: i32) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { _exit(0) }
    }

    /// As PID 1 of a container the server gets no default signal actions; without this,
    /// `podman stop` / the invoker would wait for their kill timeout.
    fn exit_on_sigterm() {
        // SAFETY: installing a handler that only calls _exit.
        unsafe {
            signal(15, exit_now); // SIGTERM
            signal(2, exit_now); // SIGINT
        }
    }

    pub fn dispatch() -> bool {
        let argv0 = std::env::args_os().next().unwrap_or_default();
        let named_exec = std::path::Path::new(&argv0).file_name() == Some("exec".as_ref());
        if named_exec && !actionloop::result_fd_is_open() {
            return true;
        }
        let first = std::env::args().nth(1);
        if matches!(first.as_deref(), Some("serve" | "actionloop")) || (first.is_none() && named_exec) {
            // A panic is a bug: log it; the activation answers {"error": ...} and the process
            // keeps serving (see `Activation::run`).
            std::panic::set_hook(Box::new(|p| eprintln!("{}", serde_json::json!({"error": format!("internal error: {p}")}))));
        }
        match first.as_deref() {
            Some("serve") => {
                exit_on_sigterm();
                let result = server::ServerConfig::from_env().and_then(server::serve);
                if let Err(e) = result {
                    eprintln!("{}", e.to_json());
                }
                std::process::exit(1);
            }
            Some("actionloop") => std::process::exit(actionloop::run()),
            None if named_exec => std::process::exit(actionloop::run()),
            _ => false,
        }
    }
}

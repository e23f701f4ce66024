//! `wasm-host`: runs the wasm guest the way a serverless executor does, so cold starts are timed
//! without an interpreter's start-up. Sandboxed: no preopened directories, no environment, a memory
//! cap and a wall-clock deadline.
//!
//! The deadline: this host runs one request per instance and exits when it is done, so by default a
//! watchdog thread bounds each instance and ends the process with the error contract when it fires; the
//! compiled code then carries no interruption checks (epoch checks in every loop cost the guest ~20-25 %).
//! `--epoch` instead interrupts the guest with wasmtime's epoch deadline, as a long-lived host that must
//! survive a runaway guest does; the .cwasm must have been compiled with epoch interruption for that.
//!
//!   wasm-host run MODULE [OPTIONS] [-- GUEST_ARGS...] < request.json
//!       one request in a fresh process: stdout/stderr are the guest's; exit status is the guest's
//!       (1 with an {"error"} line when the host stops the guest)
//!   wasm-host bench MODULE N [OPTIONS] < request.json
//!       load once, then N fresh instances each classifying the request; prints JSON timings
//!
//!   wasm-host attach MODULE.wasm PAYLOAD OUT.wasm
//!       build time: run the guest's `attach-model` export (Wizer) with the model payload on stdin and
//!       write the snapshot: the guest with its model in linear memory
//!   wasm-host preinit MODULE.wasm PAYLOAD OUT.wasm
//!       the same with `wizer-initialize`, which also parses and optimises the model (pre-initialised)
//!
//! OPTIONS: --simd  --epoch  --target TRIPLE --cpu-flag FLAG (repeatable; the .cwasm's declared CPU baseline: the
//!          AOT stage's arguments, toolchain/core/catalog.py AotTarget.worker_args)
//!          --memory-mb N (default 512)  --timeout-s N (default 60)  --phases (timings on stderr)
//!          --nn-model MODEL.onnx --ort-library libonnxruntime.so: offer the model to the guest over wasi-nn
//!          (`wasi_ephemeral_nn`, loaded by name "model"), in ONNX Runtime from that library (src/nn.rs)
//!
//! MODULE is a .cwasm (deserialized; compiled by wasmtime 50 with the same settings) or a .wasm
//! (compiled here, JIT). The engine settings a .cwasm records come from toolchain/core/wasmtime_engine.json,
//! compiled in: the AOT stage and the Python runtimes read the same file.

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use wasmtime::{Collector, Config, Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};
use wasmtime_wizer::Wizer;

mod nn;

const TICK: Duration = Duration::from_millis(100);
const OUTPUT_CAP: usize = 64 << 20;

struct Options {
    module: String,
    simd: bool,
    epoch: bool,
    target: Option<String>,
    cpu_flags: Vec<String>,
    memory_mb: usize,
    timeout_s: u64,
    phases: bool,
    guest_args: Vec<String>,
    count: usize,
    nn_model: Option<String>,
    ort_library: Option<String>,
}

struct Host {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
    nn: wasmtime_wasi_nn::witx::WasiNnCtx,
}

struct Outcome {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn usage() -> ! {
    eprintln!("usage: wasm-host run MODULE [--simd] [--cpu-flag F]... [--memory-mb N] [--timeout-s N] [--phases] [--nn-model M --ort-library L] [-- ARGS...] < request");
    eprintln!("       wasm-host bench MODULE N [same options] < request");
    eprintln!("       wasm-host attach|preinit MODULE.wasm PAYLOAD OUT.wasm");
    std::process::exit(2);
}

fn parse(args: &[String], bench: bool) -> Options {
    let mut it = args.iter();
    let module = it.next().cloned().unwrap_or_else(|| usage());
    let count = if bench {
        it.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| usage())
    } else {
        1
    };
    let mut o = Options {
        module,
        simd: false,
        epoch: false,
        target: None,
        cpu_flags: vec![],
        memory_mb: 512,
        timeout_s: 60,
        phases: false,
        guest_args: vec![],
        count,
        nn_model: None,
        ort_library: None,
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--simd" => o.simd = true,
            "--epoch" => o.epoch = true,
            "--phases" => o.phases = true,
            "--target" => o.target = Some(it.next().cloned().unwrap_or_else(|| usage())),
            "--cpu-flag" => o.cpu_flags.push(it.next().cloned().unwrap_or_else(|| usage())),
            "--memory-mb" => o.memory_mb = it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "--timeout-s" => o.timeout_s = it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "--nn-model" => o.nn_model = Some(it.next().cloned().unwrap_or_else(|| usage())),
            "--ort-library" => o.ort_library = Some(it.next().cloned().unwrap_or_else(|| usage())),
            "--" => o.guest_args = it.by_ref().cloned().collect(),
            _ => usage(),
        }
    }
    o
}

/// toolchain/core/wasmtime_engine.json: the settings a .cwasm records, shared with the AOT stage
/// (toolchain/hosts/wasmtime_worker.py) and the Python runtimes; any difference makes a .cwasm refuse to load.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineSettings {
    #[allow(dead_code)] // the file's own explanation
    why: String,
    relaxed_simd_with_simd: bool,
    collector: String,
}

const ENGINE_SETTINGS: &str = include_str!("../../../toolchain/core/wasmtime_engine.json");

fn engine(o: &Options) -> wasmtime::Result<Engine> {
    let settings: EngineSettings = serde_json::from_str(ENGINE_SETTINGS)?;
    let mut cfg = Config::new();
    cfg.wasm_simd(o.simd)
        .wasm_relaxed_simd(o.simd && settings.relaxed_simd_with_simd)
        .epoch_interruption(o.epoch);
    cfg.collector(match settings.collector.as_str() {
        // the only one wasmtime-py compiles with (it has no collector setting), so the only one that agrees
        "deferred-reference-counting" => Collector::DeferredReferenceCounting,
        other => wasmtime::bail!("wasmtime_engine.json: unknown collector {other:?}"),
    });
    if !o.cpu_flags.is_empty() {
        let Some(target) = &o.target else {
            wasmtime::bail!("--cpu-flag needs --target (the .cwasm's triple)");
        };
        cfg.target(target)?;
        for flag in &o.cpu_flags {
            // SAFETY: the flags describe the CPU baseline the .cwasm was compiled for; the caller
            // runs this host only on CPUs that have them (the toolchain checks the baseline).
            unsafe {
                cfg.cranelift_flag_enable(flag);
            }
        }
    }
    let engine = Engine::new(&cfg)?;
    if o.epoch {
        let ticker = engine.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(TICK);
            ticker.increment_epoch();
        });
    }
    Ok(engine)
}

fn load(engine: &Engine, path: &str) -> wasmtime::Result<Module> {
    if path.ends_with(".cwasm") {
        // SAFETY: the .cwasm comes from this toolchain's AOT stage (wasmtime 50, same settings).
        unsafe { Module::deserialize_file(engine, path) }
    } else {
        Module::from_file(engine, path)
    }
}

/// One fresh instance: WASI with only stdin/stdout/stderr and argv, capped memory, a deadline.
fn run_instance(
    engine: &Engine,
    module: &Module,
    o: &Options,
    graph: Option<&wasmtime_wasi_nn::Graph>,
    request: &[u8],
) -> wasmtime::Result<Outcome> {
    let stdout = MemoryOutputPipe::new(OUTPUT_CAP);
    let stderr = MemoryOutputPipe::new(OUTPUT_CAP);
    let mut argv = vec!["classify".to_string()];
    argv.extend(o.guest_args.iter().cloned());
    let wasi = WasiCtxBuilder::new()
        .args(&argv)
        .stdin(MemoryInputPipe::new(request.to_vec()))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build_p1();
    let limits = StoreLimitsBuilder::new().memory_size(o.memory_mb << 20).build();
    let mut store = Store::new(engine, Host { wasi, limits, nn: nn::context(graph) });
    store.limiter(|h| &mut h.limits);
    let _watchdog = if o.epoch {
        let ticks = (o.timeout_s * 1000).div_ceil(TICK.as_millis() as u64);
        store.set_epoch_deadline(ticks.max(1));
        None
    } else {
        Some(Watchdog::start(Duration::from_secs(o.timeout_s), timeout_message(o.timeout_s)))
    };
    let mut linker: Linker<Host> = Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |h| &mut h.wasi)?;
    wasmtime_wasi_nn::witx::add_to_linker(&mut linker, |h: &mut Host| &mut h.nn)?;
    let instance = linker.instantiate(&mut store, module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    let code = match start.call(&mut store, ()) {
        Ok(()) => 0,
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                exit.0
            } else if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
                return Ok(host_error(timeout_message(o.timeout_s)));
            } else {
                let first = format!("{e}");
                return Ok(host_error(format!(
                    "the guest trapped ({}); with --memory-mb {} it may have run out of memory",
                    first.lines().next().unwrap_or("trap"),
                    o.memory_mb
                )));
            }
        }
    };
    drop(store);
    Ok(Outcome { code, stdout: stdout.contents().to_vec(), stderr: stderr.contents().to_vec() })
}

fn timeout_message(timeout_s: u64) -> String {
    format!("the guest ran longer than {timeout_s} s and was stopped; raise --timeout-s if the input is legitimate")
}

/// Ends the process with the error contract unless dropped (the instance finished) within `limit`. The guest's
/// output is still in memory pipes then, so stdout carries the error line alone. One lock decides which comes
/// first: the watchdog prints and exits holding it, and the drop marks the instance finished under it, so a guest
/// that returns as the limit passes gets either its answer or the error, never both.
struct Watchdog {
    state: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Watchdog {
    fn start(limit: Duration, message: String) -> Watchdog {
        let state = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let shared = state.clone();
        std::thread::spawn(move || {
            let (finished, wake) = &*shared;
            let guard = finished.lock().unwrap_or_else(|e| e.into_inner());
            let (guard, _) = wake
                .wait_timeout_while(guard, limit, |done| !*done)
                .unwrap_or_else(|e| e.into_inner());
            if !*guard {
                let line = serde_json::json!({ "error": message }).to_string() + "\n";
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(line.as_bytes());
                let _ = out.flush();
                std::process::exit(1);
            }
        });
        Watchdog { state }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (finished, wake) = &*self.state;
        *finished.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_one();
    }
}

fn host_error(message: String) -> Outcome {
    let line = serde_json::json!({ "error": message }).to_string() + "\n";
    Outcome { code: 1, stdout: line.into_bytes(), stderr: vec![] }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn read_stdin() -> Vec<u8> {
    let mut request = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut request) {
        fail(&format!("cannot read the request from stdin: {e}"));
    }
    request
}

/// Everything the guest can observe while it initialises is fixed, so the snapshot is a function of the
/// module and the payload alone: WASI randomness comes from a constant seed (std seeds its hash maps from `random_get`
/// while tract builds the model) and relaxed SIMD is deterministic. No preopens, no environment; stdin is
/// the model payload.
fn snapshot(init_func: &str, input: &str, payload: &str, output: &str) -> wasmtime::Result<()> {
    use rand::SeedableRng;
    let wasm = std::fs::read(input).map_err(|e| wasmtime::format_err!("cannot read {input}: {e}"))?;
    let payload = std::fs::read(payload).map_err(|e| wasmtime::format_err!("cannot read {payload}: {e}"))?;
    let mut cfg = Config::new();
    cfg.wasm_simd(true).wasm_relaxed_simd(true).relaxed_simd_deterministic(true);
    let engine = Engine::new(&cfg)?;
    let wasi = WasiCtxBuilder::new()
        .stdin(MemoryInputPipe::new(payload))
        .inherit_stderr()
        .secure_random(rand::rngs::StdRng::seed_from_u64(0))
        .insecure_random(rand::rngs::StdRng::seed_from_u64(1))
        .insecure_random_seed(2)
        .build_p1();
    let mut store = Store::new(&engine, wasi);
    let snapshot = wasmtime_wasi::runtime::in_tokio(Wizer::new().init_func(init_func).run(
        &mut store,
        &wasm,
        async |store: &mut Store<WasiP1Ctx>, module: &Module| {
            let mut linker = Linker::new(store.engine());
            p1::add_to_linker_async(&mut linker, |cx| cx)?;
            // the wasi-nn module imports `wasi_ephemeral_nn`; attaching its facts never calls it
            linker.define_unknown_imports_as_traps(module)?;
            linker.instantiate_async(store, module).await
        },
    ))?;
    std::fs::write(output, snapshot).map_err(|e| wasmtime::format_err!("cannot write {output}: {e}"))?;
    Ok(())
}

fn fail(message: &str) -> ! {
    println!("{}", serde_json::json!({ "error": message }));
    std::process::exit(1);
}

fn main() {
    let process_start = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = args.split_first().unwrap_or_else(|| usage());
    let bench = match cmd.as_str() {
        "run" => false,
        "bench" => true,
        "attach" | "preinit" => match rest {
            [input, payload, output] => {
                let init_func = if cmd == "attach" { "attach-model" } else { "wizer-initialize" };
                if let Err(e) = snapshot(init_func, input, payload, output) {
                    eprintln!("wasm-host {cmd}: {e:#}");
                    std::process::exit(1);
                }
                return;
            }
            _ => usage(),
        },
        _ => usage(),
    };
    let o = parse(rest, bench);
    let request = read_stdin();
    let t = Instant::now();
    let engine = engine(&o).unwrap_or_else(|e| fail(&format!("cannot configure wasmtime: {e}")));
    let engine_ms = ms(t.elapsed());
    let t = Instant::now();
    let module = load(&engine, &o.module)
        .unwrap_or_else(|e| fail(&format!("cannot load {}: {e}; rebuild it with `invoke aot`", o.module)));
    let load_ms = ms(t.elapsed());
    let t = Instant::now();
    let graph = match (&o.nn_model, &o.ort_library) {
        (Some(model), Some(library)) => Some(nn::load_graph(model, library).unwrap_or_else(|e| fail(&e))),
        (None, None) => None,
        _ => fail("--nn-model and --ort-library go together"),
    };
    let nn_load_ms = ms(t.elapsed());

    if bench {
        let mut samples = Vec::with_capacity(o.count);
        for _ in 0..o.count {
            let t = Instant::now();
            let out = run_instance(&engine, &module, &o, graph.as_ref(), &request)
                .unwrap_or_else(|e| fail(&format!("instantiation failed: {e}")));
            if out.code != 0 {
                fail(&format!("the guest failed: {}", String::from_utf8_lossy(&out.stdout)));
            }
            samples.push(ms(t.elapsed()));
        }
        println!(
            "{}",
            serde_json::json!({"engine_ms": engine_ms, "load_module_ms": load_ms, "instance_ms": samples})
        );
        return;
    }

    let t = Instant::now();
    let out = run_instance(&engine, &module, &o, graph.as_ref(), &request)
        .unwrap_or_else(|e| fail(&format!("instantiation failed: {e}")));
    let run_ms = ms(t.elapsed());
    let _ = std::io::stdout().write_all(&out.stdout);
    let _ = std::io::stderr().write_all(&out.stderr);
    if o.phases {
        let mut phases = serde_json::json!({"engine": engine_ms, "load_module": load_ms, "instantiate_and_run": run_ms,
                                            "total_in_process": ms(process_start.elapsed())});
        if graph.is_some() {
            phases["load_nn_model"] = serde_json::json!(nn_load_ms);
        }
        eprintln!(
            "{}",
            serde_json::json!({"host_phases_ms": phases})
        );
    }
    let _ = std::io::stdout().flush();
    std::process::exit(out.code);
}

//! wasi-nn for the `wasm-wasinn` guest: the guest keeps everything that touches request bytes (JSON, base64,
//! decoders, resize, normalisation) in the sandbox and hands a fixed-shape tensor to ONNX Runtime here, through
//! wasi-nn's core-module ABI (`wasi_ephemeral_nn`, wasmtime-wasi-nn's `witx`). The host loads the model once, as
//! one graph named `GRAPH_NAME`; the guest can only ask for it by that name (no backend is registered for
//! `load`, so a guest cannot hand ONNX Runtime model bytes of its own).

use wasmtime_wasi_nn::backend::onnx::OnnxBackend;
use wasmtime_wasi_nn::backend::BackendInner as _;
use wasmtime_wasi_nn::wit::ExecutionTarget;
use wasmtime_wasi_nn::witx::WasiNnCtx;
use wasmtime_wasi_nn::{Backend, Graph, GraphRegistry, Registry};

/// The name the guest loads the model by (`guest/classifier/src/engine_wasinn.rs`).
pub const GRAPH_NAME: &str = "model";

/// ONNX Runtime from `library` (the pinned wheel's, next to the model: never downloaded), one intra-op thread as
/// the other ONNX Runtime runtimes use, then the model as one session. ort panics on a library it cannot load;
/// that becomes the error message here, not a crash.
pub fn load_graph(onnx: &str, library: &str) -> Result<Graph, String> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let loaded = std::panic::catch_unwind(|| try_load_graph(onnx, library));
    std::panic::set_hook(quiet);
    loaded.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown failure".into());
        Err(format!("cannot load ONNX Runtime from {library}: {why}"))
    })
}

fn try_load_graph(onnx: &str, library: &str) -> Result<Graph, String> {
    if !std::path::Path::new(library).is_file() {
        return Err(format!("ONNX Runtime library {library} not found; pass --ort-library with the wheel's libonnxruntime.so"));
    }
    // the path first: the thread-pool options below are the first call into (and so the load of) the library
    let environment = ort::init_from(library);
    let threads = ort::environment::GlobalThreadPoolOptions::default()
        .with_intra_threads(1)
        .map_err(|e| format!("ONNX Runtime thread pool: {e}"))?;
    environment
        .with_global_thread_pool(threads)
        .commit()
        .map_err(|e| format!("cannot load ONNX Runtime from {library}: {e}"))?;
    let bytes = std::fs::read(onnx).map_err(|e| format!("cannot read {onnx}: {e}"))?;
    OnnxBackend::default()
        .load(&[&bytes], ExecutionTarget::Cpu)
        .map_err(|e| format!("ONNX Runtime cannot load {onnx}: {e}"))
}

struct OneGraph(Option<Graph>);

impl GraphRegistry for OneGraph {
    fn get(&self, name: &str) -> Option<&Graph> {
        self.0.as_ref().filter(|_| name == GRAPH_NAME)
    }
    fn get_mut(&mut self, name: &str) -> Option<&mut Graph> {
        self.0.as_mut().filter(|_| name == GRAPH_NAME)
    }
}

/// A store's wasi-nn state: the preloaded graph (shared, not reloaded) or none.
pub fn context(graph: Option<&Graph>) -> WasiNnCtx {
    WasiNnCtx::new(Vec::<Backend>::new(), Registry::from(OneGraph(graph.cloned())))
}

//! wasi-nn for the `wasm-wasinn` guest: the guest keeps everything that touches request bytes (JSON, base64,
//! decoders, resize, normalisation) in the sandbox and hands a fixed-shape tensor to ONNX Runtime here, through
//! wasi-nn's core-module ABI (`wasi_ephemeral_nn`, wasmtime-wasi-nn's `witx`). The host loads the model once, as
//! one graph named `GRAPH_NAME`; the guest can only ask for it by that name (no backend is registered for
//! `load`, so a guest cannot hand ONNX Runtime model bytes of its own).
//!
//! The backend is this file's, not wasmtime-wasi-nn's `onnx` one: that one registers ONNX Runtime's CPU provider
//! with its arena allocator off and leaves the thread count to a process-wide pool (measured: 19.3 ms per
//! inference against 14.6 ms in `native-ort` on the same CPU). Here the session is ONNX Runtime's default CPU
//! session with one intra-op thread, as `native-ort` builds it; it takes f32 tensors at index 0 only and answers
//! anything else with a wasi-nn error (the crate's backend panics on other element types).

use std::sync::{Arc, Mutex};
use wasmtime_wasi_nn::backend::{BackendError, BackendExecutionContext, BackendGraph, Id, NamedTensor};
use wasmtime_wasi_nn::wit::TensorType;
use wasmtime_wasi_nn::witx::WasiNnCtx;
use wasmtime_wasi_nn::{Backend, ExecutionContext, Graph, GraphRegistry, Registry, Tensor};

/// The name the guest loads the model by (`guest/classifier/src/engine_wasinn.rs`).
pub const GRAPH_NAME: &str = "model";

/// ONNX Runtime from `library` (the pinned wheel's, next to the model: never downloaded), then the model as one
/// session. ort panics on a library it cannot load; that becomes the error message here, not a crash.
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
    ort::init_from(library).commit().map_err(|e| format!("cannot load ONNX Runtime from {library}: {e}"))?;
    let bytes = std::fs::read(onnx).map_err(|e| format!("cannot read {onnx}: {e}"))?;
    let session = ort::session::Session::builder()
        .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
        .and_then(|b| b.commit_from_memory(&bytes))
        .map_err(|e| format!("ONNX Runtime cannot load {onnx}: {e}"))?;
    let graph: Box<dyn BackendGraph> = Box::new(OrtGraph(Arc::new(Mutex::new(session))));
    Ok(graph.into())
}

fn access(message: String) -> BackendError {
    BackendError::BackendAccess(wasmtime::format_err!("{message}"))
}

/// One ONNX Runtime session, shared by every store's execution contexts (one inference at a time).
struct OrtGraph(Arc<Mutex<ort::session::Session>>);

// SAFETY: the session is only used behind its mutex, one thread at a time.
unsafe impl Send for OrtGraph {}
unsafe impl Sync for OrtGraph {}

impl BackendGraph for OrtGraph {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let context: Box<dyn BackendExecutionContext> =
            Box::new(OrtContext { session: self.0.clone(), input: None, output: None });
        Ok(context.into())
    }
}

struct OrtContext {
    session: Arc<Mutex<ort::session::Session>>,
    input: Option<Tensor>,
    output: Option<Tensor>,
}

// SAFETY: as for `OrtGraph`: the session behind the mutex; the tensors are plain data.
unsafe impl Send for OrtContext {}
unsafe impl Sync for OrtContext {}

fn index_zero(id: &Id, what: &str) -> Result<(), BackendError> {
    match id {
        Id::Index(0) => Ok(()),
        other => Err(access(format!("the model has one {what}, index 0 (asked for {other:?})"))),
    }
}

impl BackendExecutionContext for OrtContext {
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        index_zero(&id, "input")?;
        if tensor.ty != TensorType::Fp32 || tensor.data.len() % 4 != 0 {
            return Err(access(format!("the model takes f32 input, not {:?}", tensor.ty)));
        }
        self.input = Some(tensor.clone());
        Ok(())
    }

    fn compute(&mut self, inputs: Option<Vec<NamedTensor>>) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        if inputs.is_some() {
            return Err(access("this host offers wasi-nn to core modules only (witx)".into()));
        }
        let input = self.input.as_ref().ok_or_else(|| access("compute before set_input".into()))?;
        let values: Vec<f32> =
            input.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let shape: Vec<i64> = input.dimensions.iter().map(|&d| d as i64).collect();
        let value = ort::value::Tensor::from_array((shape, values))
            .map_err(|e| access(format!("cannot build the input tensor: {e}")))?;
        let mut session = self.session.lock().map_err(|_| access("the session is poisoned".into()))?;
        let outputs = session.run(ort::inputs![value]).map_err(|e| access(format!("inference failed: {e}")))?;
        let (shape, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| access(format!("the model's first output is not f32: {e}")))?;
        self.output = Some(Tensor {
            dimensions: shape.iter().map(|&d| d.max(1) as u32).collect(),
            ty: TensorType::Fp32,
            data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        Ok(None)
    }

    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        index_zero(&id, "output")?;
        self.output.clone().ok_or_else(|| access("get_output before compute".into()))
    }
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

//! wasi-nn as the inference engine (cargo feature `wasinn-engine`, the `wasm-wasinn` variant): everything that
//! touches the request's bytes (JSON, base64, image decoding, crop/resize/normalisation) runs here, inside the
//! sandbox; only the fixed-shape input tensor leaves it, to the model the host loaded into ONNX Runtime and
//! registered under `GRAPH_NAME` (`wasm-host --nn-model`, guest/host/src/nn.rs). The module carries no model:
//! its payload holds the model facts and labels only.

use crate::error::{GuestError, Result};
use crate::model;
use std::sync::OnceLock;
use wasi_nn::{ExecutionTarget, Graph, GraphBuilder, GraphEncoding, TensorType};

/// The name the host registers the model under (guest/host/src/nn.rs `GRAPH_NAME`).
const GRAPH_NAME: &str = "model";

static GRAPH: OnceLock<std::result::Result<Graph, String>> = OnceLock::new();

fn graph() -> Result<&'static Graph> {
    GRAPH
        .get_or_init(|| {
            GraphBuilder::new(GraphEncoding::Onnx, ExecutionTarget::CPU).build_from_cache(GRAPH_NAME).map_err(|e| {
                format!("the host offers no model {GRAPH_NAME:?} over wasi-nn ({e}); run this module in wasm-host with --nn-model")
            })
        })
        .as_ref()
        .map_err(|e| GuestError::model(e.clone()))
}

/// Look the model up now (otherwise it happens on the first request).
pub fn warm_up() -> Result<()> {
    graph().map(|_| ())
}

/// Run the model on an NHWC tensor of the config's shape; the raw first output.
pub fn run(tensor: &[f32]) -> Result<Vec<f32>> {
    let facts = model::facts()?;
    let nn = |what: &str, e: wasi_nn::Error| GuestError::model(format!("wasi-nn {what} failed: {e}"));
    let mut context = graph()?.init_execution_context().map_err(|e| nn("init_execution_context", e))?;
    context.set_input(0, TensorType::F32, &facts.input.shape, tensor).map_err(|e| nn("set_input", e))?;
    context.compute().map_err(|e| nn("compute", e))?;
    let mut out = vec![0f32; facts.output.classes];
    let bytes = context.get_output(0, &mut out).map_err(|e| nn("get_output", e))?;
    if bytes != out.len() * 4 {
        return Err(GuestError::model(format!(
            "the model's first output has {bytes} bytes; the config says {} f32 classes",
            facts.output.classes
        )));
    }
    Ok(out)
}

/// Per-op timing is tract's (`classify --profile`); the ops run in the host's ONNX Runtime here.
pub fn profile(_tensor: &[f32], _runs: usize) -> Result<Vec<(String, f64)>> {
    Err(GuestError::bad_request("--profile needs the tract engine; this build infers through wasi-nn"))
}

//! tract as the inference engine (cargo feature `tract-engine`, the default): the attached ONNX model is
//! parsed, typed and optimised once (at build time in the pre-initialised wasm guest), then run per request.

use crate::error::{GuestError, Result};
use crate::model;
use std::io::Cursor;
use std::sync::{Arc, OnceLock};
use tract_onnx::prelude::*;

type Plan = Arc<TypedRunnableModel>;

static MODEL: OnceLock<std::result::Result<Plan, String>> = OnceLock::new();

fn load_model() -> std::result::Result<Plan, String> {
    let facts = model::facts().map_err(|e| e.message)?;
    let bytes = model::onnx_bytes().map_err(|e| e.message)?;
    let plan = onnx()
        .model_for_read(&mut Cursor::new(bytes))
        .and_then(|m| m.with_input_fact(0, f32::fact(facts.input.shape).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| format!("the attached model failed to load: {e:#}"))?;
    let outs = plan
        .model()
        .output_outlets()
        .map_err(|e| format!("{e:#}"))?;
    if outs.is_empty() {
        return Err("the attached model has no outputs".into());
    }
    let fact = plan
        .model()
        .outlet_fact(outs[0])
        .map_err(|e| format!("{e:#}"))?;
    if let Some(s) = fact.shape.as_concrete() {
        let n: usize = s.iter().product();
        if n != facts.output.classes {
            return Err(format!(
                "the attached model's first output has shape {s:?} ({n} values) but the config says \
                 {} classes; attach a matching model and config",
                facts.output.classes
            ));
        }
    }
    Ok(plan)
}

fn model() -> Result<&'static Plan> {
    MODEL
        .get_or_init(load_model)
        .as_ref()
        .map_err(|e| GuestError::model(e.clone()))
}

/// Load and optimise the model now (otherwise it happens on the first request).
pub fn warm_up() -> Result<()> {
    model().map(|_| ())
}

/// Run the model on an NHWC tensor of the config's shape; the raw first output.
pub fn run(tensor: &[f32]) -> Result<Vec<f32>> {
    let plan = model()?;
    let facts = model::facts()?;
    let input = Tensor::from_shape(&facts.input.shape, tensor)
        .map_err(|e| GuestError::model(format!("cannot build input tensor: {e:#}")))?;
    let outputs = plan
        .run(tvec!(input.into_tvalue()))
        .map_err(|e| GuestError::model(format!("inference failed: {e:#}")))?;
    let first = outputs
        .first()
        .ok_or_else(|| GuestError::model("model returned no output"))?;
    let view = first
        .to_plain_array_view::<f32>()
        .map_err(|e| GuestError::model(format!("model output is not f32: {e:#}")))?;
    Ok(view.iter().copied().collect())
}

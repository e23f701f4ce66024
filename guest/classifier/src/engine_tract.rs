//! tract as the inference engine (cargo feature `tract-engine`, the default): the attached ONNX model is
//! parsed, typed and optimised once (at build time in the pre-initialised wasm guest), then run per request.

use crate::error::{GuestError, Result};
use crate::model;
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, OnceLock};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;
use tract_linalg::routines::{best_for, Func};
use tract_linalg::BinOp;

type Plan = Arc<TypedRunnableModel>;

static MODEL: OnceLock<std::result::Result<Plan, String>> = OnceLock::new();

fn load_model() -> std::result::Result<Plan, String> {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    crate::wasm_matmul::register();
    #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
    crate::wasm_depthwise::register();
    #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
    crate::wasm_clip::register();
    #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
    crate::wasm_scalar_matmul::register();
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

/// The matrix-multiplication kernels the optimised plan runs, by name, sorted and deduplicated (`classify
/// --profile` reports them: which of tract's kernels, or the guest's own, a build actually uses).
pub fn matmul_kernels() -> Result<Vec<String>> {
    let plan = model()?;
    let mut names: Vec<String> = plan
        .model()
        .nodes()
        .iter()
        .filter_map(|node| node.op_as::<OptMatMul>())
        .flat_map(|op| op.mmm.iter().map(|mmm| mmm.name().to_string()))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The f32 routine tract picks for `func` on this machine (its own, or one the guest declares), by name.
fn routine_name(func: Func) -> Option<&'static str> {
    best_for(func, DatumType::F32, &tract_linalg::isa::native()).map(|routine| routine.name())
}

/// The depthwise-convolution kernel tract picks on this machine (`classify --profile` reports it), if any.
pub fn depthwise_kernel() -> Option<&'static str> {
    routine_name(Func::DepthwiseW)
}

/// The min and max by a scalar tract picks on this machine (`classify --profile` reports them): the clip's passes.
pub fn clip_kernels() -> Vec<&'static str> {
    [BinOp::Min, BinOp::Max].into_iter().filter_map(|op| routine_name(Func::BinByScalar(op))).collect()
}

/// Where inference time goes (`classify --profile N`, development and `invoke bench`): each op kind's wall
/// time per inference over `runs` inferences of `tensor`, largest first. Timed around tract's own `eval` of
/// each node, so the sum is the inference minus the plan's bookkeeping.
pub fn profile(tensor: &[f32], runs: usize) -> Result<Vec<(String, f64)>> {
    let plan = model()?;
    let facts = model::facts()?;
    let input = Tensor::from_shape(&facts.input.shape, tensor)
        .map_err(|e| GuestError::model(format!("cannot build input tensor: {e:#}")))?;
    let mut by_op: HashMap<String, f64> = HashMap::new();
    for _ in 0..runs.max(1) {
        let mut state = plan.spawn().map_err(|e| GuestError::model(format!("{e:#}")))?;
        state
            .run_plan_with_eval(tvec!(input.clone().into_tvalue()), |ctx, op_state, node, inputs| {
                let t = std::time::Instant::now();
                let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                *by_op.entry(node.op().name().to_string()).or_default() += t.elapsed().as_secs_f64() * 1e3;
                out
            })
            .map_err(|e| GuestError::model(format!("inference failed: {e:#}")))?;
    }
    let mut rows: Vec<(String, f64)> = by_op.into_iter().map(|(op, ms)| (op, ms / runs.max(1) as f64)).collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(rows)
}

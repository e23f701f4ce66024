//! Image classifier core: request JSON in, result (or error) out. No I/O here except in
//! `openwhisk` (native only: the action server and actionloop protocols); the `classify` binary
//! (CLI, OpenWhisk `wasm:0.1` ABI, `serve`, `actionloop`) does the plumbing.
//!
//! All model facts come from the model payload attached after the build (`model`), so one build of the
//! guest serves every model.

#[cfg(target_arch = "wasm32")]
pub mod abi;
pub mod error;
mod image_input;
mod jpeg;
mod resize;
pub use resize::Resize;
pub mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod openwhisk;
mod request;
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod wasi_shim;
#[cfg(target_arch = "wasm32")]
mod snapshot_alloc;
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static GLOBAL: snapshot_alloc::SnapshotAlloc = snapshot_alloc::SnapshotAlloc;

// The inference engine is a cargo feature: tract (default; the static binary and the wasm guest) or
// ONNX Runtime (`native-ort`) or wasi-nn (`wasm-wasinn`). With none (the fuzz targets) everything up to inference is built.
#[cfg(any(
    all(feature = "tract-engine", feature = "ort-engine"),
    all(feature = "tract-engine", feature = "wasinn-engine"),
    all(feature = "ort-engine", feature = "wasinn-engine")
))]
compile_error!("choose one engine: features `tract-engine` (default), `ort-engine` and `wasinn-engine` exclude each other");
#[cfg(feature = "ort-engine")]
pub mod engine_ort;
#[cfg(feature = "tract-engine")]
mod engine_tract;
#[cfg(feature = "wasinn-engine")]
mod engine_wasinn;
#[cfg(all(feature = "tract-engine", target_arch = "wasm32", not(target_feature = "simd128")))]
mod wasm_clip;
#[cfg(all(feature = "tract-engine", target_arch = "wasm32", not(target_feature = "simd128")))]
mod wasm_depthwise;
// Also in the wasm-simd unit tests (`invoke test --wasm-unit-tests`), which check it against tract's portable kernel.
#[cfg(all(feature = "tract-engine", target_arch = "wasm32", any(test, not(target_feature = "simd128"))))]
mod wasm_scalar_matmul;
#[cfg(all(feature = "tract-engine", target_arch = "wasm32", target_feature = "simd128"))]
mod wasm_matmul;
#[cfg(feature = "ort-engine")]
use engine_ort as engine;
#[cfg(feature = "tract-engine")]
use engine_tract as engine;
#[cfg(feature = "wasinn-engine")]
use engine_wasinn as engine;
#[cfg(not(any(feature = "tract-engine", feature = "ort-engine", feature = "wasinn-engine")))]
mod engine {
    use crate::{GuestError, Result};
    pub fn warm_up() -> Result<()> {
        Ok(())
    }
    pub fn run(_tensor: &[f32]) -> Result<Vec<f32>> {
        Err(GuestError::model("this build has no inference engine"))
    }
    pub fn profile(_tensor: &[f32], _runs: usize) -> Result<Vec<(String, f64)>> {
        Err(GuestError::model("this build has no inference engine"))
    }
}

pub use error::{ErrorKind, GuestError, Result};

pub use image_input::{crop_axis, decode_image, preprocess, Rgb8};
pub use request::{prepare_request, prepare_value, Prepared};

use base64::Engine as _;
use request::{f32s_to_le, B64_OUT};
use serde::Serialize;
use serde_json::Value;

/// Per-request options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Add the `debug` object (all probabilities, decoded image, input tensor).
    pub debug: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Prediction {
    pub label: &'static str,
    pub confidence: f32,
    pub index: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DebugInfo {
    pub probabilities: Vec<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded_shape: Option<[usize; 3]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded_rgb8_b64: Option<String>,
    pub tensor_f32le_b64: String,
}

/// The result contract. Field order is the serialisation order.
#[derive(Debug, Clone, Serialize)]
pub struct Classification {
    pub label: &'static str,
    pub confidence: f32,
    pub index: usize,
    pub top5: Vec<Prediction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<DebugInfo>,
}

// ------------------------------------------------------------------------------------------
// Limits derived from the config
// ------------------------------------------------------------------------------------------

/// Number of elements of the model input tensor.
pub fn input_len() -> Result<usize> {
    model::facts().map(model::Facts::input_len)
}

/// Length of the padded base64 text of `n` bytes.
pub const fn b64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Largest request the CLI accepts on stdin: the bigger of the two payload kinds plus room for
/// a data-URI prefix, JSON syntax and extra fields.
pub fn max_request_bytes() -> Result<usize> {
    let facts = model::facts()?;
    let image = b64_len(facts.limits.max_image_bytes);
    let tensor = b64_len(facts.input_len() * 4);
    Ok(image.max(tensor) + 64 * 1024)
}

// ------------------------------------------------------------------------------------------
// Model
// ------------------------------------------------------------------------------------------

/// Load and optimise the model now (otherwise it happens on the first request).
pub fn warm_up() -> Result<()> {
    engine::warm_up()
}

/// Each op kind's wall time per inference of the request's tensor, over `runs` inferences (largest first):
/// where a target's inference time goes, for `classify --profile N`.
pub fn profile_request(request: &[u8], runs: usize) -> Result<Vec<(String, f64)>> {
    let prepared = prepare_request(request, Options::default())?;
    engine::profile(&prepared.input, runs)
}

/// The matrix-multiplication kernels the loaded model runs (tract builds; none for the other engines).
pub fn matmul_kernels() -> Result<Vec<String>> {
    #[cfg(feature = "tract-engine")]
    return engine_tract::matmul_kernels();
    #[cfg(not(feature = "tract-engine"))]
    Ok(vec![])
}

/// The depthwise-convolution kernel tract runs in this build (its own, the guest's, or none: tract then walks
/// each output point generically); tract builds only.
pub fn depthwise_kernel() -> Option<&'static str> {
    #[cfg(feature = "tract-engine")]
    return engine_tract::depthwise_kernel();
    #[cfg(not(feature = "tract-engine"))]
    None
}

/// The min and max by a scalar (the ReLU6 clip's passes) tract runs in this build; tract builds only.
pub fn clip_kernels() -> Vec<&'static str> {
    #[cfg(feature = "tract-engine")]
    return engine_tract::clip_kernels();
    #[cfg(not(feature = "tract-engine"))]
    vec![]
}

/// The engine that runs the model in this build.
pub const ENGINE: &str = if cfg!(feature = "ort-engine") {
    "onnxruntime"
} else if cfg!(feature = "wasinn-engine") {
    "wasi-nn (ONNX Runtime in the host)"
} else if cfg!(feature = "tract-engine") {
    "tract"
} else {
    "none"
};

/// Wizer's initialisation hook (`toolchain/build/preinit.py`): the model (payload on stdin) is attached,
/// parsed and optimised into linear memory, which Wizer then snapshots into the module, so instances start
/// with it ready.
#[cfg(target_arch = "wasm32")]
#[export_name = "wizer-initialize"]
pub extern "C" fn wizer_initialize() {
    // SAFETY: the engine parses the model from `onnx_bytes` inside `warm_up` and keeps no reference to them
    // (tract copies the weights into its plan); nothing else reads them.
    unsafe {
        model::preinitialise(|| {
            let _ = warm_up(); // an error stays in the engine and is reported by the first request
        });
    }
}

/// Run the model on an NHWC tensor of the config's shape; returns the probability vector.
pub fn infer(tensor: &[f32]) -> Result<Vec<f32>> {
    let facts = model::facts()?;
    if tensor.len() != facts.input_len() {
        return Err(GuestError::bad_request(format!(
            "input tensor has {} values; the model needs {:?} = {}",
            tensor.len(),
            facts.input.shape,
            facts.input_len()
        )));
    }
    let mut probs = engine::run(tensor)?;
    if probs.len() != facts.output.classes {
        return Err(GuestError::model(format!(
            "model output has {} values; the config says {} classes",
            probs.len(),
            facts.output.classes
        )));
    }
    if probs.iter().any(|p| !p.is_finite()) {
        return Err(GuestError::model("model output contains NaN or infinity"));
    }
    if !facts.output.softmax {
        softmax_in_place(&mut probs);
    }
    Ok(probs)
}

/// Softmax in f32: subtract the max, exp, divide by the sum.
pub fn softmax_in_place(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// Indices of the `k` largest values, by value descending then index ascending.
pub fn top_k(probs: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

fn prediction(facts: &'static model::Facts, probs: &[f32], index: usize) -> Prediction {
    Prediction {
        label: facts.label(index),
        confidence: probs[index],
        index,
    }
}

/// Classify one request (the JSON object described in the crate docs).
pub fn classify_request(json: &[u8], opts: Options) -> Result<Classification> {
    classify_prepared(prepare_request(json, opts)?)
}

/// Classify an already-parsed request.
pub fn classify_value(req: &Value, opts: Options) -> Result<Classification> {
    classify_prepared(prepare_value(req, opts)?)
}

fn classify_prepared(p: Prepared) -> Result<Classification> {
    let Prepared { input, decoded, debug } = p;
    let probs = infer(&input)?;
    let facts = model::facts()?;
    let k = 5.min(probs.len());
    let top5: Vec<Prediction> = top_k(&probs, k)
        .into_iter()
        .map(|i| prediction(facts, &probs, i))
        .collect();
    let best = top5[0].clone();
    let debug = debug.then(|| DebugInfo {
        decoded_shape: decoded.as_ref().map(|d| [d.height, d.width, 3]),
        decoded_rgb8_b64: decoded.as_ref().map(|d| B64_OUT.encode(&d.data)),
        tensor_f32le_b64: B64_OUT.encode(f32s_to_le(&input)),
        probabilities: probs,
    });
    Ok(Classification {
        label: best.label,
        confidence: best.confidence,
        index: best.index,
        top5,
        debug,
    })
}

/// Model facts as JSON (for `classify --info`).
pub fn info() -> Result<Value> {
    let f = model::facts()?;
    Ok(serde_json::json!({
        "model": f.model,
        "input": { "name": f.input.name, "shape": f.input.shape, "layout": "NHWC" },
        "output": {
            "name": f.output.name,
            "classes": f.output.classes,
            "softmax": f.output.softmax,
        },
        "labels": { "count": f.labels.len(), "offset": f.label_offset },
        "preprocess": {
            "central_crop": f.preprocess.central_crop,
            "resize": f.preprocess.resize.name(),
            "mean": f.preprocess.mean,
            "std": f.preprocess.std,
        },
        "limits": {
            "max_image_bytes": f.limits.max_image_bytes,
            "max_pixels": f.limits.max_pixels,
            "max_side": f.limits.max_side,
            "max_request_bytes": max_request_bytes()?,
        },
        "model_bytes": f.model_bytes,
        "target_arch": std::env::consts::ARCH,
        "engine": ENGINE,
        "simd128": cfg!(target_feature = "simd128"),
        "guest_version": env!("CARGO_PKG_VERSION"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_prob_then_index() {
        let p = [0.1, 0.3, 0.3, 0.05, 0.25];
        assert_eq!(top_k(&p, 3), vec![1, 2, 4]);
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut v = [1.0f32, 2.0, 3.0];
        softmax_in_place(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[2] > v[1] && v[1] > v[0]);
    }

    #[test]
    fn bad_requests_are_errors() {
        for req in [
            &b"[]"[..],
            b"{}",
            b"{\"image\": 1}",
            b"not json",
            b"{\"image\": \"\"}",
        ] {
            assert!(classify_request(req, Options::default()).is_err());
        }
    }
}

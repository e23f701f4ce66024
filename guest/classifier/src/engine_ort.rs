//! ONNX Runtime as the inference engine of the `native-ort` build (cargo feature `ort-engine`): the
//! same attached model, preprocessing, protocols and contracts as the tract build, only `infer`'s
//! engine differs. ONNX Runtime is loaded at start-up from the shared library the `onnxruntime`
//! wheel ships (copied next to the binary by the toolchain, or named by `ORT_DYLIB_PATH`).
//!
//! One intra-op thread per session, as tract runs: the comparison stays per core, and the server's
//! inference slots (one per core) give the parallelism. A session is not shareable for `run`, so
//! there is one per slot, created on first use.

use crate::error::{GuestError, Result};
use crate::model;
use ort::session::Session;
use ort::value::TensorRef;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// The library file name the toolchain installs next to the binary.
pub const LIBRARY_FILE: &str = "libonnxruntime.so";

static ENVIRONMENT: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();
static SESSIONS: OnceLock<Vec<Mutex<Option<Session>>>> = OnceLock::new();

fn library_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(LIBRARY_FILE)))
        .unwrap_or_else(|| PathBuf::from(LIBRARY_FILE))
}

fn environment() -> Result<&'static ort::environment::Environment> {
    ENVIRONMENT
        .get_or_init(|| {
            let path = library_path();
            ort::init_from(&path)
                .map_err(|e| {
                    format!(
                        "cannot load ONNX Runtime from {} ({e}); put the onnxruntime wheel's \
                         library there or set ORT_DYLIB_PATH",
                        path.display()
                    )
                })?
                .with_name("classifier")
                .build()
                .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))
        })
        .as_ref()
        .map_err(|e| GuestError::model(e.clone()))
}

fn new_session() -> Result<Session> {
    let env = environment()?;
    let bytes = model::onnx_bytes()?;
    Session::builder(env)
        .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
        .and_then(|mut b| b.commit_from_memory(bytes))
        .map_err(|e| GuestError::model(format!("the attached model failed to load in ONNX Runtime: {e}")))
}

fn slots() -> &'static [Mutex<Option<Session>>] {
    SESSIONS.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..n).map(|_| Mutex::new(None)).collect()
    })
}

/// Load the library and one session now (otherwise on the first request).
pub fn warm_up() -> Result<()> {
    let mut first = slots()[0].lock().unwrap_or_else(|p| p.into_inner());
    if first.is_none() {
        *first = Some(new_session()?);
    }
    Ok(())
}

/// Run the model on an NHWC tensor of the config's shape; the raw first output.
pub fn run(tensor: &[f32]) -> Result<Vec<f32>> {
    let all = slots();
    // A free slot if there is one, else wait for the first: never more sessions than cores.
    let mut guard = all
        .iter()
        .find_map(|s| s.try_lock().ok())
        .unwrap_or_else(|| all[0].lock().unwrap_or_else(|p| p.into_inner()));
    if guard.is_none() {
        *guard = Some(new_session()?);
    }
    let session = guard.as_mut().expect("set above");
    let shape: Vec<i64> = model::facts()?.input.shape.iter().map(|&d| d as i64).collect();
    let input = TensorRef::from_array_view((shape, tensor))
        .map_err(|e| GuestError::model(format!("cannot build input tensor: {e}")))?;
    let outputs = session
        .run(ort::inputs![input])
        .map_err(|e| GuestError::model(format!("inference failed: {e}")))?;
    let (_, values) = outputs[0]
        .try_extract_tensor::<f32>()
        .map_err(|e| GuestError::model(format!("model output is not f32: {e}")))?;
    Ok(values.to_vec())
}

/// Per-op timing is tract's (`classify --profile`); ONNX Runtime has its own profiler.
pub fn profile(_tensor: &[f32], _runs: usize) -> Result<Vec<(String, f64)>> {
    Err(GuestError::bad_request("--profile needs the tract engine; this build runs ONNX Runtime"))
}

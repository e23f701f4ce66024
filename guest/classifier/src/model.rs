//! The model a guest carries: attached after the build, not compiled in, so one guest build serves every
//! model (`toolchain/build/payload.py` writes the payload and attaches it).
//!
//! Payload (little-endian): `MIBMODEL` | u32 format version | u32 header length H | H bytes of header JSON
//! (the model facts: shapes, names, labels, preprocessing, limits) | the ONNX model file.
//!
//! Where it lies:
//! - native: appended to the executable, followed by a 16-byte trailer `u64 payload length` | `MIBMTAIL`;
//!   an executable without one (a base build during development, the fuzz targets) reads the payload file
//!   named by `CLASSIFIER_PAYLOAD`. A guest that carries a model ignores the variable, so a stray setting
//!   cannot swap its model.
//! - wasm: in linear memory. The toolchain runs the module's `attach-model` export under Wizer with the
//!   payload on stdin and snapshots the result, so the attached module starts with the payload in place;
//!   the pre-initialised module runs `wizer-initialize` instead, which also parses and optimises the model
//!   and then wipes the ONNX bytes (dead once loaded: Wizer would otherwise keep them as data).
//!
//! Everything is validated when the payload is read; a missing, corrupt or mismatched payload is a clear
//! `model` error of the error contract, never a panic.

use crate::jpeg;
use crate::resize::Resize;
use crate::{GuestError, Result};
use serde::Deserialize;
use std::sync::OnceLock;

pub const MAGIC: &[u8; 8] = b"MIBMODEL";
pub const FORMAT_VERSION: u32 = 1;
pub const TRAILER_MAGIC: &[u8; 8] = b"MIBMTAIL";
const PREFIX_LEN: usize = 16;

/// The model facts of the payload's header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub model: String,
    pub input: Input,
    pub output: Output,
    pub labels: Vec<String>,
    pub label_offset: usize,
    pub preprocess: Preprocess,
    pub limits: Limits,
    /// Length of the ONNX model that follows the header.
    pub model_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub name: String,
    /// NHWC, batch 1.
    pub shape: [usize; 4],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub name: String,
    pub classes: usize,
    pub softmax: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    pub central_crop: f64,
    pub resize: Resize,
    pub jpeg_decoder: jpeg::Decoder,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_image_bytes: usize,
    pub max_pixels: u64,
    pub max_side: u32,
}

impl Facts {
    /// Number of elements of the model input tensor.
    pub fn input_len(&self) -> usize {
        self.input.shape.iter().product()
    }

    /// The label of output `index`.
    pub fn label(&self, index: usize) -> &str {
        self.labels
            .get(index + self.label_offset)
            .map_or("", String::as_str)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let s = self.input.shape;
        if s[0] != 1 || s[3] != 3 || s[1] == 0 || s[2] == 0 {
            return Err(format!("input shape must be [1, H, W, 3] with H, W > 0; got {s:?}"));
        }
        // 4096² x 3 f32s is 200 MB: beyond that the input tensor alone would not fit a wasm32 guest.
        if s[1] > 1 << 12 || s[2] > 1 << 12 {
            return Err(format!("input shape {s:?} is implausibly large"));
        }
        if self.output.classes == 0 || self.output.classes > 1 << 20 {
            return Err(format!("output classes must be in 1..=2^20; got {}", self.output.classes));
        }
        let need = self.output.classes.saturating_add(self.label_offset);
        if self.labels.len() < need {
            return Err(format!(
                "{} labels; need at least classes + offset = {} + {} = {need}",
                self.labels.len(),
                self.output.classes,
                self.label_offset
            ));
        }
        let p = &self.preprocess;
        if !(p.central_crop > 0.0 && p.central_crop <= 1.0) {
            return Err(format!("central_crop must be in (0, 1]; got {}", p.central_crop));
        }
        if p.std.iter().any(|s| *s == 0.0 || !s.is_finite()) || p.mean.iter().any(|m| !m.is_finite()) {
            return Err("preprocess mean must be finite and std finite and non-zero".into());
        }
        let l = &self.limits;
        if l.max_image_bytes == 0 || l.max_pixels == 0 || l.max_side == 0 {
            return Err("limits must all be > 0".into());
        }
        if l.max_image_bytes > 1 << 30 || l.max_pixels > 1 << 30 || l.max_side > 1 << 20 {
            return Err("limits are implausibly large for a wasm32 guest".into());
        }
        Ok(())
    }
}

/// Parse and validate a payload; returns its facts and the offset of the ONNX model in it.
pub fn parse(payload: &[u8]) -> std::result::Result<(Facts, usize), String> {
    if payload.len() < PREFIX_LEN || &payload[..8] != MAGIC {
        return Err("not a model payload (no MIBMODEL header)".into());
    }
    let word = |at: usize| u32::from_le_bytes([payload[at], payload[at + 1], payload[at + 2], payload[at + 3]]);
    let version = word(8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "model payload format {version}; this guest reads format {FORMAT_VERSION} (attach the model with the \
             toolchain that built this guest)"
        ));
    }
    let header_len = word(12) as usize;
    let header = payload
        .get(PREFIX_LEN..PREFIX_LEN.saturating_add(header_len))
        .ok_or_else(|| format!("model payload is truncated: {} bytes, header says {header_len}", payload.len()))?;
    let facts: Facts =
        serde_json::from_slice(header).map_err(|e| format!("model payload header is invalid: {e}"))?;
    facts.validate().map_err(|e| format!("model payload header: {e}"))?;
    let model_at = PREFIX_LEN + header_len;
    let model_len = payload.len() - model_at;
    if model_len != facts.model_bytes {
        return Err(format!(
            "model payload holds {model_len} model bytes; its header says {} (truncated or mismatched)",
            facts.model_bytes
        ));
    }
    Ok((facts, model_at))
}

/// Read one payload from a stream into an allocation of exactly its size. In a Wizer snapshot every byte of
/// memory that is not zero is kept, so the growing buffer of `read_to_end` would leave dead copies of the model
/// behind (up to its size again).
pub fn read_payload(mut input: impl std::io::Read) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let io = |e: std::io::Error| format!("cannot read the payload: {e}");
    let mut prefix = [0u8; PREFIX_LEN];
    input.read_exact(&mut prefix).map_err(|_| "not a model payload (shorter than its header)".to_string())?;
    if &prefix[..8] != MAGIC {
        return Err("not a model payload (no MIBMODEL header)".into());
    }
    let header_len = u32::from_le_bytes([prefix[12], prefix[13], prefix[14], prefix[15]]) as usize;
    let mut head = prefix.to_vec();
    (&mut input).take(header_len as u64).read_to_end(&mut head).map_err(io)?;
    if head.len() != PREFIX_LEN + header_len {
        return Err(format!("model payload is truncated: its header says {header_len} bytes of header"));
    }
    #[derive(Deserialize)]
    struct Size {
        model_bytes: usize,
    }
    let size: Size = serde_json::from_slice(&head[PREFIX_LEN..])
        .map_err(|e| format!("model payload header is invalid: {e}"))?;
    let total = head
        .len()
        .checked_add(size.model_bytes)
        .filter(|&n| n <= 1 << 30)
        .ok_or("model payload header names an implausible model size (over 1 GiB)")?;
    let mut payload = Vec::new();
    payload
        .try_reserve_exact(total)
        .map_err(|_| format!("cannot allocate {total} bytes for the model payload"))?;
    payload.extend_from_slice(&head);
    drop(head);
    (&mut input).take(size.model_bytes as u64).read_to_end(&mut payload).map_err(io)?;
    if payload.len() != total {
        return Err(format!("model payload is truncated: its header says {} model bytes", size.model_bytes));
    }
    let mut extra = [0u8; 1];
    if input.read(&mut extra).map_err(io)? != 0 {
        return Err("model payload is longer than its header says".into());
    }
    Ok(payload)
}

/// The payload in use: its facts, and where its model bytes lie (leaked: they live as long as the process).
struct Attached {
    facts: Facts,
    model: *mut u8,
    model_len: usize,
}

// SAFETY: `model` points into a leaked allocation only read after being published through the `OnceLock`,
// and only written by `preinitialise`, whose caller guarantees no reader remains.
unsafe impl Send for Attached {}
unsafe impl Sync for Attached {}

static ATTACHED: OnceLock<std::result::Result<Attached, String>> = OnceLock::new();

fn attach(payload: Vec<u8>) -> std::result::Result<Attached, String> {
    let (facts, model_at) = parse(&payload)?;
    let leaked: &'static mut [u8] = Box::leak(payload.into_boxed_slice());
    let model = &mut leaked[model_at..];
    Ok(Attached { facts, model: model.as_mut_ptr(), model_len: model.len() })
}

#[cfg(not(target_arch = "wasm32"))]
fn find_payload() -> std::result::Result<Attached, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    match read_trailer_payload(&exe) {
        Ok(Some(payload)) => attach(payload).map_err(|e| format!("{}: {e}", exe.display())),
        Err(e) => Err(format!("{}: {e}", exe.display())),
        Ok(None) => match std::env::var_os("CLASSIFIER_PAYLOAD") {
            Some(path) => {
                let bytes = std::fs::read(&path)
                    .map_err(|e| format!("cannot read CLASSIFIER_PAYLOAD={}: {e}", path.to_string_lossy()))?;
                attach(bytes).map_err(|e| format!("{}: {e}", path.to_string_lossy()))
            }
            None => Err(format!(
                "{}: this executable carries no model (a guest base build); attach one with `invoke build`, \
                 or name a payload file with CLASSIFIER_PAYLOAD",
                exe.display()
            )),
        },
    }
}

/// The payload appended to a native executable (`None`: it carries none).
#[cfg(not(target_arch = "wasm32"))]
fn read_trailer_payload(exe: &std::path::Path) -> std::result::Result<Option<Vec<u8>>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(exe).map_err(|e| format!("cannot open: {e}"))?;
    let len = f.metadata().map_err(|e| format!("cannot stat: {e}"))?.len();
    let mut trailer = [0u8; 16];
    if len < 16 {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(len - 16))
        .and_then(|_| f.read_exact(&mut trailer))
        .map_err(|e| format!("cannot read the model trailer: {e}"))?;
    if &trailer[8..] != TRAILER_MAGIC {
        return Ok(None);
    }
    let payload_len = u64::from_le_bytes(trailer[..8].try_into().expect("8 bytes"));
    if payload_len > len - 16 {
        return Err(format!("the model trailer names {payload_len} bytes; the file has {len}"));
    }
    let mut payload = vec![0u8; payload_len as usize];
    f.seek(SeekFrom::Start(len - 16 - payload_len))
        .and_then(|_| f.read_exact(&mut payload))
        .map_err(|e| format!("cannot read the attached model: {e}"))?;
    Ok(Some(payload))
}

#[cfg(target_arch = "wasm32")]
fn find_payload() -> std::result::Result<Attached, String> {
    Err("this wasm module carries no model (a guest base build); attach one with `invoke build`".into())
}

fn attached() -> Result<&'static Attached> {
    ATTACHED
        .get_or_init(find_payload)
        .as_ref()
        .map_err(|e| GuestError::model(e.clone()))
}

/// The model facts of the attached payload.
pub fn facts() -> Result<&'static Facts> {
    attached().map(|a| &a.facts)
}

/// The attached ONNX model file (all zeros in a pre-initialised wasm module, whose engine is loaded already).
pub fn onnx_bytes() -> Result<&'static [u8]> {
    // SAFETY: a leaked allocation of `model_len` bytes (see `Attached`).
    attached().map(|a| unsafe { std::slice::from_raw_parts(a.model, a.model_len) })
}

/// Wizer: read the payload from stdin and attach it (a clear message on stderr and exit 1 if it is bad, which
/// fails the build step).
#[cfg(target_arch = "wasm32")]
fn attach_from_stdin() {
    let result = read_payload(std::io::stdin().lock()).and_then(attach);
    match result {
        Ok(a) => {
            let _ = ATTACHED.set(Ok(a));
        }
        Err(e) => {
            eprintln!("error: cannot attach the model: {e}");
            std::process::exit(1);
        }
    }
}

/// Wizer's hook for the attached module: the payload only, not yet parsed by the engine.
#[cfg(target_arch = "wasm32")]
#[export_name = "attach-model"]
pub extern "C" fn attach_model() {
    attach_from_stdin();
}

/// Wizer's hook for the pre-initialised module: attach, run `load` (parse and optimise the model into the
/// engine), then wipe the ONNX bytes so the snapshot holds the loaded model without the file it came from.
/// Blocks freed meanwhile are zeroed (`snapshot_alloc`), so the snapshot holds no dead copies either.
///
/// # Safety
/// No slice from `onnx_bytes` may outlive `load`, and none may be taken afterwards expecting the model.
#[cfg(target_arch = "wasm32")]
pub unsafe fn preinitialise(load: impl FnOnce()) {
    crate::snapshot_alloc::zeroing_freed_memory(|| {
        attach_from_stdin();
        load();
    });
    if let Some(Ok(a)) = ATTACHED.get() {
        // SAFETY: per the contract above, the bytes have no reader left.
        unsafe { std::ptr::write_bytes(a.model, 0, a.model_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(header: &str, model: &[u8]) -> Vec<u8> {
        let mut p = MAGIC.to_vec();
        p.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        p.extend_from_slice(&(header.len() as u32).to_le_bytes());
        p.extend_from_slice(header.as_bytes());
        p.extend_from_slice(model);
        p
    }

    const HEADER: &str = r#"{"model":"m","input":{"name":"x","shape":[1,4,4,3]},
        "output":{"name":"y","classes":2,"softmax":true},"labels":["a","b"],"label_offset":0,
        "preprocess":{"central_crop":1.0,"resize":"tf2-bilinear","jpeg_decoder":"pil","mean":[0,0,0],"std":[1,1,1]},
        "limits":{"max_image_bytes":10,"max_pixels":10,"max_side":10},"model_bytes":3}"#;

    #[test]
    fn a_good_payload_parses() {
        let (facts, at) = parse(&payload(HEADER, b"abc")).unwrap();
        assert_eq!(facts.input_len(), 48);
        assert_eq!(facts.label(1), "b");
        assert_eq!(at, 16 + HEADER.len());
        let p = payload(HEADER, b"abc");
        let read = read_payload(&p[..]).unwrap();
        assert_eq!(read, p);
        assert_eq!(read.capacity(), p.len());
        let mut longer = p.clone();
        longer.push(0);
        assert!(read_payload(&longer[..]).unwrap_err().contains("longer"));
        // A header that claims a huge model is refused before anything is allocated (wasm32 would abort).
        let huge = payload(&HEADER.replace("\"model_bytes\":3", "\"model_bytes\":4000000000"), b"abc");
        assert!(read_payload(&huge[..]).unwrap_err().contains("implausible"));
    }

    #[test]
    fn bad_payloads_are_errors() {
        let good = payload(HEADER, b"abc");
        assert!(parse(&good[..good.len() - 1]).unwrap_err().contains("truncated"));
        assert!(parse(b"MIBMODEL").is_err());
        assert!(parse(&payload(&HEADER.replace("\"a\",", ""), b"abc")).unwrap_err().contains("labels"));
        assert!(parse(&payload(&HEADER.replace("tf2-bilinear", "bilinear"), b"abc")).is_err());
        let mut other = good.clone();
        other[8] = 9;
        assert!(parse(&other).unwrap_err().contains("format 9"));
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
            assert!(read_payload(&good[..cut]).is_err());
        }
    }
}

//! The untrusted half of a request: JSON → fields → base64 → the model's input (via `image_input` for
//! images). Split from inference so the fuzz target (guest/fuzz) covers all of it.

use crate::image_input::{decode_image, preprocess, Rgb8};
use crate::{b64_len, model, GuestError, Options, Result};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde_json::Value;

/// Standard alphabet; padding optional when decoding.
const B64_IN: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// Standard alphabet, padded, for the debug output.
pub(crate) const B64_OUT: GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Strip an optional `data:<mime>;base64,` prefix.
fn strip_data_uri(s: &str) -> Result<&str> {
    let Some(rest) = s.strip_prefix("data:") else {
        return Ok(s);
    };
    let Some(comma) = rest.find(',') else {
        return Err(GuestError::bad_request(
            "\"image\" starts with \"data:\" but has no ','; send \"data:image/jpeg;base64,<base64>\" \
             or just the base64",
        ));
    };
    let header = &rest[..comma];
    if !header.ends_with(";base64") {
        return Err(GuestError::bad_request(
            "\"image\" is a data URI without \";base64\"; send the image bytes base64-encoded",
        ));
    }
    if !header.starts_with("image/") && header != ";base64" {
        return Err(GuestError::bad_request(format!(
            "\"image\" is a data URI of type {:?}; expected image/*",
            &header[..header.len() - 7]
        )));
    }
    Ok(&rest[comma + 1..])
}

/// Decode base64 text (standard alphabet, padding optional) whose decoded size must be at most
/// `max_bytes`; the length is checked before decoding.
fn decode_b64(field: &str, s: &str, max_bytes: usize) -> Result<Vec<u8>> {
    if s.len() > b64_len(max_bytes) {
        return Err(GuestError::bad_request(format!(
            "{field} is {} characters of base64 (about {} bytes); the limit is {max_bytes} bytes \
             ({} characters); send a smaller file",
            s.len(),
            s.len() / 4 * 3,
            b64_len(max_bytes)
        )));
    }
    let bytes = B64_IN.decode(s).map_err(|e| {
        GuestError::bad_request(format!(
            "{field} is not valid base64 ({e}); use the standard alphabet (A-Z a-z 0-9 + /), \
             no line breaks"
        ))
    })?;
    if bytes.len() > max_bytes {
        return Err(GuestError::bad_request(format!(
            "{field} decodes to {} bytes; the limit is {max_bytes}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

pub(crate) fn f32s_to_le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn tensor_from_request(t: &Value) -> Result<Vec<f32>> {
    let obj = t.as_object().ok_or_else(|| {
        GuestError::bad_request(
            "\"tensor\" must be an object {\"shape\": [...], \"f32le_b64\": \"...\"}",
        )
    })?;
    let shape = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| GuestError::bad_request("\"tensor.shape\" must be an array of integers"))?;
    let shape: Vec<u64> = shape
        .iter()
        .map(|d| d.as_u64())
        .collect::<Option<_>>()
        .ok_or_else(|| {
            GuestError::bad_request("\"tensor.shape\" must hold non-negative integers")
        })?;
    let facts = model::facts()?;
    let want: Vec<u64> = facts.input.shape.iter().map(|&d| d as u64).collect();
    if shape != want {
        return Err(GuestError::bad_request(format!(
            "\"tensor.shape\" is {shape:?}; the model needs {want:?} (NHWC)"
        )));
    }
    let b64 = obj
        .get("f32le_b64")
        .and_then(Value::as_str)
        .ok_or_else(|| GuestError::bad_request("\"tensor.f32le_b64\" must be a base64 string"))?;
    let need = facts.input_len() * 4;
    let bytes = decode_b64("\"tensor.f32le_b64\"", b64, need)?;
    if bytes.len() != need {
        return Err(GuestError::bad_request(format!(
            "\"tensor.f32le_b64\" decodes to {} bytes; shape {want:?} needs {need} (little-endian f32)",
            bytes.len()
        )));
    }
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if v.iter().any(|x| !x.is_finite()) {
        return Err(GuestError::bad_request(
            "\"tensor\" contains NaN or infinity",
        ));
    }
    Ok(v)
}

/// A request checked and turned into the model's input: everything before inference.
pub struct Prepared {
    pub input: Vec<f32>,
    pub decoded: Option<Rgb8>,
    pub debug: bool,
}

/// The untrusted half of a request: JSON → fields → base64 → image decode → preprocessing. Split from
/// inference so the fuzz target (guest/fuzz) covers all of it at thousands of inputs a second.
pub fn prepare_request(json: &[u8], opts: Options) -> Result<Prepared> {
    let req: Value = serde_json::from_slice(json).map_err(|e| {
        GuestError::bad_request(format!(
            "request is not valid JSON ({e}); send {{\"image\": \"<base64>\"}}"
        ))
    })?;
    prepare_value(&req, opts)
}

pub fn prepare_value(req: &Value, opts: Options) -> Result<Prepared> {
    let obj = req.as_object().ok_or_else(|| {
        GuestError::bad_request(
            "request must be a JSON object: {\"image\": \"<base64 JPEG/PNG/GIF/WebP>\"} or \
             {\"tensor\": {\"shape\": [...], \"f32le_b64\": \"...\"}}",
        )
    })?;
    // `"debug": true` in the request does what --debug does, for hosts that pass no flags (the
    // OpenWhisk actions); verify uses it to compare whole probability vectors.
    let debug = match obj.get("debug") {
        None | Some(Value::Bool(false)) => opts.debug,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(GuestError::bad_request("\"debug\" must be true or false")),
    };
    let (image, tensor) = (obj.get("image"), obj.get("tensor"));
    let (input, decoded) =
        match (image, tensor) {
            (Some(_), Some(_)) => {
                return Err(GuestError::bad_request(
                    "request has both \"image\" and \"tensor\"; send exactly one",
                ))
            }
            (None, None) => return Err(GuestError::bad_request(
                "request has neither \"image\" nor \"tensor\"; send {\"image\": \"<base64 of a \
                 JPEG/PNG/GIF/WebP file>\"}",
            )),
            (Some(img), None) => {
                let s = img.as_str().ok_or_else(|| {
                    GuestError::bad_request(
                        "\"image\" must be a string: the base64 of a JPEG/PNG/GIF/WebP file",
                    )
                })?;
                let facts = model::facts()?;
                let bytes = decode_b64("\"image\"", strip_data_uri(s)?, facts.limits.max_image_bytes)?;
                if bytes.is_empty() {
                    return Err(GuestError::bad_request("\"image\" is empty"));
                }
                let rgb = decode_image(&bytes)?;
                (preprocess(&rgb, facts), Some(rgb))
            }
            (None, Some(t)) => (tensor_from_request(t)?, None),
        };
    Ok(Prepared { input, decoded, debug })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uri_prefix() {
        assert_eq!(
            strip_data_uri("data:image/png;base64,QUJD").unwrap(),
            "QUJD"
        );
        assert_eq!(strip_data_uri("QUJD").unwrap(), "QUJD");
        assert!(strip_data_uri("data:text/plain;base64,QUJD").is_err());
        assert!(strip_data_uri("data:image/png,QUJD").is_err());
    }

    #[test]
    fn base64_padding_optional_and_length_checked() {
        assert_eq!(decode_b64("x", "QUI", 10).unwrap(), b"AB");
        assert_eq!(decode_b64("x", "QUI=", 10).unwrap(), b"AB");
        assert!(decode_b64("x", "QUJDREVG", 3).is_err());
        assert!(decode_b64("x", "Q!==", 10).is_err());
    }
}

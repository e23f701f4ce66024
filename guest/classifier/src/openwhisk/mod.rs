//! OpenWhisk's native action protocols around the classifier: the action-container HTTP
//! protocol (`server`, for a blackbox/docker action) and the actionloop protocol (`actionloop`,
//! for an `exec` in a zip). Both hand the activation's `value` to the same classifier and answer
//! with the same result / error contract as the CLI and the wasm guest.

pub mod actionloop;
mod http;
pub mod server;

use crate::{classify_value, GuestError, Options};
use serde_json::Value;
use std::io::Write;
use std::time::Instant;

/// OpenWhisk's payload limit is 1 MB; the envelope (activation fields, JSON escaping) needs room
/// on top. Larger bodies / lines are refused before they are read into memory.
pub const MAX_ACTIVATION_BYTES: usize = 2 * 1024 * 1024;

/// Written on stdout and stderr after every activation, so the invoker can cut the logs.
pub const ACTIVATION_SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// One activation: the action's input (`value`) and the other envelope keys as `__OW_*` pairs.
#[derive(Debug)]
pub struct Activation {
    pub value: Value,
    pub env: Vec<(String, String)>,
}

impl Activation {
    /// Split OpenWhisk's envelope `{"value": {...}, "namespace": ..., "activation_id": ...}`.
    pub fn from_envelope(body: Value) -> Result<Activation, GuestError> {
        let Value::Object(mut fields) = body else {
            return Err(GuestError::bad_request(
                "activation must be a JSON object: {\"value\": {\"image\": \"<base64>\"}, ...}",
            ));
        };
        let value = fields.remove("value").ok_or_else(|| {
            GuestError::bad_request(
                "activation has no \"value\"; send {\"value\": {\"image\": \"<base64>\"}}",
            )
        })?;
        let env = fields
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (format!("__OW_{}", k.to_ascii_uppercase()), text)
            })
            .collect();
        Ok(Activation { value, env })
    }

    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Classify `value`; the result contract or `{"error": ...}`, never a panic.
    pub fn run(&self) -> (Value, ActivationLog) {
        let started = Instant::now();
        let classify = || {
            classify_value(&self.value, Options::default()).and_then(|c| {
                serde_json::to_value(c)
                    .map_err(|e| GuestError::io(format!("cannot serialise the result: {e}")))
            })
        };
        // A panic is a bug, but one request must not take the others down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(classify))
            .unwrap_or_else(|_| Err(GuestError::model("internal error while classifying; see the logs")));
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let outcome = match &result {
            Ok(v) => Ok(v.get("label").and_then(Value::as_str).unwrap_or("").to_string()),
            Err(e) => Err(e.message.clone()),
        };
        let log = ActivationLog {
            activation_id: self.env_var("__OW_ACTIVATION_ID").unwrap_or("").to_string(),
            action_name: self.env_var("__OW_ACTION_NAME").unwrap_or("").to_string(),
            ms,
            outcome,
        };
        (result.unwrap_or_else(|e| e.to_json()), log)
    }
}

/// The one log line an activation writes (to stderr), so `wsk activation logs` shows what
/// happened and which activation it was.
#[derive(Debug)]
pub struct ActivationLog {
    pub activation_id: String,
    pub action_name: String,
    pub ms: f64,
    pub outcome: Result<String, String>,
}

impl ActivationLog {
    pub fn to_line(&self) -> String {
        let mut v = serde_json::json!({
            "activation_id": self.activation_id,
            "action_name": self.action_name,
            "ms": (self.ms * 100.0).round() / 100.0,
        });
        match &self.outcome {
            Ok(label) => v["label"] = Value::from(label.as_str()),
            Err(msg) => v["error"] = Value::from(msg.as_str()),
        }
        v.to_string()
    }
}

/// Parse a request body as JSON, with the contract's wording on failure.
pub fn parse_body(body: &[u8]) -> Result<Value, GuestError> {
    serde_json::from_slice(body).map_err(|e| {
        GuestError::bad_request(format!(
            "activation is not valid JSON ({e}); send {{\"value\": {{\"image\": \"<base64>\"}}}}"
        ))
    })
}

/// Write `text` and a newline to both streams, ignoring a closed stream (logs are best effort;
/// the answer itself goes elsewhere).
pub fn write_logs(stderr_line: Option<&str>, sentinel: bool) {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    if let Some(line) = stderr_line {
        let _ = writeln!(err, "{line}");
    }
    if sentinel {
        let _ = writeln!(out, "{ACTIVATION_SENTINEL}");
        let _ = writeln!(err, "{ACTIVATION_SENTINEL}");
    }
    let _ = out.flush();
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keys_become_ow_variables() {
        let a = Activation::from_envelope(serde_json::json!({
            "value": {"image": "x"}, "activation_id": "abc", "deadline": 123
        }))
        .unwrap();
        assert_eq!(a.env_var("__OW_ACTIVATION_ID"), Some("abc"));
        assert_eq!(a.env_var("__OW_DEADLINE"), Some("123"));
        assert_eq!(a.value, serde_json::json!({"image": "x"}));
    }

    #[test]
    fn envelope_without_value_is_an_error() {
        assert!(Activation::from_envelope(serde_json::json!({"namespace": "n"})).is_err());
        assert!(Activation::from_envelope(serde_json::json!([1, 2])).is_err());
    }
}

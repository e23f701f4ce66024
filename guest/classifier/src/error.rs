//! The guest's single error type. Every failure ends up as a human-readable message that says
//! what is wrong and what to do; nothing in the request path panics on bad input.

use std::fmt;

/// Broad class of a failure; only the message is part of the wire contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed (JSON, fields, base64, tensor shape).
    BadRequest,
    /// The image could not be decoded or is outside the configured limits.
    BadImage,
    /// The attached model is missing or bad, or failed to load or run (a build/toolchain problem, not the caller's).
    Model,
    /// Host-side plumbing (stdin, ABI buffer).
    Io,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestError {
    pub kind: ErrorKind,
    pub message: String,
}

impl GuestError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        GuestError {
            kind,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
    pub fn bad_image(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadImage, message)
    }
    pub fn model(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Model, message)
    }
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }

    /// The error contract: `{"error": "<message>"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.message })
    }
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GuestError {}

pub type Result<T> = std::result::Result<T, GuestError>;

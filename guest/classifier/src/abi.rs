//! OpenWhisk `wasm:0.1` ABI (the Wasm executor of Gackstatter's "wow" project).
//!
//! Call sequence of that executor (per activation, fresh instance):
//!   1. `wasm_memory_buffer_allocate_space(len)` with the byte length of the params JSON;
//!   2. `get_wasm_memory_buffer_pointer()`, then the host copies the JSON to that offset of
//!      the exported `memory`;
//!   3. `_start` with WASI argv = [len in decimal] (no program name; wasmer adds one, so the
//!      last argument is used);
//!   4. `get_wasm_memory_buffer_len()` and `get_wasm_memory_buffer_pointer()`; the host parses
//!      that slice as serde's `Result<Value, Value>`: `{"Ok": result}` or `{"Err": error}`.
//! The host copies into the buffer without bounds checks and unwraps the parse, so the
//! allocation must be exactly as requested and the buffer must always end up holding JSON.
//!
//! ABI mode is "the buffer was allocated before `_start`"; otherwise `classify` is a CLI.

use crate::{classify_request, GuestError, Options};
use std::sync::{Mutex, MutexGuard};

static BUFFER: Mutex<Option<Vec<u8>>> = Mutex::new(None);

fn buffer() -> MutexGuard<'static, Option<Vec<u8>>> {
    BUFFER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Host: make room for `len` bytes of request JSON (replaces any previous buffer).
#[no_mangle]
pub extern "C" fn wasm_memory_buffer_allocate_space(len: i32) {
    let len = usize::try_from(len).unwrap_or(0);
    *buffer() = Some(vec![0u8; len]);
}

/// Host: offset of the buffer in linear memory (0 if none was allocated).
#[no_mangle]
pub extern "C" fn get_wasm_memory_buffer_pointer() -> i32 {
    buffer()
        .as_mut()
        .map_or(0, |v| v.as_mut_ptr() as usize as i32)
}

/// Host: current length of the buffer's contents.
#[no_mangle]
pub extern "C" fn get_wasm_memory_buffer_len() -> i32 {
    buffer().as_ref().map_or(0, |v| v.len() as i32)
}

/// True when the host allocated the buffer before `_start` (OpenWhisk ABI mode).
pub fn is_abi_mode() -> bool {
    buffer().is_some()
}

fn request_bytes() -> Result<Vec<u8>, GuestError> {
    let guard = buffer();
    let buf = guard.as_ref().map(Vec::as_slice).unwrap_or(&[]);
    // No argument at all: the whole buffer is the request.
    let len: usize = match std::env::args_os().last() {
        None => buf.len(),
        Some(arg) => arg
            .to_str()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                GuestError::io(format!(
                    "ABI mode: last argument {arg:?} is not a request length"
                ))
            })?,
    };
    if len > buf.len() {
        return Err(GuestError::io(format!(
            "ABI mode: request length {len} exceeds the {}-byte buffer",
            buf.len()
        )));
    }
    Ok(buf[..len].to_vec())
}

/// Handle one activation: read the request from the buffer, leave the response in it.
pub fn run() {
    let result = request_bytes()
        .and_then(|req| classify_request(&req, Options::default()))
        .map_err(|e| e.to_json());
    let out = serde_json::to_vec(&result).unwrap_or_else(|e| {
        format!("{{\"Err\":{{\"error\":\"cannot serialise the result: {e}\"}}}}").into_bytes()
    });
    *buffer() = Some(out);
}

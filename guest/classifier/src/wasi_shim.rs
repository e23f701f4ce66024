//! Link shims for the wasm32-wasip1 build against Debian's wasi-libc (2022 snapshot).
//!
//! Rust's std references `realpath` (for `fs::canonicalize`) but that wasi-libc has none, so the
//! link fails with "undefined symbol: realpath". The guest never canonicalises paths (WASI has
//! no working directory to resolve against anyway), so this stand-in just fails with ENOTSUP,
//! which std reports as an ordinary `io::Error`.

use core::ffi::c_char;

/// `__WASI_ERRNO_NOTSUP` from wasi/api.h.
const ENOTSUP: i32 = 58;

extern "C" {
    static mut errno: i32;
}

#[no_mangle]
pub unsafe extern "C" fn realpath(_path: *const c_char, _resolved: *mut c_char) -> *mut c_char {
    // SAFETY: single-threaded wasm32-wasip1; `errno` is wasi-libc's plain global.
    unsafe { errno = ENOTSUP };
    core::ptr::null_mut()
}

/// The test harness (libtest) links std's thread spawning, which calls these; Debian's wasi-libc has
/// `pthread_create` (which fails) but neither of them. With one test thread libtest never spawns, so they
/// are never reached; only the guest's unit-test build for wasm has them.
#[cfg(test)]
#[no_mangle]
pub extern "C" fn pthread_detach(_thread: usize) -> i32 {
    ENOTSUP
}

#[cfg(test)]
#[no_mangle]
pub extern "C" fn pthread_join(_thread: usize, _result: *mut *mut core::ffi::c_void) -> i32 {
    ENOTSUP
}

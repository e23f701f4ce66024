//! The wasm guests' allocator: the system one (wasi-libc's dlmalloc), except that while the model is loaded
//! for a snapshot (`model::preinitialise`) a freed block is zeroed before it is freed.
//!
//! Why: Wizer snapshots every non-zero byte of linear memory, live or not. Loading a model frees more than
//! it keeps (the payload read in growing buffers, the parsed ONNX tensors, the copies made while the graph is
//! optimised); left as they were, those freed bytes made a snapshot hold 54 MB for a 24.4 MB model. Zeroed, it
//! holds what the loaded model holds (25 MB). After the snapshot is taken this costs nothing: the flag is off.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

static ZERO_ON_FREE: AtomicBool = AtomicBool::new(false);

pub struct SnapshotAlloc;

// SAFETY: every call goes to `System` with the caller's layout; zeroing writes only inside the block being
// freed, which the caller owns until `dealloc` returns.
unsafe impl GlobalAlloc for SnapshotAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(layout) }
    }

    // Out of line, as realloc: inlined, the flag's test in every `drop` made the SIMD module 4 % larger.
    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ZERO_ON_FREE.load(Ordering::Relaxed) {
            unsafe { zero(ptr, layout.size()) };
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !ZERO_ON_FREE.load(Ordering::Relaxed) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // A block that moves leaves its old bytes behind: allocate, copy, then zero and free the old one.
        // SAFETY: the caller guarantees new_size is valid for layout.align() (GlobalAlloc::realloc's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { System.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                ptr.copy_to_nonoverlapping(new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// Runs only while a snapshot is made.
#[cold]
#[inline(never)]
unsafe fn zero(ptr: *mut u8, len: usize) {
    unsafe { ptr.write_bytes(0, len) };
    // A store just before `free` is dead to the optimiser, which removed the zeroing without this: black_box
    // makes the block look read, so the zeros stay.
    std::hint::black_box(ptr);
}

/// Run `f` with freed blocks zeroed (the guest is single-threaded: no other allocation can interleave).
pub fn zeroing_freed_memory<R>(f: impl FnOnce() -> R) -> R {
    ZERO_ON_FREE.store(true, Ordering::Relaxed);
    let result = f();
    ZERO_ON_FREE.store(false, Ordering::Relaxed);
    result
}

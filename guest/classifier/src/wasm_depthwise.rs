//! The guest's depthwise-convolution kernel for wasm without SIMD (the wasm:0.1 build), plugged into tract's
//! routine registry through its public API (`tract_linalg::routines`, `Func::DepthwiseW`).
//!
//! tract has a depthwise kernel for wasm simd128 only. Without one, it computes each output point of a 3×3
//! zone through a generic walk of the valid taps (`inner_loop` in tract-core's `depth_wise.rs`): about
//! 0.6 GMAC/s under wasmtime 0.23, 47–53 of the ~300 ms a MobileNetV2 1.4 inference took for its 30 M
//! depthwise multiply-adds. Declared here, the kernel receives a row of output points at a time, and for the
//! usual 3×3 tap layout (three rows of three adjacent inputs) reads each row through one pointer, with the nine
//! taps held in registers across the row: 25 ms (interleaved runs in wasmtime 0.23, AMD EPYC). What is left is
//! mostly tract's walk over the zones and rows, and the border zones, which take the general loop.
//!
//! Each output point is the bias, then each tap's product added in the order tract gives the taps, a multiply
//! then an add: the same sums as tract's walk, bit for bit, so the build's answers do not change.

use std::hint::black_box;
use tract_onnx::prelude::tract_linalg;
use tract_onnx::tract_core::internal::inventory;
use tract_linalg::isa::IsaReq;
use tract_linalg::routines::{Func, Routine, RoutineFactory};

/// The kernel's name in tract's registry (and in `classify --profile`'s `depthwise_kernel`).
pub const NAME: &str = "mib_scalar_depthwise_w_f32";

// Generic (no architecture): tract's simd128 kernel, an architecture kernel, would outrank it, but this
// module is compiled only where that one is not.
inventory::submit! {
    Routine {
        func: Func::DepthwiseW,
        arch: None,
        isa: IsaReq::ANY,
        boost: 0,
        round_trip: false,
        factory: RoutineFactory::DepthwiseWF32 { name: NAME, run: depthwise_w },
    }
}

/// Keeps the registry entry in the link (wasm-ld drops an object nothing references). Called before the
/// model loads.
pub fn register() {
    black_box(depthwise_w as *const ());
}

/// tract's `DepthwiseWF32`: `len` output points, point `i` the bias plus every
/// `taps[t] * input[offsets[t] + i * in_stride]`.
///
/// # Safety
/// tract's contract: every `input.offset(offsets[t] + i * in_stride)` readable, `len` points writable.
unsafe fn depthwise_w(
    input: *const f32,
    output: *mut f32,
    taps: &[f32],
    offsets: &[isize],
    bias: f32,
    len: usize,
    in_stride: isize,
) {
    unsafe {
        if let (Ok(taps), Ok(offsets)) = (<&[f32; 9]>::try_from(taps), <&[isize; 9]>::try_from(offsets)) {
            if let Some(rows) = three_rows_of_three(offsets) {
                let rows = rows.map(|offset| input.offset(offset));
                return three_by_three(rows, output, taps, bias, len, in_stride);
            }
        }
        for i in 0..len {
            let at = input.offset(i as isize * in_stride);
            let mut sum = bias;
            for (tap, offset) in taps.iter().zip(offsets) {
                sum += tap * *at.offset(*offset);
            }
            *output.add(i) = sum;
        }
    }
}

/// The first offset of each row when the nine taps are three rows of three adjacent inputs (a 3×3 kernel
/// without dilation, in tract's row-major tap order).
fn three_rows_of_three(offsets: &[isize; 9]) -> Option<[isize; 3]> {
    let rows = [offsets[0], offsets[3], offsets[6]];
    let adjacent = (0..9).all(|t| offsets[t] == rows[t / 3] + (t % 3) as isize);
    adjacent.then_some(rows)
}

/// A function of its own, so the nine taps, the sum and a product are all that is live in the loop: eleven
/// registers, within the sixteen an x86-64 host gives Cranelift.
#[inline(never)]
unsafe fn three_by_three(
    rows: [*const f32; 3],
    output: *mut f32,
    taps: &[f32; 9],
    bias: f32,
    len: usize,
    in_stride: isize,
) {
    let [k0, k1, k2, k3, k4, k5, k6, k7, k8] = *taps;
    unsafe {
        for i in 0..len {
            let at = i as isize * in_stride;
            let (r0, r1, r2) = (rows[0].offset(at), rows[1].offset(at), rows[2].offset(at));
            let mut sum = bias;
            sum += k0 * *r0;
            sum += k1 * *r0.add(1);
            sum += k2 * *r0.add(2);
            sum += k3 * *r1;
            sum += k4 * *r1.add(1);
            sum += k5 * *r1.add(2);
            sum += k6 * *r2;
            sum += k7 * *r2.add(1);
            sum += k8 * *r2.add(2);
            *output.add(i) = sum;
        }
    }
}

//! The guest's min and max by a scalar for wasm without SIMD (the wasm:0.1 build): the ReLU6 clip after each
//! depthwise convolution (and after the first convolution), which tract runs as a pass of its own
//! (`OptBinChain(Max+Min)`), plugged into tract's routine registry through its public API
//! (`tract_linalg::routines`, `Func::BinByScalar`).
//!
//! tract's portable kernels compute `x.min(s)` through its element-wise frame: wasm's `f32.min`, which
//! Cranelift 0.23 lowers with its NaN and signed-zero fix-ups, over aligned blocks of 4. Here a compare and a
//! choice per element over the whole slice: the clip passes 15.0 → 9.5 ms per inference, an activation
//! 268.1 → 261.7 ms (interleaved in the wasmtime 0.23 worker, Intel Xeon). The choice keeps `f32::min`'s answer
//! for a NaN element (the scalar); only the sign of a zero equal to the bound may differ. The max by 0 (the
//! ReLU) is arithmetic instead, with no branch (`max_by_scalar`): 10.1 → 4.9 ms; a NaN passes it, and the min
//! after it gives the bound.

use std::hint::black_box;
use tract_onnx::prelude::tract_linalg;
use tract_onnx::tract_core::internal::{inventory, TensorView, TractResult};
use tract_linalg::isa::IsaReq;
use tract_linalg::routines::{Func, Routine, RoutineFactory};
use tract_linalg::{BinFn, BinOp};

/// The kernels' names in tract's registry (and in `classify --profile`'s `clip_kernels`).
pub const MIN_NAME: &str = "mib_scalar_min_by_scalar_f32";
pub const MAX_NAME: &str = "mib_scalar_max_by_scalar_f32";

// Generic (no architecture), boosted over tract's generic ones; an architecture kernel would outrank them, but
// this module is compiled only where none exists.
inventory::submit! {
    Routine {
        func: Func::BinByScalar(BinOp::Min),
        arch: None,
        isa: IsaReq::ANY,
        boost: 1,
        round_trip: false,
        factory: RoutineFactory::BinF32 { name: min_name, make: min_by_scalar },
    }
}

inventory::submit! {
    Routine {
        func: Func::BinByScalar(BinOp::Max),
        arch: None,
        isa: IsaReq::ANY,
        boost: 1,
        round_trip: false,
        factory: RoutineFactory::BinF32 { name: max_name, make: max_by_scalar },
    }
}

/// Keeps the registry entries in the link (wasm-ld drops an object nothing references). Called before the
/// model loads.
pub fn register() {
    black_box((min_by_scalar as *const (), max_by_scalar as *const ()));
}

fn min_name() -> &'static str {
    MIN_NAME
}

fn max_name() -> &'static str {
    MAX_NAME
}

fn min_by_scalar() -> Box<BinFn> {
    Box::new(|a: &mut TensorView, b: &TensorView| by_scalar(a, b, |v, s| if v < s { v } else { s }))
}

fn max_by_scalar() -> Box<BinFn> {
    Box::new(|a: &mut TensorView, b: &TensorView| {
        if b.as_slice::<f32>()?[0] == 0.0 {
            // ReLU as arithmetic, (v + |v|) / 2: the same value for any finite v (but for the sign of a zero), with
            // no branch. As a compare it was a branch that missed about as often as it went either way: half the
            // depthwise outputs are negative, in no order a predictor can learn (the clip's passes 10.1 → 4.9 ms).
            by_scalar(a, b, |v, _| (v + v.abs()) * 0.5)
        } else {
            by_scalar(a, b, |v, s| if v > s { v } else { s })
        }
    })
}

/// `a[i] = f(a[i], b[0])` for every element: a plain loop (the classifier crate is built at opt-level z, where
/// an iterator chain can stay an iterator).
#[inline(always)]
fn by_scalar(a: &mut TensorView, b: &TensorView, f: impl Fn(f32, f32) -> f32) -> TractResult<()> {
    let s = b.as_slice::<f32>()?[0];
    let values = a.as_slice_mut::<f32>()?;
    for i in 0..values.len() {
        values[i] = f(values[i], s);
    }
    Ok(())
}

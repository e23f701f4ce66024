//! The guest's f32 matmul kernel for wasm without SIMD (the wasm:0.1 build), plugged into tract's kernel
//! registry through its public API (`tract_linalg::mmm_routines`). Without SIMD tract has only its portable 4×4
//! kernel, and that is where a wasm:0.1 activation spends most of its time.
//!
//! - **4×2 sub-tiles** ([`product_4x2`]): 8 accumulators, A's four rows and B's two columns, 15 registers of
//!   the 16 an x86-64 host gives Cranelift, so nothing is spilled on a k step. tract's 4×4 keeps 16
//!   accumulators: under wasmtime 0.23 seven of them live on the stack, loaded and stored on every k step
//!   (its loop: ~80 instructions for 16 multiply-adds, this one ~34 for 8). Each sub-tile is a function of its
//!   own, called from several places so that wasm-opt does not inline it, and nothing live around it competes
//!   for the registers.
//! - **An 8×8 tile**, the widest tract is offered, so tract's shape rule picks it for every product but GEMV
//!   (n = 1 stays with tract's 4×1). A tier cannot choose it: tract hears a tier only when it names an
//!   architecture kernel. tract puts the larger side of a 1×1 convolution in the tile's rows, so MobileNetV2's
//!   columns are its channels (multiples of 8) down to 28×28, and its pixels (196, 49) below: the last column
//!   tile of a 7×7 layer computes 8 columns for 1. An 8×7 tile, which fits 49 and 196 but leaves the channels
//!   partial, came out even (interleaved, 196.3 against 195.2 ms of profile).
//! - **The op list's usual form finished in place** ([`Epilogue`]): for `Clear, AddMatMul`, then a bias, a
//!   residual, a ReLU6 and the store (every product of MobileNetV2), each 4×2 sub-tile's sums get the bias,
//!   residual and clip and go to the output as soon as they are in, by a finish compiled for that combination
//!   of ops ([`fused`]), with the ReLU as arithmetic ([`max`]). The first form of this kernel wrote the tile,
//!   then ran each op over it: at a short k (24 in the 112×112 expansion, MobileNetV2's largest product) those
//!   passes weighed as much as the product, and the ReLU's compare became a branch that missed about as often
//!   as it went either way (19 of that layer's 28.5 ms; now 18.5 in all). Any other list is run op by op
//!   ([`run_ops`]).
//! - Products are a multiply then an add, in k order, and the epilogue is tract's, in its order: the same
//!   sums as tract's portable kernel, bit for bit (but for the sign of a zero from the ReLU).
//!
//! Interleaved in the wasmtime 0.23 worker (Intel Xeon), against session 16's 8×7 kernel, which finished a
//! tile op by op: an activation 249.4 → 229.0 ms, the matmuls 167.3 → ~146 ms per inference. README, "wasm:0.1:
//! where an activation's time and the zip's bytes go", has the history.

use std::mem::MaybeUninit;
use tract_onnx::prelude::tract_linalg;
use tract_onnx::tract_core::internal::inventory;
use tract_linalg::mmm::{DynKernel, FusedKerSpec, MatMatMul, OutputStoreKer};
use tract_linalg::pack::Packing;
use tract_linalg::Scaler;

/// The kernel's name in tract's registry (and in `classify --profile`'s `matmul_kernels`).
pub const NAME: &str = "mib_scalar_f32_8x8";
const MR: usize = 8;
const NR: usize = 8;

/// One tile's accumulators, row by row.
type Tile = [[f32; NR]; MR];

fn make() -> Box<dyn MatMatMul> {
    // Generic (no architecture), as tract's portable kernels: chosen by tract's shape rule as the widest tile.
    DynKernel::<MR, NR, f32>::new(NAME, kernel, f32::packing(MR), f32::packing(NR)).mmm()
}

inventory::submit! { tract_linalg::mmm_routines::MmmRoutine { make } }

/// Keeps the registry entry in the link: wasm-ld drops an object nothing references. Called before the model
/// loads.
pub fn register() {
    std::hint::black_box(make as *const ());
}

unsafe fn kernel(spec: &[FusedKerSpec<f32>]) -> isize {
    let mut tile = MaybeUninit::<Tile>::uninit();
    unsafe {
        if let [FusedKerSpec::Clear, FusedKerSpec::AddMatMul { k, pa, pb, packing: _ }, rest @ ..] = spec {
            let (k, a, b) = (*k, *pa as *const f32, *pb as *const f32);
            if let Some(e) = Epilogue::read(rest) {
                // The usual list: each sub-tile's sums finished and stored as soon as they are in, by the
                // finish for this list's ops (one per combination, so that no choice is made per value)
                match (e.by_row, e.residual.is_some(), e.clip.is_some()) {
                    (true, false, false) => fused::<true, false, false>(k, a, b, &e),
                    (true, false, true) => fused::<true, false, true>(k, a, b, &e),
                    (true, true, false) => fused::<true, true, false>(k, a, b, &e),
                    (true, true, true) => fused::<true, true, true>(k, a, b, &e),
                    (false, false, false) => fused::<false, false, false>(k, a, b, &e),
                    (false, false, true) => fused::<false, false, true>(k, a, b, &e),
                    (false, true, false) => fused::<false, true, false>(k, a, b, &e),
                    (false, true, true) => fused::<false, true, true>(k, a, b, &e),
                }
            } else {
                // Another list: the product written into the tile from zero (no clearing it first), then the ops
                product(tile.as_mut_ptr() as *mut f32, k, a, b, false);
                run_ops(rest, tile.assume_init_mut())
            }
        } else {
            tile.write([[0.0; NR]; MR]);
            run_ops(spec, tile.assume_init_mut())
        }
    }
    0
}

/// The op list's usual form after the product: a bias by row or by column, a residual, a clip, the store.
struct Epilogue {
    /// `PerRowAdd` (the bias by row) or `PerColAdd`
    by_row: bool,
    bias: *const f32,
    residual: Option<OutputStoreKer>,
    /// `ScalarMax` then `ScalarMin` (ReLU6: 0 then 6)
    clip: Option<(f32, f32)>,
    store: OutputStoreKer,
}

impl Epilogue {
    /// The epilogue if `ops` is `(PerRowAdd | PerColAdd) AddUnicast? (ScalarMax ScalarMin)? Store Done?` on f32.
    fn read(ops: &[FusedKerSpec<f32>]) -> Option<Epilogue> {
        let (by_row, bias, mut ops) = match ops {
            [FusedKerSpec::PerRowAdd(bias), rest @ ..] => (true, *bias, rest),
            [FusedKerSpec::PerColAdd(bias), rest @ ..] => (false, *bias, rest),
            _ => return None,
        };
        let (mut residual, mut clip) = (None, None);
        if let [FusedKerSpec::AddUnicast(other), rest @ ..] = ops {
            if other.item_size != 4 {
                return None;
            }
            (residual, ops) = (Some(*other), rest);
        }
        if let [FusedKerSpec::ScalarMax(low), FusedKerSpec::ScalarMin(high), rest @ ..] = ops {
            (clip, ops) = (Some((*low, *high)), rest);
        }
        match ops {
            [FusedKerSpec::Store(store)] | [FusedKerSpec::Store(store), FusedKerSpec::Done, ..] if store.item_size == 4 => {
                Some(Epilogue { by_row, bias, residual, clip, store: *store })
            }
            _ => None,
        }
    }

    /// Finishes the 4×2 sums at (`r0`, `c0`) (row by row in `sums`) in the list's order, and stores them.
    #[inline(always)]
    unsafe fn finish<const BY_ROW: bool, const RESIDUAL: bool, const CLIP: bool>(
        &self,
        sums: &[f32; 8],
        r0: usize,
        c0: usize,
    ) {
        unsafe {
            let (low, high) = self.clip.unwrap_or((0.0, 0.0));
            for c in 0..2 {
                let to = at(&self.store, r0, c0 + c);
                let from = self.residual.as_ref().map_or(to, |other| at(other, r0, c0 + c));
                let (to_stride, from_stride) = (self.store.row_byte_stride, self.residual.map_or(0, |o| o.row_byte_stride));
                for r in 0..4 {
                    let mut v = sums[r * 2 + c] + *self.bias.add(if BY_ROW { r0 + r } else { c0 + c });
                    if RESIDUAL {
                        v += *(from.wrapping_offset(from_stride * r as isize) as *const f32);
                    }
                    if CLIP {
                        v = max(v, low);
                        v = if high < v { high } else { v };
                    }
                    *(to.wrapping_offset(to_stride * r as isize) as *mut f32) = v;
                }
            }
        }
    }
}

/// max(v, low) as the kernel's ScalarMax computes it. With low = 0 (ReLU), (v + |v|) / 2 instead of a compare:
/// the same value (but for the sign of a zero), with no branch. Half the pre-activations are negative, in no
/// order a predictor could learn, and a compare became a branch under Cranelift 0.23 that missed about as often
/// as it went either way.
#[inline(always)]
fn max(v: f32, low: f32) -> f32 {
    if low == 0.0 {
        (v + v.abs()) * 0.5
    } else if low > v {
        low
    } else {
        v
    }
}

/// The tile = A·B through its eight 4×2 sub-tiles (NR = 8), each finished and stored as soon as its sums are in.
unsafe fn fused<const BY_ROW: bool, const RESIDUAL: bool, const CLIP: bool>(
    k: usize,
    a: *const f32,
    b: *const f32,
    epilogue: &Epilogue,
) {
    unsafe {
        for r0 in [0, 4] {
            for c0 in [0, 2, 4, 6] {
                let mut sums = [0f32; 8];
                product_4x2(sums.as_mut_ptr(), 2, k, a.add(r0), b.add(c0), NR, false);
                epilogue.finish::<BY_ROW, RESIDUAL, CLIP>(&sums, r0, c0);
            }
        }
    }
}

/// The op list, op by op, on the whole tile (any list tract may send).
unsafe fn run_ops(spec: &[FusedKerSpec<f32>], tile: &mut Tile) {
    unsafe {
        for op in spec {
            match *op {
                FusedKerSpec::Done => break,
                FusedKerSpec::Clear => *tile = [[0.0; NR]; MR],
                FusedKerSpec::LoadTile(cols, _rows) => {
                    // tract's portable kernels read the column-major form
                    for (r, row) in tile.iter_mut().enumerate() {
                        for (c, v) in row.iter_mut().enumerate() {
                            *v = *cols.add(c * MR + r);
                        }
                    }
                }
                FusedKerSpec::ScalarMin(a) => each(tile, |v| if a < v { a } else { v }),
                FusedKerSpec::ScalarMax(a) => each(tile, |v| if a > v { a } else { v }),
                FusedKerSpec::ScalarAdd(a) => each(tile, |v| a + v),
                FusedKerSpec::ScalarMul(a) => each(tile, |v| a * v),
                FusedKerSpec::ScalarSub(a) => each(tile, |v| a - v),
                FusedKerSpec::ScalarSubF(a) => each(tile, |v| v - a),
                FusedKerSpec::LeakyRelu(a) => each(tile, |v| if v > 0.0 { v } else { a * v }),
                FusedKerSpec::PerRowMin(rows) => per_row(tile, rows, |s, v| if s < v { s } else { v }),
                FusedKerSpec::PerRowMax(rows) => per_row(tile, rows, |s, v| if s > v { s } else { v }),
                FusedKerSpec::PerRowAdd(rows) => per_row(tile, rows, |s, v| s + v),
                FusedKerSpec::PerRowMul(rows) => per_row(tile, rows, |s, v| s * v),
                FusedKerSpec::PerRowSub(rows) => per_row(tile, rows, |s, v| s - v),
                FusedKerSpec::PerRowSubF(rows) => per_row(tile, rows, |s, v| v - s),
                FusedKerSpec::PerColMin(cols) => per_col(tile, cols, |s, v| if s < v { s } else { v }),
                FusedKerSpec::PerColMax(cols) => per_col(tile, cols, |s, v| if s > v { s } else { v }),
                FusedKerSpec::PerColAdd(cols) => per_col(tile, cols, |s, v| s + v),
                FusedKerSpec::PerColMul(cols) => per_col(tile, cols, |s, v| s * v),
                FusedKerSpec::PerColSub(cols) => per_col(tile, cols, |s, v| s - v),
                FusedKerSpec::PerColSubF(cols) => per_col(tile, cols, |s, v| v - s),
                FusedKerSpec::QScale(shift, rp, mult) => {
                    let scaler = Scaler::from_fuse_params(shift, rp, mult);
                    each(tile, |v| v * scaler.scale)
                }
                FusedKerSpec::RoundingShiftRight(shift, _rp) => {
                    let scale = 2f32.powi(-(shift as i32));
                    each(tile, |v| v * scale)
                }
                FusedKerSpec::ShiftLeft(shift) => {
                    let scale = 2f32.powi(shift as i32);
                    each(tile, |v| v * scale)
                }
                FusedKerSpec::AddRowColProducts(rows, cols) => {
                    for (r, row) in tile.iter_mut().enumerate() {
                        for (c, v) in row.iter_mut().enumerate() {
                            *v += *rows.add(r) * *cols.add(c);
                        }
                    }
                }
                FusedKerSpec::AddUnicast(other) => {
                    let values = tile.as_mut_ptr() as *mut f32;
                    for r in 0..MR {
                        let (row, from) = (values.add(r * NR), at(&other, r, 0));
                        for c in 0..NR {
                            *row.add(c) += *(from.wrapping_offset(other.col_byte_stride * c as isize) as *const f32);
                        }
                    }
                }
                FusedKerSpec::Store(out) => {
                    let values = tile.as_ptr() as *const f32;
                    for r in 0..MR {
                        let (row, to) = (values.add(r * NR), at(&out, r, 0));
                        for c in 0..NR {
                            *(to.wrapping_offset(out.col_byte_stride * c as isize) as *mut f32) = *row.add(c);
                        }
                    }
                }
                FusedKerSpec::AddMatMul { k, pa, pb, packing: _ } => {
                    product(tile.as_mut_ptr() as *mut f32, k, pa as *const f32, pb as *const f32, true)
                }
            }
        }
    }
}

// A plain loop over the tile's 56 values: at the classifier crate's opt-level z, `iter_mut().flatten()` stays
// an iterator adapter, and a clip through it cost more than the product (~35 ms of a 112×112 expansion layer).
#[inline(always)]
fn each(tile: &mut Tile, f: impl Fn(f32) -> f32) {
    let values = tile.as_mut_ptr() as *mut f32;
    for i in 0..MR * NR {
        // SAFETY: the tile is MR * NR contiguous f32
        unsafe { *values.add(i) = f(*values.add(i)) };
    }
}

// Plain loops on pointers, as `each`: the classifier crate's opt-level z keeps `iter_mut().enumerate()` an iterator.
#[inline(always)]
unsafe fn per_row(tile: &mut Tile, rows: *const f32, f: impl Fn(f32, f32) -> f32) {
    let values = tile.as_mut_ptr() as *mut f32;
    for r in 0..MR {
        unsafe {
            let (s, row) = (*rows.add(r), values.add(r * NR));
            for c in 0..NR {
                *row.add(c) = f(s, *row.add(c));
            }
        }
    }
}

#[inline(always)]
unsafe fn per_col(tile: &mut Tile, cols: *const f32, f: impl Fn(f32, f32) -> f32) {
    let values = tile.as_mut_ptr() as *mut f32;
    for r in 0..MR {
        unsafe {
            let row = values.add(r * NR);
            for c in 0..NR {
                *row.add(c) = f(*cols.add(c), *row.add(c));
            }
        }
    }
}

#[inline(always)]
fn at(tile: &OutputStoreKer, r: usize, c: usize) -> *mut u8 {
    tile.ptr.wrapping_offset(tile.row_byte_stride * r as isize + tile.col_byte_stride * c as isize)
}

/// tile = A·B, or tile += A·B with `accumulate`: A packed [k][MR], B packed [k][NR], in 4×2 sub-tiles.
unsafe fn product(t: *mut f32, k: usize, a: *const f32, b: *const f32, accumulate: bool) {
    unsafe {
        for r0 in [0, 4] {
            for c0 in [0, 2, 4, 6] {
                product_4x2(t.add(r0 * NR + c0), NR, k, a.add(r0), b.add(c0), NR, accumulate);
            }
        }
    }
}

/// The 4×2 sums at `c` (row stride `cs`) += 4 rows of A (stride MR per k) · 2 columns of B (stride `bs` per k).
/// Named locals, not an indexed array: at the classifier crate's opt-level z, LLVM keeps an array in memory.
/// A function of its own, called from nine places so that wasm-opt does not inline it (inlined, Cranelift
/// spilled the accumulators).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
unsafe fn product_4x2(c: *mut f32, cs: usize, k: usize, mut a: *const f32, mut b: *const f32, bs: usize, accumulate: bool) {
    unsafe {
        let (r0, r1, r2, r3) = (c, c.add(cs), c.add(2 * cs), c.add(3 * cs));
        let (mut c00, mut c01, mut c10, mut c11) = (0f32, 0f32, 0f32, 0f32);
        let (mut c20, mut c21, mut c30, mut c31) = (0f32, 0f32, 0f32, 0f32);
        if accumulate {
            (c00, c01, c10, c11) = (*r0, *r0.add(1), *r1, *r1.add(1));
            (c20, c21, c30, c31) = (*r2, *r2.add(1), *r3, *r3.add(1));
        }
        for _ in 0..k {
            let (b0, b1) = (*b, *b.add(1));
            let (a0, a1, a2, a3) = (*a, *a.add(1), *a.add(2), *a.add(3));
            c00 += a0 * b0;
            c01 += a0 * b1;
            c10 += a1 * b0;
            c11 += a1 * b1;
            c20 += a2 * b0;
            c21 += a2 * b1;
            c30 += a3 * b0;
            c31 += a3 * b1;
            a = a.add(MR);
            b = b.add(bs);
        }
        (*r0, *r0.add(1), *r1, *r1.add(1)) = (c00, c01, c10, c11);
        (*r2, *r2.add(1), *r3, *r3.add(1)) = (c20, c21, c30, c31);
    }
}

//! The guest's f32 matmul kernel for wasm without SIMD (the wasm:0.1 build), plugged into tract's kernel
//! registry through its public API (`tract_linalg::mmm_routines` for the kernel, `mmm_tiers` for the choice).
//! Without SIMD tract has only its portable 4×4 kernel, and that is where a wasm:0.1 activation spends most of
//! its time.
//!
//! - **4×2 sub-tiles** ([`product_4x2`]): 8 accumulators, A's four rows and B's two columns, 15 registers of
//!   the 16 an x86-64 host gives Cranelift, so nothing is spilled on a k step. tract's 4×4 keeps 16
//!   accumulators: under wasmtime 0.23 seven of them live on the stack, loaded and stored on every k step
//!   (its loop: ~80 instructions for 16 multiply-adds, this one ~34 for 8). Each sub-tile is a function of its
//!   own, called from several places so that wasm-opt does not inline it, and nothing live around it competes
//!   for the registers.
//! - **An 8×7 tile.** tract calls the kernel once per tile, and that call has a fixed cost (its tile driver,
//!   then the op list). Every product of MobileNetV2 has M (output channels) a multiple of 8 and N (pixels:
//!   112², 56², 28², 14², 7²) a multiple of 7, so no tile is partial; other shapes are right too, through
//!   tract's scratch tile for the edges.
//! - **Every product but GEMV** ([`preferred`], a tier above tract's generic one, which would name its 4×4):
//!   GEMV (n = 1) stays with tract's 4×1.
//! - **The op list's usual form read once** ([`kernel`]): `Clear, AddMatMul` writes the product into the tile
//!   from zero, and the epilogue ops (bias, residual, clip, store) are plain loops on pointers. With a short k
//!   (24 in the 112×112 expansion, MobileNetV2's largest product) the epilogue weighs as much as the product:
//!   done op by op through iterator adapters (which opt-level z keeps) or per element through a match on the
//!   op list, it made this kernel slower than tract's there (37 and 43 against 29 ms); now they are even.
//! - Products are a multiply then an add, in k order, and the epilogue is tract's, in its order: the same
//!   sums as tract's portable kernel, bit for bit.
//!
//! Interleaved in the wasmtime 0.23 worker (Intel Xeon): matmuls 187.9 → 168.8 ms per inference, an activation
//! 262.9 → 248.0 ms; with the epilogue as above and every product, the profile's total 225.9 → 220.0 ms.
//! README, "wasm:0.1: where an activation's time and the zip's bytes go", has the history.

use std::mem::MaybeUninit;
use tract_onnx::prelude::tract_linalg;
use tract_onnx::tract_core::internal::inventory;
use tract_linalg::isa::IsaSet;
use tract_linalg::mmm::{DynKernel, FusedKerSpec, MatMatMul, OutputStoreKer, Query, Suitable};
use tract_linalg::pack::Packing;
use tract_linalg::Scaler;
use tract_onnx::prelude::DatumType;

/// The kernel's name in tract's registry (and in `classify --profile`'s `matmul_kernels`).
pub const NAME: &str = "mib_scalar_f32_8x7";
const MR: usize = 8;
const NR: usize = 7;

/// One tile's accumulators, row by row.
type Tile = [[f32; NR]; MR];

fn make() -> Box<dyn MatMatMul> {
    // Generic (no architecture): the tier below chooses it; GEMV (n = 1) stays tract's.
    DynKernel::<MR, NR, f32>::new(NAME, kernel, f32::packing(MR), f32::packing(NR)).mmm()
}

inventory::submit! { tract_linalg::mmm_routines::MmmRoutine { make } }

fn preferred(_isa: &IsaSet, dt: DatumType, query: &Query, _suitable: &[Suitable]) -> Option<&'static str> {
    match (dt, query.n) {
        (DatumType::F32, Some(n)) if n > 1 => Some(NAME),
        _ => None,
    }
}

// Asked before tract's generic tier (precedence 0), which takes whatever this one declines.
inventory::submit! {
    tract_linalg::mmm_tiers::MmmTier {
        arch: None,
        precedence: 1,
        name: "mib-scalar",
        applies: |_| true,
        preferred,
    }
}

/// Keeps the registry entry in the link: wasm-ld drops an object nothing references. Called before the model
/// loads.
pub fn register() {
    std::hint::black_box((make as *const (), preferred as *const ()));
}

unsafe fn kernel(spec: &[FusedKerSpec<f32>]) -> isize {
    let mut tile = MaybeUninit::<Tile>::uninit();
    unsafe {
        if let [FusedKerSpec::Clear, FusedKerSpec::AddMatMul { k, pa, pb, packing: _ }, rest @ ..] = spec {
            // The usual list: the product written into the tile from zero (no clearing it first)
            product(tile.as_mut_ptr() as *mut f32, *k, *pa as *const f32, *pb as *const f32, false);
            run_ops(rest, tile.assume_init_mut())
        } else {
            tile.write([[0.0; NR]; MR]);
            run_ops(spec, tile.assume_init_mut())
        }
    }
    0
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

/// tile = A·B, or tile += A·B with `accumulate`: A packed [k][8], B packed [k][7], in 4×2 sub-tiles (the last
/// column 4×1). Each sub-tile is a call of its own (eight call sites, so wasm-opt does not inline them: inlined
/// into this body, Cranelift spilled the accumulators).
unsafe fn product(t: *mut f32, k: usize, a: *const f32, b: *const f32, accumulate: bool) {
    unsafe {
        product_4x2(t, k, a, b, accumulate);
        product_4x2(t.add(2), k, a, b.add(2), accumulate);
        product_4x2(t.add(4), k, a, b.add(4), accumulate);
        product_4x1(t.add(6), k, a, b.add(6), accumulate);
        product_4x2(t.add(4 * NR), k, a.add(4), b, accumulate);
        product_4x2(t.add(4 * NR + 2), k, a.add(4), b.add(2), accumulate);
        product_4x2(t.add(4 * NR + 4), k, a.add(4), b.add(4), accumulate);
        product_4x1(t.add(4 * NR + 6), k, a.add(4), b.add(6), accumulate);
    }
}

/// The 4×2 sub-tile at `c` (row stride NR) += 4 rows of A (stride MR per k) · 2 columns of B (stride NR per k).
/// Named locals, not an indexed array: at the classifier crate's opt-level z, LLVM keeps an array in memory.
#[inline(never)]
unsafe fn product_4x2(c: *mut f32, k: usize, mut a: *const f32, mut b: *const f32, accumulate: bool) {
    unsafe {
        let (r0, r1, r2, r3) = (c, c.add(NR), c.add(2 * NR), c.add(3 * NR));
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
            b = b.add(NR);
        }
        (*r0, *r0.add(1), *r1, *r1.add(1)) = (c00, c01, c10, c11);
        (*r2, *r2.add(1), *r3, *r3.add(1)) = (c20, c21, c30, c31);
    }
}

/// The 4×1 sub-tile at `c` (row stride NR) += 4 rows of A · 1 column of B.
#[inline(never)]
unsafe fn product_4x1(c: *mut f32, k: usize, mut a: *const f32, mut b: *const f32, accumulate: bool) {
    unsafe {
        let (r0, r1, r2, r3) = (c, c.add(NR), c.add(2 * NR), c.add(3 * NR));
        let (mut c0, mut c1, mut c2, mut c3) = (0f32, 0f32, 0f32, 0f32);
        if accumulate {
            (c0, c1, c2, c3) = (*r0, *r1, *r2, *r3);
        }
        for _ in 0..k {
            let b0 = *b;
            c0 += *a * b0;
            c1 += *a.add(1) * b0;
            c2 += *a.add(2) * b0;
            c3 += *a.add(3) * b0;
            a = a.add(MR);
            b = b.add(NR);
        }
        (*r0, *r1, *r2, *r3) = (c0, c1, c2, c3);
    }
}

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

// In the wasm-simd unit tests only the tests use it.
#![cfg_attr(target_feature = "simd128", allow(dead_code))]

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

/// Every op list against tract's portable 4×4 kernel run over the tile's four 4×4 blocks: the same values (the
/// fused finish's ReLU may differ in the sign of a zero, which `==` does not see). Compiled into the wasm-simd
/// unit tests (`invoke test --wasm-unit-tests`), where tract's architecture kernels, not this generic one, serve
/// the model.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tract_linalg::generic::mmm::generic_f32_4x4;
    use tract_linalg::mmm::{MatMatMulKer, RoundingPolicy};

    /// Every op that changes the tile in place, by scalars and by the tile's `rows` and `cols` values: what a
    /// kernel's op-by-op path must run as tract's portable kernel does (this module's tests and wasm_matmul's).
    pub(crate) fn elementwise_ops(rows: *const f32, cols: *const f32) -> [FusedKerSpec<f32>; 19] {
        [
            FusedKerSpec::ScalarAdd(0.5),
            FusedKerSpec::ScalarMul(1.5),
            FusedKerSpec::ScalarSub(0.25),
            FusedKerSpec::ScalarSubF(0.75),
            FusedKerSpec::LeakyRelu(0.125),
            FusedKerSpec::PerRowMul(rows),
            FusedKerSpec::PerRowSub(rows),
            FusedKerSpec::PerRowSubF(rows),
            FusedKerSpec::PerRowMax(rows),
            FusedKerSpec::PerRowMin(rows),
            FusedKerSpec::PerColMul(cols),
            FusedKerSpec::PerColSub(cols),
            FusedKerSpec::PerColSubF(cols),
            FusedKerSpec::PerColMax(cols),
            FusedKerSpec::PerColMin(cols),
            FusedKerSpec::AddRowColProducts(rows, cols),
            FusedKerSpec::ShiftLeft(2),
            FusedKerSpec::RoundingShiftRight(1, RoundingPolicy::Even),
            FusedKerSpec::QScale(3, RoundingPolicy::Even, 1 << 30),
        ]
    }

    /// Test values: quarters in -2..2, so the sums of products over k steps are exact.
    pub(crate) fn value(seed: usize) -> f32 {
        ((seed * 7919 + 13) % 17) as f32 / 4.0 - 2.0
    }

    /// The inputs of one 8×8 tile, and its C in one layout: (row stride, column stride) in elements.
    struct Case {
        k: usize,
        layout: (usize, usize),
        a: Vec<f32>,             // packed [k][8]
        b: Vec<f32>,             // packed [k][8]
        a_blocks: Vec<Vec<f32>>, // packed [k][4] per 4 rows, as the 4×4 kernel reads A
        b_blocks: Vec<Vec<f32>>, // packed [k][4] per 4 columns
        rows: Vec<f32>,
        cols: Vec<f32>,
        tile_cols: Vec<f32>, // an 8×8 tile column-major (LoadTile, as tract's portable kernels read it)
        d: Vec<f32>,         // what AddUnicast reads, in C's layout
        c: Vec<f32>,
    }

    /// 4 of every 8 values per k step, from `first`: one 4-wide panel of an 8-wide one.
    fn block(packed: &[f32], k: usize, first: usize) -> Vec<f32> {
        (0..4 * k).map(|i| packed[(i / 4) * 8 + first + i % 4]).collect()
    }

    impl Case {
        fn new(k: usize, layout: (usize, usize)) -> Case {
            let a: Vec<f32> = (0..8 * k).map(value).collect();
            let b: Vec<f32> = (0..8 * k).map(|i| value(i + 1000)).collect();
            let len = 7 * layout.0 + 7 * layout.1 + 1;
            Case {
                k,
                layout,
                a_blocks: vec![block(&a, k, 0), block(&a, k, 4)],
                b_blocks: vec![block(&b, k, 0), block(&b, k, 4)],
                a,
                b,
                rows: (0..8).map(|r| value(r + 2000)).collect(),
                cols: (0..8).map(|c| value(c + 3000)).collect(),
                tile_cols: (0..64).map(|i| value(i + 4000)).collect(),
                d: (0..len).map(|i| value(i + 6000)).collect(),
                c: (0..len).map(|i| value(i + 5000)).collect(),
            }
        }

        /// C (or D) from row `r`, column `c` on, in this case's layout.
        fn at(&self, base: *const f32, r: usize, c: usize) -> OutputStoreKer {
            let (rows, cols) = self.layout;
            OutputStoreKer {
                ptr: unsafe { base.add(r * rows + c * cols) } as *mut u8,
                row_byte_stride: 4 * rows as isize,
                col_byte_stride: 4 * cols as isize,
                item_size: 4,
            }
        }
    }

    /// Where one op list applies: the whole 8×8 tile (ours) or one 4×4 block of it (tract's).
    struct Part<'a> {
        case: &'a Case,
        /// the block's first row and column (0 for the whole tile)
        r: usize,
        c: usize,
        pa: *const f32,
        pb: *const f32,
        /// the tile LoadTile reads, column-major (8 or 4 rows)
        tile: Vec<f32>,
    }

    impl Part<'_> {
        fn product(&self) -> FusedKerSpec<f32> {
            FusedKerSpec::AddMatMul { k: self.case.k, pa: self.pa as *const u8, pb: self.pb as *const u8, packing: 0 }
        }
        fn rows(&self) -> *const f32 {
            unsafe { self.case.rows.as_ptr().add(self.r) }
        }
        fn cols(&self) -> *const f32 {
            unsafe { self.case.cols.as_ptr().add(self.c) }
        }
        fn store(&self, c: *mut f32) -> FusedKerSpec<f32> {
            FusedKerSpec::Store(self.case.at(c, self.r, self.c))
        }
        fn residual(&self) -> FusedKerSpec<f32> {
            FusedKerSpec::AddUnicast(self.case.at(self.case.d.as_ptr(), self.r, self.c))
        }
    }

    type Ops = dyn Fn(&Part, *mut f32) -> Vec<FusedKerSpec<f32>>;

    fn check(name: &str, ops: &Ops) {
        for k in [1, 5, 24] {
            for layout in [(8, 1), (1, 8), (17, 3)] {
                let case = Case::new(k, layout);
                let mut ours = case.c.clone();
                let tile = case.tile_cols.clone();
                let whole = Part { case: &case, r: 0, c: 0, pa: case.a.as_ptr(), pb: case.b.as_ptr(), tile };
                assert_eq!(unsafe { kernel(&ops(&whole, ours.as_mut_ptr())) }, 0);
                let mut theirs = case.c.clone();
                for (rb, cb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let (pa, pb) = (case.a_blocks[rb].as_ptr(), case.b_blocks[cb].as_ptr());
                    let tile = (0..16).map(|i| case.tile_cols[(4 * cb + i / 4) * 8 + 4 * rb + i % 4]).collect();
                    let part = Part { case: &case, r: 4 * rb, c: 4 * cb, pa, pb, tile };
                    assert_eq!(generic_f32_4x4.kernel(&ops(&part, theirs.as_mut_ptr())), 0);
                }
                assert!(ours == theirs, "{name}: k = {k}, layout {layout:?}");
            }
        }
    }

    /// The usual list in every combination the fused finish compiles: a bias by row or by column, a residual or
    /// not, no clip, a ReLU6 (the arithmetic max) or a clip from another bound (the compare).
    #[test]
    fn the_usual_lists() {
        for by_row in [false, true] {
            for residual in [false, true] {
                for clip in [None, Some((0.0, 1.5)), Some((-0.5, 1.5))] {
                    let name = format!("by row {by_row}, residual {residual}, clip {clip:?}");
                    check(&name, &move |p, c| {
                        let mut ops = vec![FusedKerSpec::Clear, p.product()];
                        ops.push(if by_row { FusedKerSpec::PerRowAdd(p.rows()) } else { FusedKerSpec::PerColAdd(p.cols()) });
                        if residual {
                            ops.push(p.residual());
                        }
                        if let Some((low, high)) = clip {
                            ops.extend([FusedKerSpec::ScalarMax(low), FusedKerSpec::ScalarMin(high)]);
                        }
                        ops.extend([p.store(c), FusedKerSpec::Done]);
                        ops
                    });
                }
            }
        }
    }

    /// A list the fused finish does not take (no bias), and one starting with LoadTile, with every op and two
    /// products: op by op on the tile.
    #[test]
    fn every_other_op() {
        check("no bias", &|p, c| vec![FusedKerSpec::Clear, p.product(), FusedKerSpec::ScalarMax(0.0), p.store(c), FusedKerSpec::Done]);
        check("every op", &|p, c| {
            let mut ops = vec![FusedKerSpec::LoadTile(p.tile.as_ptr(), std::ptr::null()), p.product()];
            ops.extend(elementwise_ops(p.rows(), p.cols()));
            ops.extend([p.residual(), p.product(), p.store(c), FusedKerSpec::Done]);
            ops
        });
    }
}

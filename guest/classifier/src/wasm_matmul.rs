//! A 4×8 f32 matmul kernel for wasm simd128, plugged into tract's kernel registry through its public API
//! (`tract_linalg::mmm_routines` for the kernel, `mmm_tiers` for the choice), so tract picks it for the f32
//! matrix products with a long enough k ([`MIN_K`]); short k and GEMV stay with tract's own kernels.
//!
//! Why not tract's `wasm_f32_8x8`: its 16 accumulators plus operands need more than the 16 vector
//! registers an x86-64 host gives Cranelift, and inside the kernel's dispatch loop about ten of them were
//! spilled to the stack and reloaded on every k step (wasmtime's jitdump under `perf annotate`). Here the
//! tile has 8 accumulators, A's four rows are broadcast from one load by shuffles, and every use of a B
//! vector is its own load, which Cranelift folds into the multiply (`vmulps xmm, xmm, [mem]`), so the
//! k loop needs 11 registers and spills nothing. Stand-alone, with operands in L1, this loop ran at ~20
//! GMAC/s against ~17 for the 8×8 one (AMD EPYC, wasmtime 50; README, "Distance to the machine's limit").
//!
//! The arms other than `AddMatMul` follow tract-linalg 0.23.9's `wasm_f32_4x16` (MIT/Apache-2.0) with the
//! row width cut to two vectors; a `Store` or `AddUnicast` whose columns are contiguous moves whole vectors.
//! Products are a multiply then an add (no FMA), as tract's simd128 kernels compute them, so the results
//! equal the 8×8 kernel's up to the order of the k-sum, which is the same.

use std::arch::wasm32::*;
use tract_onnx::prelude::tract_linalg;
use tract_onnx::tract_core::internal::inventory;
use tract_linalg::isa::{Arch, IsaSet};
use tract_linalg::mmm::{DynKernel, FusedKerSpec, MatMatMul, Query, Suitable};
use tract_linalg::pack::Packing;
use tract_linalg::Scaler;
use tract_onnx::prelude::DatumType;

/// The kernel's name in tract's registry (and in `classify --profile`'s `matmul_kernels`).
pub const KERNEL_NAME: &str = "mib_wasm_f32_4x8";
const MR: usize = 4;
const NV: usize = 2; // v128 per row: NR = 8

fn make() -> Box<dyn MatMatMul> {
    let mut kernel = DynKernel::<MR, 8, f32>::new(KERNEL_NAME, kernel_f32_4x8, f32::packing(MR), f32::packing(8));
    kernel.arch = Some(Arch::Wasm32Simd128);
    kernel.mmm()
}

/// The smallest k this kernel takes. Below it tract's 8×8 kernel stays faster: a 4×8 tile does half the
/// work of an 8×8 one for the same fixed cost per tile (tract's tile driver, the fused bias, clip and store),
/// and with a short k loop that cost dominates. Measured per layer of MobileNetV2 1.4 (`classify --profile`,
/// AMD EPYC, wasmtime 50): the 4×8 tile lost at k = 24…136 (the expansion convolutions, up to 12 % slower)
/// and won at k = 144…1344 (the projections and the late expansions, 2–15 % faster).
pub const MIN_K: usize = 144;

/// tract's wasm tier has precedence 1; this one is asked first, claims f32 matrix products with a known k of
/// at least [`MIN_K`], and leaves everything else (GEMV, short k, unknown k) to tract's tier.
fn preferred(_isa: &IsaSet, dt: DatumType, query: &Query, _suitable: &[Suitable]) -> Option<&'static str> {
    match (dt, query.n, query.k) {
        (DatumType::F32, Some(1), _) => None,
        (DatumType::F32, _, Some(k)) if k >= MIN_K => Some(KERNEL_NAME),
        _ => None,
    }
}

inventory::submit! { tract_linalg::mmm_routines::MmmRoutine { make } }

inventory::submit! {
    tract_linalg::mmm_tiers::MmmTier {
        arch: Some(Arch::Wasm32Simd128),
        precedence: 2,
        name: "mib-wasm-simd128",
        applies: |_| true,
        preferred,
    }
}

/// Keeps this module's registry entries in the link: wasm-ld drops an object nothing references, and the
/// entries with it (tract-linalg does the same for its own wasm kernels). Called before the model loads.
pub fn register() {
    std::hint::black_box((make as *const (), preferred as *const ()));
}

#[inline(always)]
unsafe fn each(acc: &mut [v128; MR * NV], f: impl Fn(v128) -> v128) {
    for v in acc.iter_mut() {
        *v = f(*v);
    }
}

#[inline(always)]
unsafe fn per_row(acc: &mut [v128; MR * NV], rows: *const f32, f: impl Fn(v128, v128) -> v128) {
    for r in 0..MR {
        let s = f32x4_splat(*rows.add(r));
        for j in 0..NV {
            acc[r * NV + j] = f(s, acc[r * NV + j]);
        }
    }
}

#[inline(always)]
unsafe fn per_col(acc: &mut [v128; MR * NV], cols: *const f32, f: impl Fn(v128, v128) -> v128) {
    let p = cols as *const v128;
    for r in 0..MR {
        for j in 0..NV {
            acc[r * NV + j] = f(v128_load(p.add(j)), acc[r * NV + j]);
        }
    }
}

unsafe fn kernel_f32_4x8(spec: &[FusedKerSpec<f32>]) -> isize {
    let mut acc = [f32x4_splat(0.0); MR * NV];
    for op in spec {
        match *op {
            FusedKerSpec::Done => break,
            FusedKerSpec::Clear => acc = [f32x4_splat(0.0); MR * NV],
            FusedKerSpec::LoadTile(_cols, rows) => {
                let p = rows as *const v128;
                for (i, v) in acc.iter_mut().enumerate() {
                    *v = v128_load(p.add(i));
                }
            }
            FusedKerSpec::ScalarMin(a) => each(&mut acc, |v| f32x4_min(f32x4_splat(a), v)),
            FusedKerSpec::ScalarMax(a) => each(&mut acc, |v| f32x4_max(f32x4_splat(a), v)),
            FusedKerSpec::ScalarAdd(a) => each(&mut acc, |v| f32x4_add(f32x4_splat(a), v)),
            FusedKerSpec::ScalarMul(a) => each(&mut acc, |v| f32x4_mul(f32x4_splat(a), v)),
            FusedKerSpec::ScalarSub(a) => each(&mut acc, |v| f32x4_sub(f32x4_splat(a), v)),
            FusedKerSpec::ScalarSubF(a) => each(&mut acc, |v| f32x4_sub(v, f32x4_splat(a))),
            FusedKerSpec::LeakyRelu(a) => each(&mut acc, |v| {
                let positive = f32x4_gt(v, f32x4_splat(0.0));
                v128_bitselect(v, f32x4_mul(f32x4_splat(a), v), positive)
            }),
            FusedKerSpec::PerRowMin(rows) => per_row(&mut acc, rows, |s, v| f32x4_min(s, v)),
            FusedKerSpec::PerRowMax(rows) => per_row(&mut acc, rows, |s, v| f32x4_max(s, v)),
            FusedKerSpec::PerRowAdd(rows) => per_row(&mut acc, rows, |s, v| f32x4_add(s, v)),
            FusedKerSpec::PerRowMul(rows) => per_row(&mut acc, rows, |s, v| f32x4_mul(s, v)),
            FusedKerSpec::PerRowSub(rows) => per_row(&mut acc, rows, |s, v| f32x4_sub(s, v)),
            FusedKerSpec::PerRowSubF(rows) => per_row(&mut acc, rows, |s, v| f32x4_sub(v, s)),
            FusedKerSpec::PerColMin(cols) => per_col(&mut acc, cols, |c, v| f32x4_min(c, v)),
            FusedKerSpec::PerColMax(cols) => per_col(&mut acc, cols, |c, v| f32x4_max(c, v)),
            FusedKerSpec::PerColAdd(cols) => per_col(&mut acc, cols, |c, v| f32x4_add(c, v)),
            FusedKerSpec::PerColMul(cols) => per_col(&mut acc, cols, |c, v| f32x4_mul(c, v)),
            FusedKerSpec::PerColSub(cols) => per_col(&mut acc, cols, |c, v| f32x4_sub(c, v)),
            FusedKerSpec::PerColSubF(cols) => per_col(&mut acc, cols, |c, v| f32x4_sub(v, c)),
            FusedKerSpec::QScale(shift, rp, mult) => {
                let scale = Scaler::from_fuse_params(shift, rp, mult).scale;
                each(&mut acc, |v| f32x4_mul(f32x4_splat(scale), v))
            }
            FusedKerSpec::RoundingShiftRight(shift, _rp) => {
                let scale = 2f32.powi(-(shift as i32));
                each(&mut acc, |v| f32x4_mul(f32x4_splat(scale), v))
            }
            FusedKerSpec::ShiftLeft(shift) => {
                let scale = 2f32.powi(shift as i32);
                each(&mut acc, |v| f32x4_mul(f32x4_splat(scale), v))
            }
            FusedKerSpec::AddRowColProducts(rows, cols) => {
                let p = cols as *const v128;
                for r in 0..MR {
                    let s = f32x4_splat(*rows.add(r));
                    for j in 0..NV {
                        acc[r * NV + j] = f32x4_add(acc[r * NV + j], f32x4_mul(s, v128_load(p.add(j))));
                    }
                }
            }
            FusedKerSpec::AddUnicast(tile) => {
                let mut row = tile.ptr as *const u8;
                for r in 0..MR {
                    for j in 0..NV {
                        let v = if tile.col_byte_stride == 4 {
                            v128_load(row.add(16 * j) as *const v128)
                        } else {
                            let at = |c: usize| *(row.offset(tile.col_byte_stride * (4 * j + c) as isize) as *const f32);
                            f32x4(at(0), at(1), at(2), at(3))
                        };
                        acc[r * NV + j] = f32x4_add(v, acc[r * NV + j]);
                    }
                    row = row.offset(tile.row_byte_stride);
                }
            }
            FusedKerSpec::Store(tile) => {
                let mut row = tile.ptr;
                for r in 0..MR {
                    for j in 0..NV {
                        let v = acc[r * NV + j];
                        if tile.col_byte_stride == 4 {
                            v128_store(row.add(16 * j) as *mut v128, v);
                        } else {
                            let at = |c: usize| row.offset(tile.col_byte_stride * (4 * j + c) as isize) as *mut f32;
                            *at(0) = f32x4_extract_lane::<0>(v);
                            *at(1) = f32x4_extract_lane::<1>(v);
                            *at(2) = f32x4_extract_lane::<2>(v);
                            *at(3) = f32x4_extract_lane::<3>(v);
                        }
                    }
                    row = row.offset(tile.row_byte_stride);
                }
            }
            FusedKerSpec::AddMatMul { k, pa, pb, packing: _ } => {
                // A packed [k][4], B packed [k][8], both in 16-byte aligned panels (tract's packing for wasm).
                let a = pa as *const v128;
                let b = pb as *const v128;
                let [mut c0, mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7] = acc;
                for i in 0..k {
                    let av = v128_load(a.add(i));
                    let lo = b.add(2 * i);
                    let hi = lo.add(1);
                    // Volatile: one load per use, which LLVM would otherwise merge and Cranelift then keep in
                    // two registers; separate loads fold into the multiplies.
                    let s = i32x4_shuffle::<0, 0, 0, 0>(av, av);
                    c0 = f32x4_add(c0, f32x4_mul(s, std::ptr::read_volatile(lo)));
                    c1 = f32x4_add(c1, f32x4_mul(s, std::ptr::read_volatile(hi)));
                    let s = i32x4_shuffle::<1, 1, 1, 1>(av, av);
                    c2 = f32x4_add(c2, f32x4_mul(s, std::ptr::read_volatile(lo)));
                    c3 = f32x4_add(c3, f32x4_mul(s, std::ptr::read_volatile(hi)));
                    let s = i32x4_shuffle::<2, 2, 2, 2>(av, av);
                    c4 = f32x4_add(c4, f32x4_mul(s, std::ptr::read_volatile(lo)));
                    c5 = f32x4_add(c5, f32x4_mul(s, std::ptr::read_volatile(hi)));
                    let s = i32x4_shuffle::<3, 3, 3, 3>(av, av);
                    c6 = f32x4_add(c6, f32x4_mul(s, std::ptr::read_volatile(lo)));
                    c7 = f32x4_add(c7, f32x4_mul(s, std::ptr::read_volatile(hi)));
                }
                acc = [c0, c1, c2, c3, c4, c5, c6, c7];
            }
        }
    }
    0
}

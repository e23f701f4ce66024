//! The guest's own f32 matmul kernels for wasm simd128, plugged into tract's kernel registry through its public
//! API (`tract_linalg::mmm_routines` for the kernels, `mmm_tiers` for the choice). tract picks one for every
//! f32 matrix product with a known k; GEMV (n = 1) and unknown k stay with tract's own kernels.
//!
//! - **The k loop: 4×8, 8 accumulators.** tract's `wasm_f32_8x8` has 16 accumulators, which with operands
//!   need more than the 16 vector registers an x86-64 host gives Cranelift: about ten were spilled and
//!   reloaded on every k step (wasmtime's jitdump under `perf annotate`). Here A's four rows are broadcast
//!   from one load by shuffles and the loop needs 11–13 registers, in a function of its own so nothing
//!   around it competes for them ([`add_product`]). Stand-alone, operands in L1: ~20 GMAC/s against ~17.
//! - **Wide tiles: 4 × 8·J, J sub-tiles per call.** tract's fixed cost per kernel call (its tile driver,
//!   then the op list) was as large as the multiply-adds of a 4×8 tile with a short k (~70 ns against
//!   ~40 at k = 24; `perf`, AMD EPYC), so a 4×8 kernel lost to the 8×8 one on the early layers. A tile as
//!   wide as n allows ([`kernel_for`]) shares that cost among J sub-tiles, and the usual op list is read
//!   once per call ([`Plan`]).
//! - **Clip by pseudo-min/max** (`f32x4_pmin`/`pmax`, one x86 `minps`/`maxps`, as native tract's kernels
//!   clip); wasm's `f32x4_min`/`max` propagate NaN and order ±0 and cost Cranelift ~8 instructions each.
//!   A NaN product clips to the bound here.
//!
//! The arms other than `AddMatMul` follow tract-linalg 0.23.9's `wasm_f32_4x16` (MIT/Apache-2.0); stores move
//! whole rows when columns are contiguous and whole columns (a 4×4 transpose) when rows are. Products are a
//! multiply then an add (no FMA), as tract's simd128 kernels compute them, in the same k order.
//! README, "Distance to the machine's limit", has the measurements.

use std::arch::wasm32::*;
use tract_onnx::prelude::tract_linalg;
use tract_onnx::tract_core::internal::inventory;
use tract_linalg::isa::{Arch, IsaSet};
use tract_linalg::mmm::{DynKernel, FusedKerSpec, MatMatMul, OutputStoreKer, Query, Suitable};
use tract_linalg::pack::Packing;
use tract_linalg::Scaler;
use tract_onnx::prelude::DatumType;

/// The kernels, by name in tract's registry (and in `classify --profile`'s `matmul_kernels`) and tile width NR:
/// 4 rows × NR = 8·J columns.
const KERNELS: [(&str, usize); 5] = [
    ("mib_wasm_f32_4x8", 8),
    ("mib_wasm_f32_4x16", 16),
    ("mib_wasm_f32_4x24", 24),
    ("mib_wasm_f32_4x32", 32),
    ("mib_wasm_f32_4x48", 48),
];
const MR: usize = 4;

fn make<const I: usize, const NR: usize>() -> Box<dyn MatMatMul> {
    const { assert!(KERNELS[I].1 == NR, "make::<I, NR>: NR must be KERNELS[I]'s width") };
    let mut kernel = DynKernel::<MR, NR, f32>::new(KERNELS[I].0, kernel::<NR>, f32::packing(MR), f32::packing(NR));
    kernel.arch = Some(Arch::Wasm32Simd128);
    kernel.mmm()
}

/// The widest tile whose width divides n (fewer calls per product, each with tract's fixed cost), or 4×8 when
/// none does: a partial tile computes its full width into a scratch tile, so a wide one wastes more.
fn kernel_for(n: usize) -> &'static str {
    KERNELS.iter().rev().find(|(_, nr)| n % nr == 0).unwrap_or(&KERNELS[0]).0
}

/// tract's wasm tier has precedence 1; this one is asked first, claims every f32 matrix product with a known
/// k, and leaves GEMV (n = 1) and unknown k to tract's tier.
fn preferred(_isa: &IsaSet, dt: DatumType, query: &Query, _suitable: &[Suitable]) -> Option<&'static str> {
    match (dt, query.n, query.k) {
        (DatumType::F32, Some(1), _) => None,
        (DatumType::F32, Some(n), Some(_)) => Some(kernel_for(n)),
        (DatumType::F32, None, Some(_)) => Some(KERNELS[0].0),
        _ => None,
    }
}

inventory::submit! { tract_linalg::mmm_routines::MmmRoutine { make: make::<0, 8> } }
inventory::submit! { tract_linalg::mmm_routines::MmmRoutine { make: make::<1, 16> } }
inventory::submit! { tract_linalg::mmm_routines::MmmRoutine { make: make::<2, 24> } }
inventory::submit! { tract_linalg::mmm_routines::MmmRoutine { make: make::<3, 32> } }
inventory::submit! { tract_linalg::mmm_routines::MmmRoutine { make: make::<4, 48> } }

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
    std::hint::black_box((make::<0, 8> as *const (), preferred as *const ()));
}

/// The 4×8 sub-tile's accumulators: row r, columns 4h..4h+4 in `[2 * r + h]`.
type Acc = [v128; 8];

/// A 4-row kernel over NR / 8 sub-tiles of 4×8. tract calls a kernel once per tile, and that call
/// (its tile driver, then the op list) cost about as much as the multiply-adds of a short-k 4×8 tile, so a
/// wide tile shares it among J sub-tiles. The usual op list (a product, then bias / residual / clip, then a
/// store) is read once into a [`Plan`]; any other list is run as is, once per sub-tile.
unsafe fn kernel<const NR: usize>(spec: &[FusedKerSpec<f32>]) -> isize {
    match Plan::of(spec) {
        Some(plan) => {
            for j in 0..NR / 8 {
                plan.run(j, NR)
            }
        }
        None => {
            for j in 0..NR / 8 {
                run_ops(spec, j, NR)
            }
        }
    }
    0
}

/// What may come between the product and the store in a [`Plan`], in the op list's order.
#[derive(Clone, Copy)]
enum Epilogue {
    AddPerColumn(*const f32),
    AddPerRow(*const f32),
    Min(f32),
    Max(f32),
    AddTile(OutputStoreKer),
}

/// The op list `Clear, AddMatMul, (up to 4 of Epilogue), Store, Done`: every matmul of MobileNetV2 has it.
struct Plan {
    k: usize,
    pa: *const v128,
    pb: *const f32,
    epilogue: [Epilogue; 4],
    epilogue_len: usize,
    store: OutputStoreKer,
}

impl Plan {
    fn of(spec: &[FusedKerSpec<f32>]) -> Option<Plan> {
        let [FusedKerSpec::Clear, FusedKerSpec::AddMatMul { k, pa, pb, packing: _ }, rest @ ..] = spec else {
            return None;
        };
        let at = rest.iter().position(|op| matches!(op, FusedKerSpec::Store(_)))?;
        let (FusedKerSpec::Store(store), Some(FusedKerSpec::Done)) = (rest[at], rest.get(at + 1)) else {
            return None;
        };
        let mut plan = Plan {
            k: *k,
            pa: *pa as *const v128,
            pb: *pb as *const f32,
            epilogue: [Epilogue::Min(0.0); 4],
            epilogue_len: 0,
            store,
        };
        for op in &rest[..at] {
            let step = match *op {
                FusedKerSpec::PerColAdd(cols) => Epilogue::AddPerColumn(cols),
                FusedKerSpec::PerRowAdd(rows) => Epilogue::AddPerRow(rows),
                FusedKerSpec::ScalarMin(a) => Epilogue::Min(a),
                FusedKerSpec::ScalarMax(a) => Epilogue::Max(a),
                FusedKerSpec::AddUnicast(tile) => Epilogue::AddTile(tile),
                _ => return None,
            };
            *plan.epilogue.get_mut(plan.epilogue_len)? = step;
            plan.epilogue_len += 1;
        }
        Some(plan)
    }

    #[inline(always)]
    unsafe fn run(&self, j: usize, nr: usize) {
        let mut acc = [f32x4_splat(0.0); 8];
        add_product(&mut acc, self.k, self.pa, self.pb.add(8 * j), nr);
        for step in &self.epilogue[..self.epilogue_len] {
            match *step {
                Epilogue::AddPerColumn(cols) => per_col(&mut acc, cols.add(8 * j), |s, v| f32x4_add(s, v)),
                Epilogue::AddPerRow(rows) => per_row(&mut acc, rows, |s, v| f32x4_add(s, v)),
                Epilogue::Min(a) => each(&mut acc, |v| f32x4_pmin(f32x4_splat(a), v)),
                Epilogue::Max(a) => each(&mut acc, |v| f32x4_pmax(f32x4_splat(a), v)),
                Epilogue::AddTile(tile) => add_tile(&mut acc, &tile, j),
            }
        }
        store(&acc, &self.store, j);
    }
}

/// The op list for sub-tile j of a tile NR = `nr` wide, op by op (any list tract may send).
unsafe fn run_ops(spec: &[FusedKerSpec<f32>], j: usize, nr: usize) {
    let mut acc = [f32x4_splat(0.0); 8];
    for op in spec {
        match *op {
            FusedKerSpec::Done => break,
            FusedKerSpec::Clear => acc = [f32x4_splat(0.0); 8],
            FusedKerSpec::LoadTile(_cols, rows) => {
                // A row-major MR × NR tile.
                for r in 0..MR {
                    let p = rows.add(r * nr + 8 * j) as *const v128;
                    acc[2 * r] = v128_load(p);
                    acc[2 * r + 1] = v128_load(p.add(1));
                }
            }
            FusedKerSpec::ScalarMin(a) => each(&mut acc, |v| f32x4_pmin(f32x4_splat(a), v)),
            FusedKerSpec::ScalarMax(a) => each(&mut acc, |v| f32x4_pmax(f32x4_splat(a), v)),
            FusedKerSpec::ScalarAdd(a) => each(&mut acc, |v| f32x4_add(f32x4_splat(a), v)),
            FusedKerSpec::ScalarMul(a) => each(&mut acc, |v| f32x4_mul(f32x4_splat(a), v)),
            FusedKerSpec::ScalarSub(a) => each(&mut acc, |v| f32x4_sub(f32x4_splat(a), v)),
            FusedKerSpec::ScalarSubF(a) => each(&mut acc, |v| f32x4_sub(v, f32x4_splat(a))),
            FusedKerSpec::LeakyRelu(a) => each(&mut acc, |v| {
                let positive = f32x4_gt(v, f32x4_splat(0.0));
                v128_bitselect(v, f32x4_mul(f32x4_splat(a), v), positive)
            }),
            FusedKerSpec::PerRowMin(rows) => per_row(&mut acc, rows, |s, v| f32x4_pmin(s, v)),
            FusedKerSpec::PerRowMax(rows) => per_row(&mut acc, rows, |s, v| f32x4_pmax(s, v)),
            FusedKerSpec::PerRowAdd(rows) => per_row(&mut acc, rows, |s, v| f32x4_add(s, v)),
            FusedKerSpec::PerRowMul(rows) => per_row(&mut acc, rows, |s, v| f32x4_mul(s, v)),
            FusedKerSpec::PerRowSub(rows) => per_row(&mut acc, rows, |s, v| f32x4_sub(s, v)),
            FusedKerSpec::PerRowSubF(rows) => per_row(&mut acc, rows, |s, v| f32x4_sub(v, s)),
            FusedKerSpec::PerColMin(cols) => per_col(&mut acc, cols.add(8 * j), |s, v| f32x4_pmin(s, v)),
            FusedKerSpec::PerColMax(cols) => per_col(&mut acc, cols.add(8 * j), |s, v| f32x4_pmax(s, v)),
            FusedKerSpec::PerColAdd(cols) => per_col(&mut acc, cols.add(8 * j), |s, v| f32x4_add(s, v)),
            FusedKerSpec::PerColMul(cols) => per_col(&mut acc, cols.add(8 * j), |s, v| f32x4_mul(s, v)),
            FusedKerSpec::PerColSub(cols) => per_col(&mut acc, cols.add(8 * j), |s, v| f32x4_sub(s, v)),
            FusedKerSpec::PerColSubF(cols) => per_col(&mut acc, cols.add(8 * j), |c, v| f32x4_sub(v, c)),
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
                let p = cols.add(8 * j) as *const v128;
                for r in 0..MR {
                    let s = f32x4_splat(*rows.add(r));
                    for h in 0..2 {
                        acc[2 * r + h] = f32x4_add(acc[2 * r + h], f32x4_mul(s, v128_load(p.add(h))));
                    }
                }
            }
            FusedKerSpec::AddUnicast(tile) => add_tile(&mut acc, &tile, j),
            FusedKerSpec::Store(tile) => store(&acc, &tile, j),
            FusedKerSpec::AddMatMul { k, pa, pb, packing: _ } => {
                add_product(&mut acc, k, pa as *const v128, (pb as *const f32).add(8 * j), nr)
            }
        }
    }
}

#[inline(always)]
fn each(acc: &mut Acc, f: impl Fn(v128) -> v128) {
    for v in acc.iter_mut() {
        *v = f(*v);
    }
}

#[inline(always)]
unsafe fn per_row(acc: &mut Acc, rows: *const f32, f: impl Fn(v128, v128) -> v128) {
    for r in 0..MR {
        let s = f32x4_splat(*rows.add(r));
        for h in 0..2 {
            acc[2 * r + h] = f(s, acc[2 * r + h]);
        }
    }
}

#[inline(always)]
unsafe fn per_col(acc: &mut Acc, cols: *const f32, f: impl Fn(v128, v128) -> v128) {
    let p = cols as *const v128;
    for r in 0..MR {
        for h in 0..2 {
            acc[2 * r + h] = f(v128_load(p.add(h)), acc[2 * r + h]);
        }
    }
}

/// acc += A·B over k for one sub-tile: A packed [k][4] (one v128 per k, 16-byte aligned panels, tract's
/// packing for wasm), B packed [k][nr] from `b`, this sub-tile's 8 columns. A function of its own so that
/// nothing live around it competes for registers: inlined into the sub-tile loop, Cranelift spilled five
/// accumulators on every k step.
#[inline(never)]
unsafe fn add_product(acc: &mut Acc, k: usize, a: *const v128, b: *const f32, nr: usize) {
    let [mut c0, mut c1, mut c2, mut c3, mut c4, mut c5, mut c6, mut c7] = *acc;
    for i in 0..k {
        let av = v128_load(a.add(i));
        let lo = b.add(nr * i) as *const v128;
        let hi = lo.add(1);
        // Volatile: one load per use, which Cranelift folds into the multiply (11 registers). wasm-opt -O3
        // merges them again in the shipped module, which then keeps B in two registers (13): no spill either way.
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
    *acc = [c0, c1, c2, c3, c4, c5, c6, c7];
}

/// Four row vectors as four column vectors (and back: the transpose is its own inverse).
#[inline(always)]
fn transpose(r0: v128, r1: v128, r2: v128, r3: v128) -> [v128; 4] {
    let t0 = i32x4_shuffle::<0, 4, 1, 5>(r0, r1);
    let t1 = i32x4_shuffle::<2, 6, 3, 7>(r0, r1);
    let t2 = i32x4_shuffle::<0, 4, 1, 5>(r2, r3);
    let t3 = i32x4_shuffle::<2, 6, 3, 7>(r2, r3);
    [
        i32x4_shuffle::<0, 1, 4, 5>(t0, t2),
        i32x4_shuffle::<2, 3, 6, 7>(t0, t2),
        i32x4_shuffle::<0, 1, 4, 5>(t1, t3),
        i32x4_shuffle::<2, 3, 6, 7>(t1, t3),
    ]
}

/// Writes sub-tile j: whole rows when columns are contiguous, whole columns when rows are (a channel-last
/// output with the channels as rows, and tract's scratch tile for a partial tile), else element by element.
#[inline(always)]
unsafe fn store(acc: &Acc, tile: &OutputStoreKer, j: usize) {
    let base = tile.ptr.offset(tile.col_byte_stride * (8 * j) as isize);
    if tile.col_byte_stride == 4 {
        for r in 0..MR {
            let row = base.offset(tile.row_byte_stride * r as isize) as *mut v128;
            v128_store(row, acc[2 * r]);
            v128_store(row.add(1), acc[2 * r + 1]);
        }
    } else if tile.row_byte_stride == 4 {
        for h in 0..2 {
            let cols = transpose(acc[h], acc[2 + h], acc[4 + h], acc[6 + h]);
            for (c, v) in cols.into_iter().enumerate() {
                v128_store(base.offset(tile.col_byte_stride * (4 * h + c) as isize) as *mut v128, v);
            }
        }
    } else {
        for r in 0..MR {
            let row = base.offset(tile.row_byte_stride * r as isize);
            for h in 0..2 {
                let v = acc[2 * r + h];
                let at = |c: usize| row.offset(tile.col_byte_stride * (4 * h + c) as isize) as *mut f32;
                *at(0) = f32x4_extract_lane::<0>(v);
                *at(1) = f32x4_extract_lane::<1>(v);
                *at(2) = f32x4_extract_lane::<2>(v);
                *at(3) = f32x4_extract_lane::<3>(v);
            }
        }
    }
}

/// acc += the tile at `tile` (sub-tile j), read the way [`store`] writes it.
#[inline(always)]
unsafe fn add_tile(acc: &mut Acc, tile: &OutputStoreKer, j: usize) {
    let base = tile.ptr.offset(tile.col_byte_stride * (8 * j) as isize) as *const u8;
    if tile.col_byte_stride == 4 {
        for r in 0..MR {
            let row = base.offset(tile.row_byte_stride * r as isize) as *const v128;
            acc[2 * r] = f32x4_add(v128_load(row), acc[2 * r]);
            acc[2 * r + 1] = f32x4_add(v128_load(row.add(1)), acc[2 * r + 1]);
        }
    } else if tile.row_byte_stride == 4 {
        for h in 0..2 {
            let col = |c: usize| v128_load(base.offset(tile.col_byte_stride * (4 * h + c) as isize) as *const v128);
            let rows = transpose(col(0), col(1), col(2), col(3));
            for (r, v) in rows.into_iter().enumerate() {
                acc[2 * r + h] = f32x4_add(v, acc[2 * r + h]);
            }
        }
    } else {
        for r in 0..MR {
            let row = base.offset(tile.row_byte_stride * r as isize);
            for h in 0..2 {
                let at = |c: usize| *(row.offset(tile.col_byte_stride * (4 * h + c) as isize) as *const f32);
                acc[2 * r + h] = f32x4_add(f32x4(at(0), at(1), at(2), at(3)), acc[2 * r + h]);
            }
        }
    }
}

/// Every op of the kernels against tract-linalg's portable `generic_f32_4x4` kernel (tract's own reading of
/// each op) on the same operands, 4 columns at a time: the plan path, the op-by-op path, every tile width and
/// three output layouts (rows contiguous, columns contiguous, neither). The operands are small multiples of
/// 1/4, so every sum is exact and the results must be equal. `tests/test_host.py` runs them under wasmtime
/// (the module exists only in the simd128 build).
#[cfg(test)]
mod tests {
    use super::*;
    use tract_linalg::generic::mmm::generic_f32_4x4;
    use crate::wasm_scalar_matmul::tests::{elementwise_ops, value};
    use tract_linalg::mmm::MatMatMulKer;

    /// 16-byte aligned storage, as tract's packed panels are.
    fn aligned(values: impl IntoIterator<Item = f32>) -> Vec<v128> {
        let values: Vec<f32> = values.into_iter().collect();
        let mut out = vec![f32x4_splat(0.0); values.len().div_ceil(4)];
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), out.as_mut_ptr() as *mut f32, values.len()) };
        out
    }

    /// The inputs of one 4 × nr tile, and its C in one layout: (row stride, column stride) in elements.
    struct Tile {
        k: usize,
        layout: (usize, usize),
        a: Vec<v128>,             // packed [k][4]
        b_wide: Vec<v128>,        // packed [k][nr], as the kernel under test reads B
        b_blocks: Vec<Vec<v128>>, // packed [k][4] per 4 columns, as the 4×4 kernel reads B
        rows: Vec<v128>,          // 4 per-row values
        cols: Vec<v128>,          // nr per-column values
        tile_rows: Vec<v128>,     // a 4 × nr tile, row-major (LoadTile, the wasm kernels' reading)
        tile_cols: Vec<v128>,     // the same tile column-major (LoadTile, the generic kernel's reading)
        d: Vec<f32>,              // what AddUnicast reads, in C's layout
        c: Vec<f32>,
    }

    impl Tile {
        fn new(nr: usize, k: usize, layout: (usize, usize)) -> Tile {
            let b: Vec<f32> = (0..k * nr).map(|i| value(i + 1000)).collect();
            let t: Vec<f32> = (0..4 * nr).map(|i| value(i + 4000)).collect();
            let len = 3 * layout.0 + (nr - 1) * layout.1 + 1;
            Tile {
                k,
                layout,
                a: aligned((0..4 * k).map(value)),
                b_wide: aligned(b.iter().copied()),
                b_blocks: (0..nr / 4)
                    .map(|q| aligned((0..4 * k).map(|i| b[(i / 4) * nr + 4 * q + i % 4])))
                    .collect(),
                rows: aligned((0..4).map(|r| value(r + 2000))),
                cols: aligned((0..nr).map(|c| value(c + 3000))),
                tile_rows: aligned(t.iter().copied()),
                tile_cols: aligned((0..4 * nr).map(|i| t[(i % 4) * nr + i / 4])),
                d: (0..len).map(|i| value(i + 6000)).collect(),
                c: (0..len).map(|i| value(i + 5000)).collect(),
            }
        }
        /// C (or D) from column 4·q on, in this tile's layout.
        fn at(&self, base: *const f32, q: usize) -> OutputStoreKer {
            let (rows, cols) = self.layout;
            OutputStoreKer {
                ptr: unsafe { base.add(4 * q * cols) } as *mut u8,
                row_byte_stride: 4 * rows as isize,
                col_byte_stride: 4 * cols as isize,
                item_size: 4,
            }
        }
        /// The product over the whole tile (`q = None`) or over columns 4·q..4·q+4.
        fn product(&self, q: Option<usize>) -> FusedKerSpec<f32> {
            let pb = match q {
                None => self.b_wide.as_ptr(),
                Some(q) => self.b_blocks[q].as_ptr(),
            };
            FusedKerSpec::AddMatMul { k: self.k, pa: self.a.as_ptr() as *const u8, pb: pb as *const u8, packing: 0 }
        }
        fn cols(&self, q: usize) -> *const f32 {
            unsafe { (self.cols.as_ptr() as *const f32).add(4 * q) }
        }
        fn rows(&self) -> *const f32 {
            self.rows.as_ptr() as *const f32
        }
    }

    /// An op list for C at `c`, for the whole tile (`q = None`) or its columns 4·q..4·q+4.
    type Ops = dyn Fn(&Tile, *const f32, Option<usize>) -> Vec<FusedKerSpec<f32>>;

    fn check(name: &str, ops: &Ops) {
        let kernels: [unsafe fn(&[FusedKerSpec<f32>]) -> isize; 5] =
            [kernel::<8>, kernel::<16>, kernel::<24>, kernel::<32>, kernel::<48>];
        for ((_, nr), kernel_fn) in KERNELS.into_iter().zip(kernels) {
            for k in [1, 5, 24] {
                for layout in [(nr, 1), (1, 4), (2 * nr + 1, 3)] {
                    let tile = Tile::new(nr, k, layout);
                    let mut ours = tile.c.clone();
                    assert_eq!(unsafe { kernel_fn(&ops(&tile, ours.as_mut_ptr(), None)) }, 0);
                    let mut theirs = tile.c.clone();
                    for q in 0..nr / 4 {
                        assert_eq!(generic_f32_4x4.kernel(&ops(&tile, theirs.as_mut_ptr(), Some(q))), 0);
                    }
                    assert!(ours == theirs, "{name}: 4x{nr}, k = {k}, layout {layout:?}");
                }
            }
        }
    }

    #[test]
    fn the_plan_of_an_expansion_layer() {
        check("bias, clip, store", &|t, c, q| {
            vec![
                FusedKerSpec::Clear,
                t.product(q),
                FusedKerSpec::PerColAdd(t.cols(q.unwrap_or(0))),
                FusedKerSpec::ScalarMax(0.0),
                FusedKerSpec::ScalarMin(1.5),
                FusedKerSpec::Store(t.at(c, q.unwrap_or(0))),
                FusedKerSpec::Done,
            ]
        });
    }

    #[test]
    fn the_plan_of_a_projection_with_a_residual() {
        check("bias, residual, store", &|t, c, q| {
            vec![
                FusedKerSpec::Clear,
                t.product(q),
                FusedKerSpec::PerRowAdd(t.rows()),
                FusedKerSpec::AddUnicast(t.at(t.d.as_ptr(), q.unwrap_or(0))),
                FusedKerSpec::Store(t.at(c, q.unwrap_or(0))),
                FusedKerSpec::Done,
            ]
        });
    }

    #[test]
    fn every_other_op() {
        check("every op", &|t, c, q| {
            let (qc, load) = match q {
                None => (0, FusedKerSpec::LoadTile(std::ptr::null(), t.tile_rows.as_ptr() as *const f32)),
                Some(q) => (q, FusedKerSpec::LoadTile(unsafe { (t.tile_cols.as_ptr() as *const f32).add(16 * q) }, std::ptr::null())),
            };
            let mut ops = vec![load, t.product(q)];
            ops.extend(elementwise_ops(t.rows(), t.cols(qc)));
            ops.extend([
                FusedKerSpec::AddUnicast(t.at(t.d.as_ptr(), qc)),
                FusedKerSpec::Store(t.at(c, qc)),
                FusedKerSpec::Done,
            ]);
            ops
        });
    }
}

//! libjpeg-turbo's integer IDCTs, so that a block decodes to the same samples as PIL (accurate integer,
//! `jidctint.c`) or TensorFlow's default `decode_jpeg` (fast integer, `jidctfst.c`).
//!
//! Added for the mobilenet-infer-benchmark guest (see `guest/vendor/README.md`). PIL and TensorFlow run
//! libjpeg-turbo's x86-64 vector code (`simd/x86_64/jidctint-avx2.asm` and `-sse2.asm`,
//! `jidctfst-sse2.asm`), which keeps every intermediate in 16-bit lanes and saturates where the scalar C
//! wraps or widens. For ordinary photos the two agree; for extreme coefficients (a dithered photo at
//! low quality, raised quantization tables) they do not, so these follow the vector code step by step:
//! 16-bit dequantization (`pmullw`), `pmaddwd` products summed in 32 bits, `packssdw` and `packsswb`
//! saturation, and the fast IDCT's `pmulhw` with its constants pre-shifted. Inputs are dequantized
//! coefficients in natural order (`coef * quantval`, or `coef * ifast_multiplier` for the fast IDCT,
//! see [`ifast_multipliers`]); they are read, never written, so a caller's zeroing contract on the
//! block holds.

/// Which libjpeg-turbo IDCT a decoder uses (`cinfo->dct_method`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LibjpegIdct {
    /// `JDCT_ISLOW`: what PIL uses, and TensorFlow with `dct_method="INTEGER_ACCURATE"`.
    AccurateInteger,
    /// `JDCT_IFAST`: TensorFlow's default `decode_jpeg`.
    FastInteger,
}

/// Column `c` of a block as the vector code loads it: each dequantized coefficient's low 16 bits.
#[inline(always)]
fn column(input: &[i32; 64], c: usize) -> [i16; 8] {
    core::array::from_fn(|k| input[8 * k + c] as i16)
}

/// Store row `r` of the result: `packsswb` to -128..=127, then `+ CENTERJSAMPLE`. A block that does not fit
/// the output (only in a malformed image) is dropped instead of panicking.
#[inline(always)]
fn store_row(output: &mut [i16], stride: usize, r: usize, row: [i16; 8]) {
    if let Some(out) = output.get_mut(r * stride..r * stride + 8) {
        for (o, v) in out.iter_mut().zip(row) {
            *o = v.clamp(-128, 127) + 128;
        }
    }
}

const F_0_298: i32 = 2446;
const F_0_390: i32 = 3196;
const F_0_541: i32 = 4433;
const F_0_765: i32 = 6270;
const F_0_899: i32 = 7373;
const F_1_175: i32 = 9633;
const F_1_501: i32 = 12299;
const F_1_847: i32 = 15137;
const F_1_961: i32 = 16069;
const F_2_053: i32 = 16819;
const F_2_562: i32 = 20995;
const F_3_072: i32 = 25172;

/// `pmaddwd`: two 16×16-bit products summed in 32 bits.
#[inline(always)]
fn madd(a: i16, ca: i32, b: i16, cb: i32) -> i32 {
    (i32::from(a) * ca).wrapping_add(i32::from(b) * cb)
}

/// One 8-point pass of `jidctint-avx2.asm` / `-sse2.asm`; results descaled by `n` bits and saturated to 16.
#[inline(always)]
fn islow_1d(v: [i16; 8], n: u32) -> [i16; 8] {
    // even part: the rotator as two pmaddwd, then tmp0/tmp1 from in0 ± in4 (16-bit) shifted up
    let tmp3 = madd(v[2], F_0_541 + F_0_765, v[6], F_0_541);
    let tmp2 = madd(v[2], F_0_541, v[6], F_0_541 - F_1_847);
    let tmp0 = i32::from(v[0].wrapping_add(v[4])) << 13;
    let tmp1 = i32::from(v[0].wrapping_sub(v[4])) << 13;
    let (tmp10, tmp13) = (tmp0.wrapping_add(tmp3), tmp0.wrapping_sub(tmp3));
    let (tmp11, tmp12) = (tmp1.wrapping_add(tmp2), tmp1.wrapping_sub(tmp2));
    // odd part: z3 = in7 + in3, z4 = in5 + in1 in 16 bits, every product a pmaddwd pair
    let z3 = v[7].wrapping_add(v[3]);
    let z4 = v[5].wrapping_add(v[1]);
    let z3p = madd(z3, F_1_175 - F_1_961, z4, F_1_175);
    let z4p = madd(z3, F_1_175, z4, F_1_175 - F_0_390);
    let t0 = madd(v[7], F_0_298 - F_0_899, v[1], -F_0_899).wrapping_add(z3p);
    let t3 = madd(v[7], -F_0_899, v[1], F_1_501 - F_0_899).wrapping_add(z4p);
    let t1 = madd(v[5], F_2_053 - F_2_562, v[3], -F_2_562).wrapping_add(z4p);
    let t2 = madd(v[5], -F_2_562, v[3], F_3_072 - F_2_562).wrapping_add(z3p);
    let d = |x: i32| (x.wrapping_add(1 << (n - 1)) >> n).clamp(-32768, 32767) as i16;
    [
        d(tmp10.wrapping_add(t3)),
        d(tmp11.wrapping_add(t2)),
        d(tmp12.wrapping_add(t1)),
        d(tmp13.wrapping_add(t0)),
        d(tmp13.wrapping_sub(t0)),
        d(tmp12.wrapping_sub(t1)),
        d(tmp11.wrapping_sub(t2)),
        d(tmp10.wrapping_sub(t3)),
    ]
}

/// `jsimd_idct_islow`: `output` gets 8 rows of 8 samples `stride` apart.
pub fn idct_islow(input: &mut [i32; 64], output: &mut [i16], stride: usize) {
    // pass 1 over columns; the vector code takes the DC-only path only when rows 1..7 are all zero
    let dc_only = input[8..].iter().all(|&v| v == 0);
    let mut ws = [[0_i16; 8]; 8]; // ws[column][row]
    for (c, out) in ws.iter_mut().enumerate() {
        let col = column(input, c);
        *out = if dc_only { [col[0].wrapping_shl(2); 8] } else { islow_1d(col, 13 - 2) };
    }
    for r in 0..8 {
        store_row(output, stride, r, islow_1d(core::array::from_fn(|c| ws[c][r]), 13 + 2 + 3));
    }
}

/// `jddctmgr.c`'s AA&N multipliers for the fast IDCT: each quantization value (natural order) times
/// `aanscales`, descaled from 14 to `IFAST_SCALE_BITS` = 2 fractional bits and stored as a `short`.
#[must_use]
pub fn ifast_multipliers(quant: &[i32; 64]) -> [i32; 64] {
    #[rustfmt::skip]
    const AANSCALES: [i64; 64] = [
        16384, 22725, 21407, 19266, 16384, 12873,  8867,  4520,
        22725, 31521, 29692, 26722, 22725, 17855, 12299,  6270,
        21407, 29692, 27969, 25172, 21407, 16819, 11585,  5906,
        19266, 26722, 25172, 22654, 19266, 15137, 10426,  5315,
        16384, 22725, 21407, 19266, 16384, 12873,  8867,  4520,
        12873, 17855, 16819, 15137, 12873, 10114,  6967,  3552,
         8867, 12299, 11585, 10426,  8867,  6967,  4799,  2446,
         4520,  6270,  5906,  5315,  4520,  3552,  2446,  1247,
    ];
    core::array::from_fn(|i| {
        let product = i64::from(quant[i]) * AANSCALES[i];
        i32::from(((product + (1 << 11)) >> 12) as i16)
    })
}

/// `pmulhw` by a constant pre-shifted as in `jidctfst-sse2.asm` (`CONST_SHIFT` 6, the operand shifted by
/// `PRE_MULTIPLY_SCALE_BITS` 2 first).
#[inline(always)]
fn mulhw(x: i16, c: i32) -> i16 {
    ((i32::from(x) * c) >> 16) as i16
}

const PW_F1414: i32 = 362 << 6;
const PW_F1847: i32 = 473 << 6;
const PW_MF1613: i32 = -((669 - 256) << 6);
const PW_F1082: i32 = 277 << 6;

/// One 8-point pass of `jidctfst-sse2.asm`, every step in 16-bit lanes.
#[inline(always)]
fn ifast_1d(v: [i16; 8]) -> [i16; 8] {
    let add = |x: i16, y: i16| x.wrapping_add(y);
    let sub = |x: i16, y: i16| x.wrapping_sub(y);
    let pre = |x: i16| x.wrapping_shl(2);
    // even part
    let tmp10 = add(v[0], v[4]);
    let tmp11 = sub(v[0], v[4]);
    let tmp13 = add(v[2], v[6]);
    let tmp12 = sub(mulhw(pre(sub(v[2], v[6])), PW_F1414), tmp13);
    let (tmp0, tmp3) = (add(tmp10, tmp13), sub(tmp10, tmp13));
    let (tmp1, tmp2) = (add(tmp11, tmp12), sub(tmp11, tmp12));
    // odd part
    let z13 = add(v[5], v[3]);
    let z10 = sub(v[5], v[3]);
    let z11 = add(v[1], v[7]);
    let z12 = sub(v[1], v[7]);
    let (z10s, z12s) = (pre(z10), pre(z12));
    let tmp7 = add(z11, z13);
    let tmp11 = mulhw(pre(sub(z11, z13)), PW_F1414);
    let z5 = mulhw(add(z10s, z12s), PW_F1847);
    // MULTIPLY(z10, -FIX_2_613125930) does not fit a 16-bit constant: (-1.613 z10) - z10
    let tmp12 = add(sub(mulhw(z10s, PW_MF1613), z10), z5);
    let tmp10 = sub(mulhw(z12s, PW_F1082), z5);
    let tmp6 = sub(tmp12, tmp7);
    let tmp5 = sub(tmp11, tmp6);
    let tmp4 = add(tmp10, tmp5);
    [
        add(tmp0, tmp7),
        add(tmp1, tmp6),
        add(tmp2, tmp5),
        sub(tmp3, tmp4),
        add(tmp3, tmp4),
        sub(tmp2, tmp5),
        sub(tmp1, tmp6),
        sub(tmp0, tmp7),
    ]
}

/// `jsimd_idct_ifast`; `input` holds `coef * ifast_multiplier` in natural order.
pub fn idct_ifast(input: &mut [i32; 64], output: &mut [i16], stride: usize) {
    let mut ws = [[0_i16; 8]; 8]; // ws[column][row]
    for (c, out) in ws.iter_mut().enumerate() {
        let col = column(input, c);
        *out = if col[1..].iter().all(|&v| v == 0) { [col[0]; 8] } else { ifast_1d(col) };
    }
    for r in 0..8 {
        let row = ifast_1d(core::array::from_fn(|c| ws[c][r]));
        store_row(output, stride, r, row.map(|v| v >> 5)); // PASS1_BITS + 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_that_does_not_fit_the_output_is_dropped_not_a_panic() {
        let mut block = [0_i32; 64];
        block[0] = 80;
        let mut short = [0_i16; 20];
        idct_islow(&mut block, &mut short, 8);
        assert_eq!(short[..16], [138; 16]);
        block[0] = 80 * 4; // the fast IDCT's multipliers carry 2 fractional bits
        idct_ifast(&mut block, &mut short, 8);
        assert_eq!(short[..16], [138; 16]);
    }

    #[test]
    fn ifast_multipliers_are_quant_times_aan_in_2_fractional_bits() {
        let m = ifast_multipliers(&[1; 64]);
        assert_eq!((m[0], m[1], m[63]), (4, 6, 0)); // 16384/4096, 22725/4096, 1247/4096 rounded
    }

    #[test]
    fn flat_block_is_its_dc() {
        let mut block = [0_i32; 64];
        block[0] = 80; // DC 80 → +10 levels
        let mut out = [0_i16; 64];
        idct_islow(&mut block, &mut out, 8);
        assert!(out.iter().all(|&v| v == 138), "{out:?}");
        let mut block = [0_i32; 64];
        block[0] = 80 * 4; // ifast multipliers carry 2 fractional bits
        idct_ifast(&mut block, &mut out, 8);
        assert!(out.iter().all(|&v| v == 138), "{out:?}");
    }
}

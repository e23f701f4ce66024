//! libjpeg-turbo's integer IDCTs, ported line for line so that a block decodes to the same samples as
//! PIL (accurate integer, `jidctint.c`) or TensorFlow's default `decode_jpeg` (fast integer,
//! `jidctfst.c`).
//!
//! Added for the mobilenet-infer-benchmark guest (see `guest/vendor/README.md`). Integer widths
//! follow the C of an x86-64 build with SIMD, whose vector code gives the same results: `JLONG` is
//! 64 bits, the workspace `int` is 32, and the fast IDCT's `DCTELEM` is 16 (`short` with
//! `WITH_SIMD`), so sums wrap where the C's do. Inputs are dequantized coefficients in natural order:
//! `coef * quantval` for the accurate IDCT, `coef * ifast_multiplier` (see [`ifast_multipliers`]) for
//! the fast one.

/// The 10-bit post-IDCT range limit of `jdmaster.c` (`IDCT_range_limit` with `RANGE_MASK`): the
/// value is taken modulo 1024 as a signed 10-bit number, shifted by +128 and clamped to a sample.
#[inline(always)]
fn range_limit(x: i32) -> i16 {
    let wrapped = ((x & 1023) ^ 512) - 512;
    (wrapped + 128).clamp(0, 255) as i16
}

#[inline(always)]
fn descale(x: i64, n: u32) -> i64 {
    (x + (1_i64 << (n - 1))) >> n
}

/// Which libjpeg-turbo IDCT a decoder uses (`cinfo->dct_method`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LibjpegIdct {
    /// `JDCT_ISLOW`: what PIL uses, and TensorFlow with `dct_method="INTEGER_ACCURATE"`.
    AccurateInteger,
    /// `JDCT_IFAST`: TensorFlow's default `decode_jpeg`.
    FastInteger,
}

const ISLOW_CONST_BITS: u32 = 13;
const ISLOW_PASS1_BITS: u32 = 2;
const FIX_0_298631336: i64 = 2446;
const FIX_0_390180644: i64 = 3196;
const FIX_0_541196100: i64 = 4433;
const FIX_0_765366865: i64 = 6270;
const FIX_0_899976223: i64 = 7373;
const FIX_1_175875602: i64 = 9633;
const FIX_1_501321110: i64 = 12299;
const FIX_1_847759065: i64 = 15137;
const FIX_1_961570560: i64 = 16069;
const FIX_2_053119869: i64 = 16819;
const FIX_2_562915447: i64 = 20995;
const FIX_3_072711026: i64 = 25172;

/// `jpeg_idct_islow`: `input` holds dequantized coefficients (left untouched, so a caller's
/// zeroing contract on it holds), `output` gets 8 rows of 8 samples `stride` apart.
#[allow(clippy::too_many_lines)]
pub fn idct_islow(input: &mut [i32; 64], output: &mut [i16], stride: usize) {
    let mut ws = [0_i32; 64];
    for c in 0..8 {
        let col = |k: usize| i64::from(input[8 * k + c]);
        if (1..8).all(|k| input[8 * k + c] == 0) {
            let dcval = input[c].wrapping_shl(ISLOW_PASS1_BITS);
            for k in 0..8 {
                ws[8 * k + c] = dcval;
            }
            continue;
        }
        let (z2, z3) = (col(2), col(6));
        let z1 = (z2 + z3) * FIX_0_541196100;
        let tmp2 = z1 + z3 * -FIX_1_847759065;
        let tmp3 = z1 + z2 * FIX_0_765366865;
        let (z2, z3) = (col(0), col(4));
        let tmp0 = (z2 + z3) << ISLOW_CONST_BITS;
        let tmp1 = (z2 - z3) << ISLOW_CONST_BITS;
        let (tmp10, tmp13) = (tmp0 + tmp3, tmp0 - tmp3);
        let (tmp11, tmp12) = (tmp1 + tmp2, tmp1 - tmp2);
        let (o0, o1, o2, o3) = islow_odd(col(7), col(5), col(3), col(1));
        let n = ISLOW_CONST_BITS - ISLOW_PASS1_BITS;
        ws[c] = descale(tmp10 + o3, n) as i32;
        ws[8 * 7 + c] = descale(tmp10 - o3, n) as i32;
        ws[8 + c] = descale(tmp11 + o2, n) as i32;
        ws[8 * 6 + c] = descale(tmp11 - o2, n) as i32;
        ws[8 * 2 + c] = descale(tmp12 + o1, n) as i32;
        ws[8 * 5 + c] = descale(tmp12 - o1, n) as i32;
        ws[8 * 3 + c] = descale(tmp13 + o0, n) as i32;
        ws[8 * 4 + c] = descale(tmp13 - o0, n) as i32;
    }
    let n = ISLOW_CONST_BITS + ISLOW_PASS1_BITS + 3;
    for r in 0..8 {
        let row = &ws[8 * r..8 * r + 8];
        let out = &mut output[r * stride..r * stride + 8];
        if row[1..].iter().all(|&v| v == 0) {
            out.fill(range_limit(descale(i64::from(row[0]), ISLOW_PASS1_BITS + 3) as i32));
            continue;
        }
        let w = |k: usize| i64::from(row[k]);
        let (z2, z3) = (w(2), w(6));
        let z1 = (z2 + z3) * FIX_0_541196100;
        let tmp2 = z1 + z3 * -FIX_1_847759065;
        let tmp3 = z1 + z2 * FIX_0_765366865;
        let tmp0 = (w(0) + w(4)) << ISLOW_CONST_BITS;
        let tmp1 = (w(0) - w(4)) << ISLOW_CONST_BITS;
        let (tmp10, tmp13) = (tmp0 + tmp3, tmp0 - tmp3);
        let (tmp11, tmp12) = (tmp1 + tmp2, tmp1 - tmp2);
        let (o0, o1, o2, o3) = islow_odd(w(7), w(5), w(3), w(1));
        let lim = |x: i64| range_limit(descale(x, n) as i32);
        out[0] = lim(tmp10 + o3);
        out[7] = lim(tmp10 - o3);
        out[1] = lim(tmp11 + o2);
        out[6] = lim(tmp11 - o2);
        out[2] = lim(tmp12 + o1);
        out[5] = lim(tmp12 - o1);
        out[3] = lim(tmp13 + o0);
        out[4] = lim(tmp13 - o0);
    }
}

/// The odd part of `jpeg_idct_islow` (figure 8 of the AA&N paper); inputs are y7, y5, y3, y1.
#[inline(always)]
fn islow_odd(mut tmp0: i64, mut tmp1: i64, mut tmp2: i64, mut tmp3: i64) -> (i64, i64, i64, i64) {
    let z1 = tmp0 + tmp3;
    let z2 = tmp1 + tmp2;
    let z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    let z5 = (z3 + z4) * FIX_1_175875602;
    tmp0 *= FIX_0_298631336;
    tmp1 *= FIX_2_053119869;
    tmp2 *= FIX_3_072711026;
    tmp3 *= FIX_1_501321110;
    let z1 = z1 * -FIX_0_899976223;
    let z2 = z2 * -FIX_2_562915447;
    let z3 = z3 * -FIX_1_961570560 + z5;
    let z4 = z4 * -FIX_0_390180644 + z5;
    (tmp0 + z1 + z3, tmp1 + z2 + z4, tmp2 + z2 + z3, tmp3 + z1 + z4)
}

/// `jddctmgr.c`'s AA&N multipliers for the fast IDCT: each quantization value (natural order)
/// scaled by `aanscales` and descaled to `IFAST_SCALE_BITS` = 2 fractional bits, as a `short`.
#[must_use]
pub fn ifast_multipliers(quant: &[i32; 64]) -> [i32; 64] {
    #[rustfmt::skip]
    const AANSCALES: [i32; 64] = [
        16384, 22725, 21407, 19266, 16384, 12873,  8867,  4520,
        22725, 31521, 29692, 26722, 22725, 17855, 12299,  6270,
        21407, 29692, 27969, 25172, 21407, 16819, 11585,  5906,
        19266, 26722, 25172, 22654, 19266, 15137, 10426,  5315,
        16384, 22725, 21407, 19266, 16384, 12873,  8867,  4520,
        12873, 17855, 16819, 15137, 12873, 10114,  6967,  3552,
         8867, 12299, 11585, 10426,  8867,  6967,  4799,  2446,
         4520,  6270,  5906,  5315,  4520,  3552,  2446,  1247,
    ];
    let mut out = [0; 64];
    for i in 0..64 {
        // MULTIPLY16V16 casts both to INT16; IFAST_MULT_TYPE is a short.
        let product = i64::from(quant[i] as i16) * i64::from(AANSCALES[i] as i16);
        out[i] = i32::from(descale(product, 14 - 2) as i16);
    }
    out
}

const IFAST_PASS1_BITS: u32 = 2;
const FIX_1_082392200: i64 = 277;
const FIX_1_414213562: i64 = 362;
const FIX_1_847759065_FAST: i64 = 473;
const FIX_2_613125930: i64 = 669;

/// `MULTIPLY` of `jidctfst.c`: `(DCTELEM)DESCALE(var * const, 8)` without rounding.
#[inline(always)]
fn fmul(var: i32, c: i64) -> i16 {
    ((i64::from(var) * c) >> 8) as i16
}

/// `jpeg_idct_ifast`; `input` holds `coef * ifast_multiplier` in natural order and is left untouched.
#[allow(clippy::too_many_lines)]
pub fn idct_ifast(input: &mut [i32; 64], output: &mut [i16], stride: usize) {
    let mut ws = [0_i32; 64];
    for c in 0..8 {
        if (1..8).all(|k| input[8 * k + c] == 0) {
            // `int dcval = (int)DEQUANTIZE(...)`: not narrowed to a DCTELEM here.
            for k in 0..8 {
                ws[8 * k + c] = input[c];
            }
            continue;
        }
        // `tmpN = DEQUANTIZE(...)` assigns to a 16-bit DCTELEM.
        let q = |k: usize| i32::from(input[8 * k + c] as i16);
        let (t0, t1, t2, t3) = (q(0), q(2), q(4), q(6));
        let tmp10 = (t0 + t2) as i16;
        let tmp11 = (t0 - t2) as i16;
        let tmp13 = (t1 + t3) as i16;
        let tmp12 = (i32::from(fmul(t1 - t3, FIX_1_414213562)) - i32::from(tmp13)) as i16;
        let e0 = (i32::from(tmp10) + i32::from(tmp13)) as i16;
        let e3 = (i32::from(tmp10) - i32::from(tmp13)) as i16;
        let e1 = (i32::from(tmp11) + i32::from(tmp12)) as i16;
        let e2 = (i32::from(tmp11) - i32::from(tmp12)) as i16;
        let (o4, o5, o6, o7) = ifast_odd(q(1), q(3), q(5), q(7));
        let s = |a: i16, b: i16| i32::from(a) + i32::from(b);
        let d = |a: i16, b: i16| i32::from(a) - i32::from(b);
        ws[c] = s(e0, o7);
        ws[8 * 7 + c] = d(e0, o7);
        ws[8 + c] = s(e1, o6);
        ws[8 * 6 + c] = d(e1, o6);
        ws[8 * 2 + c] = s(e2, o5);
        ws[8 * 5 + c] = d(e2, o5);
        ws[8 * 4 + c] = s(e3, o4);
        ws[8 * 3 + c] = d(e3, o4);
    }
    let n = IFAST_PASS1_BITS + 3;
    for r in 0..8 {
        let row = &ws[8 * r..8 * r + 8];
        let out = &mut output[r * stride..r * stride + 8];
        if row[1..].iter().all(|&v| v == 0) {
            out.fill(range_limit(row[0] >> n));
            continue;
        }
        // `(DCTELEM)wsptr[k]`
        let w = |k: usize| i32::from(row[k] as i16);
        let tmp10 = (w(0) + w(4)) as i16;
        let tmp11 = (w(0) - w(4)) as i16;
        let tmp13 = (w(2) + w(6)) as i16;
        let tmp12 = (i32::from(fmul(w(2) - w(6), FIX_1_414213562)) - i32::from(tmp13)) as i16;
        let e0 = (i32::from(tmp10) + i32::from(tmp13)) as i16;
        let e3 = (i32::from(tmp10) - i32::from(tmp13)) as i16;
        let e1 = (i32::from(tmp11) + i32::from(tmp12)) as i16;
        let e2 = (i32::from(tmp11) - i32::from(tmp12)) as i16;
        let (o4, o5, o6, o7) = ifast_odd(w(1), w(3), w(5), w(7));
        let lim = |x: i32| range_limit(x >> n);
        out[0] = lim(i32::from(e0) + i32::from(o7));
        out[7] = lim(i32::from(e0) - i32::from(o7));
        out[1] = lim(i32::from(e1) + i32::from(o6));
        out[6] = lim(i32::from(e1) - i32::from(o6));
        out[2] = lim(i32::from(e2) + i32::from(o5));
        out[5] = lim(i32::from(e2) - i32::from(o5));
        out[4] = lim(i32::from(e3) + i32::from(o4));
        out[3] = lim(i32::from(e3) - i32::from(o4));
    }
}

/// The odd part of `jpeg_idct_ifast`; inputs are the y1, y3, y5, y7 DCTELEMs, outputs tmp4..tmp7.
#[inline(always)]
fn ifast_odd(t4: i32, t5: i32, t6: i32, t7: i32) -> (i16, i16, i16, i16) {
    let z13 = (t6 + t5) as i16;
    let z10 = (t6 - t5) as i16;
    let z11 = (t4 + t7) as i16;
    let z12 = (t4 - t7) as i16;
    let (z10, z11, z12, z13) = (i32::from(z10), i32::from(z11), i32::from(z12), i32::from(z13));
    let tmp7 = (z11 + z13) as i16;
    let tmp11 = fmul(z11 - z13, FIX_1_414213562);
    let z5 = fmul(z10 + z12, FIX_1_847759065_FAST);
    let tmp10 = (i32::from(fmul(z12, FIX_1_082392200)) - i32::from(z5)) as i16;
    let tmp12 = (i32::from(fmul(z10, -FIX_2_613125930)) + i32::from(z5)) as i16;
    let tmp6 = (i32::from(tmp12) - i32::from(tmp7)) as i16;
    let tmp5 = (i32::from(tmp11) - i32::from(tmp6)) as i16;
    let tmp4 = (i32::from(tmp10) + i32::from(tmp5)) as i16;
    (tmp4, tmp5, tmp6, tmp7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_limit_matches_the_table() {
        assert_eq!(range_limit(0), 128);
        assert_eq!(range_limit(127), 255);
        assert_eq!(range_limit(128), 255);
        assert_eq!(range_limit(511), 255);
        assert_eq!(range_limit(512), 0);
        assert_eq!(range_limit(-128), 0);
        assert_eq!(range_limit(-1), 127);
        assert_eq!(range_limit(1024), 128);
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

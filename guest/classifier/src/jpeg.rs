//! JPEG → RGB8 with the same bytes as libjpeg-turbo (what PIL and TensorFlow's `decode_jpeg` use).
//!
//! zune-jpeg (vendored and patched, `guest/vendor/README.md`) parses the file, entropy-decodes and runs
//! libjpeg-turbo's own integer IDCT; this module then does what libjpeg-turbo does after the IDCT
//! with its default `do_fancy_upsampling`: the "fancy" triangle-filter upsampling of `jdsample.c`
//! (with the edge rules of `jdmainct.c`: the first and last real rows and columns repeat) and the
//! fixed-point YCbCr→RGB of `jdcolor.c`. Each step is a port, not an approximation, so a change here
//! shows up as a non-zero decode Δ in `invoke verify`.
//!
//! A model config names the decoder its training pipeline used ([`Decoder`], `[preprocess]
//! jpeg_decoder`): PIL, or TensorFlow's `decode_jpeg` with its accurate or (default) fast IDCT. They
//! differ in the IDCT and, for four-component JPEGs, in the CMYK→RGB step after libjpeg's CMYK
//! (YCCK goes through `jdcolor.c`'s `ycck_cmyk_convert` first).

use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::{ComponentPlane, JpegDecoder, LibjpegIdct, Planes};

use serde::Deserialize;

/// The JPEG decoder a model was trained with, by the name a model config gives it
/// (`toolchain/core/jpeg.py` holds the same names and calls each library for the reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Decoder {
    /// `PIL.Image.open(f).convert("RGB")`: libjpeg-turbo's accurate integer IDCT, Pillow's CMYK→RGB.
    #[serde(rename = "pil")]
    Pil,
    /// `tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")`: the same IDCT, TensorFlow's CMYK→RGB.
    #[serde(rename = "tf-integer-accurate")]
    TfIntegerAccurate,
    /// `tf.io.decode_jpeg` by default (`INTEGER_FAST`): libjpeg-turbo's fast integer IDCT.
    #[serde(rename = "tf-integer-fast")]
    TfIntegerFast,
}

impl Decoder {
    fn idct(self) -> LibjpegIdct {
        match self {
            Decoder::Pil | Decoder::TfIntegerAccurate => LibjpegIdct::AccurateInteger,
            Decoder::TfIntegerFast => LibjpegIdct::FastInteger,
        }
    }

    /// RGB from libjpeg's CMYK output (as stored: Adobe files are inverted).
    fn cmyk_to_rgb(self, [c, m, y, k]: [u8; 4], adobe: bool) -> [u8; 3] {
        match self {
            // PIL reads every CMYK JPEG as Adobe-inverted (`CMYK;I`), then Convert.c's `cmyk2rgb`:
            // nk - c·nk/255 per channel with MULDIV255's rounding.
            Decoder::Pil => {
                let nk = i32::from(k);
                let ch = |v: u8| {
                    let tmp = (255 - i32::from(v)) * nk + 128;
                    (nk - (((tmp >> 8) + tmp) >> 8)).clamp(0, 255) as u8
                };
                [ch(c), ch(m), ch(y)]
            }
            // tensorflow/core/lib/jpeg/jpeg_mem.cc
            Decoder::TfIntegerAccurate | Decoder::TfIntegerFast => {
                let (c, m, y, k) = (u32::from(c), u32::from(m), u32::from(y), u32::from(k));
                let ch = |v: u32| if adobe { k * v / 255 } else { (255 - k) * (255 - v) / 255 } as u8;
                [ch(c), ch(m), ch(y)]
            }
        }
    }
}

/// Decode `bytes` to `(width, height, RGB8)` as `decoder` does. Sides over `max_side` are refused
/// from the header. Grayscale comes back with R = G = B.
pub fn decode_rgb8(
    bytes: &[u8],
    decoder: Decoder,
    max_side: usize,
) -> Result<(usize, usize, Vec<u8>), String> {
    // Lenient like PIL on damaged scan data (missing rows come back grey); the caller has already
    // refused truncated files.
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(max_side)
        .set_max_height(max_side);
    let mut zune = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    zune.set_libjpeg_idct(decoder.idct());
    let planes = zune.decode_planes().map_err(|e| e.to_string())?;
    let rgb = planes_to_rgb8(&planes, decoder)?;
    Ok((planes.width, planes.height, rgb))
}

/// Upsample every component to the image size and convert to RGB8.
fn planes_to_rgb8(planes: &Planes, decoder: Decoder) -> Result<Vec<u8>, String> {
    let (w, h) = (planes.width, planes.height);
    let full: Vec<Vec<u8>> = planes
        .components
        .iter()
        .map(|c| upsample(c, planes.max_h_samp, planes.max_v_samp, w, h))
        .collect::<Result<_, _>>()?;
    let n = w * h;
    let mut rgb = vec![0_u8; n * 3];
    match (planes.colorspace, full.as_slice()) {
        (ColorSpace::Luma, [y]) => {
            for (px, &g) in rgb.chunks_exact_mut(3).zip(y) {
                px.fill(g);
            }
        }
        (ColorSpace::YCbCr, [y, cb, cr]) => {
            let tables = YccTables::new();
            for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
                px.copy_from_slice(&tables.to_rgb(y[i], cb[i], cr[i]));
            }
        }
        (ColorSpace::RGB, [r, g, b]) => {
            for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
                px.copy_from_slice(&[r[i], g[i], b[i]]);
            }
        }
        (ColorSpace::CMYK, [c, m, y, k]) => {
            for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
                px.copy_from_slice(&decoder.cmyk_to_rgb([c[i], m[i], y[i], k[i]], planes.adobe_marker));
            }
        }
        (ColorSpace::YCCK, [y, cb, cr, k]) => {
            let tables = YccTables::new();
            for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
                // ycck_cmyk_convert: C, M, Y = range_limit[MAXJSAMPLE - R, G, B]; K passes through.
                let [r, g, b] = tables.to_rgb_unclamped(y[i], cb[i], cr[i]);
                let cmy = |v: i32| (255 - v).clamp(0, 255) as u8;
                let cmyk = [cmy(r), cmy(g), cmy(b), k[i]];
                px.copy_from_slice(&decoder.cmyk_to_rgb(cmyk, planes.adobe_marker));
            }
        }
        (space, comps) => {
            return Err(format!(
                "unsupported JPEG colour space {space:?} with {} components",
                comps.len()
            ))
        }
    }
    Ok(rgb)
}

/// `jdsample.c`'s choice for one component, then the `out_w × out_h` top-left part of the result.
fn upsample(
    c: &ComponentPlane,
    max_h: usize,
    max_v: usize,
    out_w: usize,
    out_h: usize,
) -> Result<Vec<u8>, String> {
    if c.h_samp == 0 || c.v_samp == 0 || c.width == 0 || c.height == 0 {
        return Err("JPEG component with no samples".into());
    }
    let (h, v) = (c.h_samp, c.v_samp);
    let up = if h == max_h && v == max_v {
        c.samples.clone()
    } else if h * 2 == max_h && v == max_v {
        if c.width > 2 {
            rows_map(c, |row, _| h2v1_fancy(row))
        } else {
            int_upsample(c, 2, 1)
        }
    } else if h == max_h && v * 2 == max_v {
        h1v2_fancy(c)
    } else if h * 2 == max_h && v * 2 == max_v {
        if c.width > 2 {
            h2v2_fancy(c)
        } else {
            int_upsample(c, 2, 2)
        }
    } else if max_h % h == 0 && max_v % v == 0 {
        int_upsample(c, max_h / h, max_v / v)
    } else {
        // JERR_FRACT_SAMPLE_NOTIMPL, as libjpeg-turbo.
        return Err(format!(
            "JPEG sampling factors {h}x{v} of {max_h}x{max_v} are fractional; libjpeg cannot \
             decode them either"
        ));
    };
    let up_w = c.width * (max_h / h).max(1);
    crop(&up, up_w, out_w, out_h)
}

fn crop(data: &[u8], stride: usize, w: usize, h: usize) -> Result<Vec<u8>, String> {
    if stride < w || data.len() < stride * h {
        return Err("JPEG component smaller than the image".into());
    }
    Ok(data.chunks_exact(stride).take(h).flat_map(|r| &r[..w]).copied().collect())
}

fn rows_map(c: &ComponentPlane, f: impl Fn(&[u8], usize) -> Vec<u8>) -> Vec<u8> {
    c.samples.chunks_exact(c.width).enumerate().flat_map(|(i, r)| f(r, i)).collect()
}

/// `h2v1_fancy_upsample`: 3/4 nearer + 1/4 further sample, biases 1 and 2; edges repeat.
fn h2v1_fancy(row: &[u8]) -> Vec<u8> {
    let n = row.len();
    let s = |i: usize| i32::from(row[i]);
    let mut out = Vec::with_capacity(2 * n);
    out.push(row[0]);
    out.push(((s(0) * 3 + s(1) + 2) >> 2) as u8);
    for i in 1..n - 1 {
        let here = s(i) * 3;
        out.push(((here + s(i - 1) + 1) >> 2) as u8);
        out.push(((here + s(i + 1) + 2) >> 2) as u8);
    }
    out.push(((s(n - 1) * 3 + s(n - 2) + 1) >> 2) as u8);
    out.push(row[n - 1]);
    out
}

/// The row above (`up`) or below of row `r`, the first and last real rows repeating (`jdmainct.c`).
fn neighbour_row(c: &ComponentPlane, r: usize, up: bool) -> &[u8] {
    let i = if up { r.saturating_sub(1) } else { (r + 1).min(c.height - 1) };
    &c.samples[i * c.width..(i + 1) * c.width]
}

/// `h1v2_fancy_upsample`: vertical only, bias 1 towards the row above and 2 towards the row below.
fn h1v2_fancy(c: &ComponentPlane) -> Vec<u8> {
    let mut out = Vec::with_capacity(c.samples.len() * 2);
    for (r, row) in c.samples.chunks_exact(c.width).enumerate() {
        for (up, bias) in [(true, 1), (false, 2)] {
            let other = neighbour_row(c, r, up);
            out.extend(
                row.iter()
                    .zip(other)
                    .map(|(&a, &b)| ((i32::from(a) * 3 + i32::from(b) + bias) >> 2) as u8),
            );
        }
    }
    out
}

/// `h2v2_fancy_upsample`: column sums 3·nearer row + further row, then 3/4 · 1/4 across with
/// biases 8 and 7 (a /16 filter overall); the first and last columns take `colsum * 4`.
fn h2v2_fancy(c: &ComponentPlane) -> Vec<u8> {
    let n = c.width;
    let mut out = Vec::with_capacity(c.samples.len() * 4);
    let mut colsum = vec![0_i32; n];
    for (r, row) in c.samples.chunks_exact(n).enumerate() {
        for up in [true, false] {
            let other = neighbour_row(c, r, up);
            for ((sum, &a), &b) in colsum.iter_mut().zip(row).zip(other) {
                *sum = i32::from(a) * 3 + i32::from(b);
            }
            out.push(((colsum[0] * 4 + 8) >> 4) as u8);
            out.push(((colsum[0] * 3 + colsum[1] + 7) >> 4) as u8);
            for i in 1..n - 1 {
                out.push(((colsum[i] * 3 + colsum[i - 1] + 8) >> 4) as u8);
                out.push(((colsum[i] * 3 + colsum[i + 1] + 7) >> 4) as u8);
            }
            out.push(((colsum[n - 1] * 3 + colsum[n - 2] + 8) >> 4) as u8);
            out.push(((colsum[n - 1] * 4 + 7) >> 4) as u8);
        }
    }
    out
}

/// `int_upsample` (and `h2v1_upsample`/`h2v2_upsample`): each sample repeated `hx × vx` times.
fn int_upsample(c: &ComponentPlane, hx: usize, vx: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(c.samples.len() * hx * vx);
    for row in c.samples.chunks_exact(c.width) {
        let wide: Vec<u8> = row.iter().flat_map(|&s| std::iter::repeat(s).take(hx)).collect();
        for _ in 0..vx {
            out.extend_from_slice(&wide);
        }
    }
    out
}

/// `jdcolor.c`'s `build_ycc_rgb_table` (16-bit fixed point, `ONE_HALF` rounding).
struct YccTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

impl YccTables {
    const SCALEBITS: u32 = 16;
    const ONE_HALF: i32 = 1 << (Self::SCALEBITS - 1);

    fn fix(x: f64) -> i32 {
        (x * f64::from(1_u32 << Self::SCALEBITS) + 0.5) as i32
    }

    fn new() -> Self {
        let mut t = YccTables { cr_r: [0; 256], cb_b: [0; 256], cr_g: [0; 256], cb_g: [0; 256] };
        for i in 0..256 {
            let x = i as i32 - 128;
            t.cr_r[i] = (Self::fix(1.40200) * x + Self::ONE_HALF) >> Self::SCALEBITS;
            t.cb_b[i] = (Self::fix(1.77200) * x + Self::ONE_HALF) >> Self::SCALEBITS;
            t.cr_g[i] = -Self::fix(0.71414) * x;
            t.cb_g[i] = -Self::fix(0.34414) * x + Self::ONE_HALF;
        }
        t
    }

    /// `ycc_rgb_convert` for one pixel; `range_limit` is a clamp to 0..=255.
    fn to_rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        self.to_rgb_unclamped(y, cb, cr).map(|v| v.clamp(0, 255) as u8)
    }

    /// The sums `ycc_rgb_convert` and `ycck_cmyk_convert` index `range_limit` with.
    fn to_rgb_unclamped(&self, y: u8, cb: u8, cr: u8) -> [i32; 3] {
        let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
        [
            y + self.cr_r[cr],
            y + ((self.cb_g[cb] + self.cr_g[cr]) >> Self::SCALEBITS),
            y + self.cb_b[cb],
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, hs: usize, vs: usize, samples: Vec<u8>) -> ComponentPlane {
        ComponentPlane { h_samp: hs, v_samp: vs, width: w, height: h, samples }
    }

    #[test]
    fn fancy_h2v1_matches_libjpeg_by_hand() {
        // in 10 20 40: out 10, (30+20+2)>>2=13, (60+10+1)>>2=17, (60+40+2)>>2=25, (120+20+1)>>2=35, 40
        assert_eq!(h2v1_fancy(&[10, 20, 40]), vec![10, 13, 17, 25, 35, 40]);
    }

    #[test]
    fn fancy_h2v2_flat_plane_stays_flat() {
        let c = plane(3, 2, 1, 1, vec![77; 6]);
        assert!(h2v2_fancy(&c).iter().all(|&v| v == 77));
        assert_eq!(h2v2_fancy(&c).len(), 24);
    }

    #[test]
    fn neutral_chroma_is_grey() {
        let t = YccTables::new();
        assert_eq!(t.to_rgb(100, 128, 128), [100, 100, 100]);
        // Pure red in full-range YCbCr (JFIF): Y 76, Cb 85, Cr 255.
        assert_eq!(t.to_rgb(76, 85, 255), [254, 0, 0]);
    }

    #[test]
    fn fractional_sampling_is_an_error() {
        let c = plane(2, 2, 2, 1, vec![0; 4]);
        assert!(upsample(&c, 3, 1, 3, 2).is_err());
    }
}

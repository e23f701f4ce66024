//! JPEG → RGB8 with the same bytes as libjpeg-turbo (what PIL and TensorFlow's `decode_jpeg` use).
//!
//! zune-jpeg (vendored and patched, `guest/vendor/README.md`) parses the file, entropy-decodes and runs
//! libjpeg-turbo's integer IDCTs as its x86-64 vector code computes them; this module then does what libjpeg-turbo does after the IDCT
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

/// Upsample every component to the image size and convert to RGB8, one output row at a time (so the
/// only full-size buffers are the planes and the result).
fn planes_to_rgb8(planes: &Planes, decoder: Decoder) -> Result<Vec<u8>, String> {
    let (w, h) = (planes.width, planes.height);
    if w == 0 || h == 0 {
        return Err(format!("the JPEG is {w}x{h}; it has no pixels"));
    }
    let upsamplers: Vec<Upsampler> = planes
        .components
        .iter()
        .map(|c| Upsampler::new(c, planes.max_h_samp, planes.max_v_samp, w))
        .collect::<Result<_, _>>()?;
    let tables = YccTables::new();
    let mut rows: Vec<Vec<u8>> = upsamplers.iter().map(|u| vec![0; u.full_width()]).collect();
    let mut rgb = vec![0_u8; w * h * 3];
    for (row_index, out) in rgb.chunks_exact_mut(w * 3).enumerate() {
        for (u, row) in upsamplers.iter().zip(&mut rows) {
            u.row(row_index, row);
        }
        let pixels = out.chunks_exact_mut(3);
        match (planes.colorspace, rows.as_slice()) {
            (ColorSpace::Luma, [g]) => pixels.zip(g).for_each(|(px, &g)| px.fill(g)),
            (ColorSpace::YCbCr, [y, cb, cr]) => {
                for (i, px) in pixels.enumerate() {
                    px.copy_from_slice(&tables.to_rgb(y[i], cb[i], cr[i]));
                }
            }
            (ColorSpace::RGB, [r, g, b]) => {
                for (i, px) in pixels.enumerate() {
                    px.copy_from_slice(&[r[i], g[i], b[i]]);
                }
            }
            (ColorSpace::CMYK, [c, m, ye, k]) => {
                for (i, px) in pixels.enumerate() {
                    px.copy_from_slice(&decoder.cmyk_to_rgb([c[i], m[i], ye[i], k[i]], planes.adobe_marker));
                }
            }
            (ColorSpace::YCCK, [y, cb, cr, k]) => {
                for (i, px) in pixels.enumerate() {
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
    }
    Ok(rgb)
}

/// How `jdsample.c` brings one component to full size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Fullsize,
    /// `h2v1_fancy_upsample`
    H2V1Fancy,
    /// `h1v2_fancy_upsample`
    H1V2Fancy,
    /// `h2v2_fancy_upsample`
    H2V2Fancy,
    /// `int_upsample` (and `h2v1_upsample`/`h2v2_upsample`): each sample repeated `h × v` times.
    Replicate(usize, usize),
}

/// One component and the method `jdsample.c`'s `jinit_upsampler` picks for it; `row(y)` gives output
/// row `y` at full resolution (at least the image width).
struct Upsampler<'a> {
    plane: &'a ComponentPlane,
    method: Method,
}

impl<'a> Upsampler<'a> {
    fn new(c: &'a ComponentPlane, max_h: usize, max_v: usize, width: usize) -> Result<Self, String> {
        let (h, v) = (c.h_samp, c.v_samp);
        if h == 0 || v == 0 || c.width == 0 || c.height == 0 || c.samples.len() != c.width * c.height {
            return Err("JPEG component with no samples".into());
        }
        // do_fancy_upsampling, with the fancy h2 cases only for planes wider than 2 samples
        let method = if h == max_h && v == max_v {
            Method::Fullsize
        } else if h * 2 == max_h && v == max_v {
            if c.width > 2 { Method::H2V1Fancy } else { Method::Replicate(2, 1) }
        } else if h == max_h && v * 2 == max_v {
            Method::H1V2Fancy
        } else if h * 2 == max_h && v * 2 == max_v {
            if c.width > 2 { Method::H2V2Fancy } else { Method::Replicate(2, 2) }
        } else if max_h % h == 0 && max_v % v == 0 {
            Method::Replicate(max_h / h, max_v / v)
        } else {
            // JERR_FRACT_SAMPLE_NOTIMPL, as libjpeg-turbo.
            return Err(format!(
                "JPEG sampling factors {h}x{v} of {max_h}x{max_v} are fractional; libjpeg cannot \
                 decode them either"
            ));
        };
        let up = Upsampler { plane: c, method };
        if up.full_width() < width {
            return Err("JPEG component narrower than the image".into());
        }
        Ok(up)
    }

    /// Samples per upsampled row before cropping to the image width.
    fn full_width(&self) -> usize {
        let w = self.plane.width;
        match self.method {
            Method::Fullsize | Method::H1V2Fancy => w,
            Method::H2V1Fancy | Method::H2V2Fancy => 2 * w,
            Method::Replicate(hx, _) => hx * w,
        }
    }

    /// Input row `r` (clamped: `jdmainct.c` repeats the first and last real rows as context).
    fn input(&self, r: isize) -> &[u8] {
        let r = r.clamp(0, self.plane.height as isize - 1) as usize;
        &self.plane.samples[r * self.plane.width..(r + 1) * self.plane.width]
    }

    /// Output row `y` into `out` (`full_width()` samples; the first image-width ones are the image's).
    fn row(&self, y: usize, out: &mut [u8]) {
        let y = y as isize;
        match self.method {
            Method::Fullsize => out.copy_from_slice(self.input(y)),
            Method::H2V1Fancy => h2v1_fancy(self.input(y), out),
            Method::H1V2Fancy => {
                // the nearer row is y/2; the further one above for even y (bias 1), below for odd (bias 2)
                let (near, far, bias) = fancy_rows(self, y);
                for ((o, &a), &b) in out.iter_mut().zip(near).zip(far) {
                    *o = ((i32::from(a) * 3 + i32::from(b) + bias) >> 2) as u8;
                }
            }
            Method::H2V2Fancy => {
                let (near, far, _) = fancy_rows(self, y);
                h2v2_fancy(near, far, out);
            }
            Method::Replicate(hx, vx) => {
                let row = self.input(y / vx as isize);
                for (chunk, &s) in out.chunks_exact_mut(hx).zip(row) {
                    chunk.fill(s);
                }
            }
        }
    }
}

/// The nearer and further input rows of output row `y` for 2:1 vertical upsampling, and
/// `h1v2_fancy_upsample`'s bias (1 towards the row above, 2 towards the row below).
fn fancy_rows<'a>(u: &'a Upsampler, y: isize) -> (&'a [u8], &'a [u8], i32) {
    let r = y / 2;
    if y % 2 == 0 {
        (u.input(r), u.input(r - 1), 1)
    } else {
        (u.input(r), u.input(r + 1), 2)
    }
}

/// `h2v1_fancy_upsample` of one row: 3/4 nearer + 1/4 further sample, biases 1 and 2; the first and
/// last samples repeat.
fn h2v1_fancy(row: &[u8], out: &mut [u8]) {
    let n = row.len();
    triangle(n, |i| i32::from(row[i]), [1, 2], 2, out);
    out[0] = row[0];
    out[2 * n - 1] = row[n - 1];
}

/// `h2v2_fancy_upsample` of one output row: column sums 3·nearer row + further row, then 3/4 · 1/4
/// across with biases 8 and 7 (a /16 filter overall); the first and last columns take `colsum * 4`.
fn h2v2_fancy(near: &[u8], far: &[u8], out: &mut [u8]) {
    let n = near.len();
    let colsum = |i: usize| i32::from(near[i]) * 3 + i32::from(far[i]);
    triangle(n, colsum, [8, 7], 4, out);
    out[0] = ((colsum(0) * 4 + 8) >> 4) as u8;
    out[2 * n - 1] = ((colsum(n - 1) * 4 + 7) >> 4) as u8;
}

/// What libjpeg's two fancy horizontal upsamplers share: output `2i` is `(3 v(i) + v(i-1) + bias[0]) >>
/// shift` and output `2i + 1` is `(3 v(i) + v(i+1) + bias[1]) >> shift`, for every `i` that has that
/// neighbour; the first and last outputs are the caller's.
fn triangle(n: usize, v: impl Fn(usize) -> i32, bias: [i32; 2], shift: u32, out: &mut [u8]) {
    for i in 0..n {
        let here = v(i) * 3;
        if i > 0 {
            out[2 * i] = ((here + v(i - 1) + bias[0]) >> shift) as u8;
        }
        if i + 1 < n {
            out[2 * i + 1] = ((here + v(i + 1) + bias[1]) >> shift) as u8;
        }
    }
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
        let mut out = [0; 6];
        h2v1_fancy(&[10, 20, 40], &mut out);
        assert_eq!(out, [10, 13, 17, 25, 35, 40]);
    }

    #[test]
    fn fancy_h2v2_flat_plane_stays_flat() {
        let c = plane(3, 2, 1, 1, vec![77; 6]);
        let u = Upsampler::new(&c, 2, 2, 6).unwrap();
        assert_eq!(u.method, Method::H2V2Fancy);
        for y in 0..4 {
            let mut out = vec![0; u.full_width()];
            u.row(y, &mut out);
            assert_eq!(out, vec![77; 6]);
        }
    }

    #[test]
    fn h1v2_uses_the_row_above_then_below_with_biases_1_and_2() {
        let c = plane(1, 2, 1, 1, vec![0, 100]);
        let u = Upsampler::new(&c, 1, 2, 1).unwrap();
        let rows: Vec<u8> = (0..4)
            .map(|y| {
                let mut out = [0];
                u.row(y, &mut out);
                out[0]
            })
            .collect();
        // row 0: 3*0+0 (+1)>>2 = 0; row 1: 3*0+100+2 >> 2 = 25; row 2: 300+0+1 >> 2 = 75; row 3: 400+2>>2 = 100
        assert_eq!(rows, [0, 25, 75, 100]);
    }

    #[test]
    fn narrow_planes_replicate_instead_of_fancy() {
        let c = plane(2, 1, 1, 1, vec![5, 9]);
        assert_eq!(Upsampler::new(&c, 2, 1, 3).unwrap().method, Method::Replicate(2, 1));
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
        assert!(Upsampler::new(&c, 3, 1, 3).is_err());
    }
}

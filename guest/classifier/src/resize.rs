//! The resize filters a model config can name, each written to give the same numbers as the library that
//! defines it, so a model sees what it was trained with. The Python reference (`toolchain/core/resize.py`)
//! calls those libraries themselves and `invoke verify` compares the two on every golden.
//!
//! - TensorFlow's `ResizeBilinear` kernel (`tf2-bilinear`: half-pixel centres, as `tf.image.resize`;
//!   `tf1-bilinear`: TF1's `resize_bilinear` without them): float32 source coordinates and TF's own order of
//!   operations, so the float32 results are identical, not merely close.
//! - Pillow's `Image.resize` on RGB8 (`pil-bilinear`, `pil-bicubic`: separable convolution with the filter
//!   widened by the downscale factor (antialiasing), coefficients in 22-bit fixed point, a horizontal pass
//!   then a vertical one, each rounded to 8 bits; `pil-nearest`, what `keras.utils.load_img` does by
//!   default: Pillow's affine nearest-neighbour scaling with its float64 running coordinate).

use serde::Deserialize;

/// A resize filter, by the name a model config gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Resize {
    #[serde(rename = "tf2-bilinear")]
    Tf2Bilinear,
    #[serde(rename = "tf1-bilinear")]
    Tf1Bilinear,
    #[serde(rename = "pil-nearest")]
    PilNearest,
    #[serde(rename = "pil-bilinear")]
    PilBilinear,
    #[serde(rename = "pil-bicubic")]
    PilBicubic,
}

impl Resize {
    pub fn name(self) -> &'static str {
        match self {
            Resize::Tf2Bilinear => "tf2-bilinear",
            Resize::Tf1Bilinear => "tf1-bilinear",
            Resize::PilNearest => "pil-nearest",
            Resize::PilBilinear => "pil-bilinear",
            Resize::PilBicubic => "pil-bicubic",
        }
    }
}

/// A window of an RGB8 image (the central crop): `height` rows of `width` pixels from (`top`, `left`).
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub data: &'a [u8],
    /// Bytes per row of `data`.
    pub stride: usize,
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

impl Window<'_> {
    fn at(&self, y: usize, x: usize, c: usize) -> u8 {
        self.data[(self.top + y) * self.stride + (self.left + x) * 3 + c]
    }
}

/// Resize `src` to `out_h` x `out_w`: RGB samples in 0..=255 as f32, row-major HWC.
pub fn resize(src: &Window, out_h: usize, out_w: usize, filter: Resize) -> Vec<f32> {
    match filter {
        Resize::Tf2Bilinear => tf_bilinear(src, out_h, out_w, true),
        Resize::Tf1Bilinear => tf_bilinear(src, out_h, out_w, false),
        Resize::PilNearest => to_f32(pil_nearest(src, out_h, out_w)),
        Resize::PilBilinear => to_f32(pil_resample(src, out_h, out_w, &PIL_BILINEAR)),
        Resize::PilBicubic => to_f32(pil_resample(src, out_h, out_w, &PIL_BICUBIC)),
    }
}

fn to_f32(v: Vec<u8>) -> Vec<f32> {
    v.into_iter().map(f32::from).collect()
}

/// One axis of TF's `compute_interpolation_weights`: (lower, upper, lerp) per output index.
fn tf_axis(in_len: usize, out_len: usize, half_pixel_centers: bool) -> Vec<(usize, usize, f32)> {
    // TF: `in_size / static_cast<float>(out_size)`, then the scaler in float32.
    let scale = in_len as f32 / out_len as f32;
    (0..out_len)
        .map(|i| {
            let v = if half_pixel_centers {
                (i as f32 + 0.5) * scale - 0.5
            } else {
                i as f32 * scale
            };
            let floor = v.floor();
            let lower = (floor as i64).max(0) as usize;
            let upper = (v.ceil() as i64).min(in_len as i64 - 1) as usize;
            (lower, upper, v - floor)
        })
        .collect()
}

fn tf_bilinear(src: &Window, out_h: usize, out_w: usize, half_pixel_centers: bool) -> Vec<f32> {
    let ys = tf_axis(src.height, out_h, half_pixel_centers);
    let xs = tf_axis(src.width, out_w, half_pixel_centers);
    let mut out = Vec::with_capacity(out_h * out_w * 3);
    for &(y0, y1, fy) in &ys {
        for &(x0, x1, fx) in &xs {
            for c in 0..3 {
                let p = |y, x| f32::from(src.at(y, x, c));
                // TF's compute_lerp, in its order.
                let top = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * fx;
                let bottom = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * fx;
                out.push(top + (bottom - top) * fy);
            }
        }
    }
    out
}

/// Pillow's nearest-neighbour scaling (`ImagingScaleAffine`): a float64 coordinate that starts at half a
/// step and grows by one step per output pixel, truncated.
fn pil_nearest(src: &Window, out_h: usize, out_w: usize) -> Vec<u8> {
    if (out_h, out_w) == (src.height, src.width) {
        return copy(src);
    }
    let axis = |in_len: usize, out_len: usize| -> Vec<usize> {
        let step = in_len as f64 / out_len as f64;
        let mut pos = step * 0.5;
        (0..out_len)
            .map(|_| {
                // A coordinate past the edge cannot occur for a resize of the whole window; clamp anyway.
                let i = (pos as usize).min(in_len - 1);
                pos += step;
                i
            })
            .collect()
    };
    let (ys, xs) = (axis(src.height, out_h), axis(src.width, out_w));
    let mut out = Vec::with_capacity(out_h * out_w * 3);
    for &y in &ys {
        for &x in &xs {
            out.extend((0..3).map(|c| src.at(y, x, c)));
        }
    }
    out
}

fn copy(src: &Window) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.height * src.width * 3);
    for y in 0..src.height {
        let row = (src.top + y) * src.stride + src.left * 3;
        out.extend_from_slice(&src.data[row..row + src.width * 3]);
    }
    out
}

struct PilFilter {
    support: f64,
    kernel: fn(f64) -> f64,
}

const PIL_BILINEAR: PilFilter = PilFilter {
    support: 1.0,
    kernel: |x| {
        let x = x.abs();
        if x < 1.0 {
            1.0 - x
        } else {
            0.0
        }
    },
};

const PIL_BICUBIC: PilFilter = PilFilter {
    support: 2.0,
    kernel: |x| {
        // Keys' cubic with a = -0.5, in Pillow's order of operations.
        const A: f64 = -0.5;
        let x = x.abs();
        if x < 1.0 {
            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            (((x - 5.0) * x + 8.0) * x - 4.0) * A
        } else {
            0.0
        }
    },
};

/// Fixed-point fraction bits of Pillow's 8-bit resampling: 32 bits less 8 for the sample and 2 for filters'
/// overshoot.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// One axis of Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`: per output index the first input
/// index and the fixed-point weights.
fn pil_axis(in_len: usize, out_len: usize, filter: &PilFilter) -> Vec<(usize, Vec<i32>)> {
    let scale = in_len as f64 / out_len as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support * filterscale;
    let inv = 1.0 / filterscale;
    (0..out_len)
        .map(|o| {
            let center = (o as f64 + 0.5) * scale;
            // C's (int) cast truncates towards zero, as `as` does.
            let min = ((center - support + 0.5) as i64).max(0) as usize;
            let max = ((center + support + 0.5) as i64).min(in_len as i64) as usize;
            let weights: Vec<f64> = (min..max)
                .map(|x| (filter.kernel)((x as f64 - center + 0.5) * inv))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    let scaled = w * f64::from(1u32 << PRECISION_BITS);
                    (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
                })
                .collect();
            (min, fixed)
        })
        .collect()
}

/// An RGB8 image resampled by one pass.
struct Plane {
    height: usize,
    width: usize,
    data: Vec<u8>,
}

impl Plane {
    fn at(&self, y: usize, x: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * 3 + c]
    }
}

/// One of Pillow's 8-bit passes along rows (`horizontal`) or columns: each output sample is the
/// fixed-point weighted sum of its input samples, rounded and clamped to 8 bits.
fn pil_pass(
    (height, width): (usize, usize),
    sample: impl Fn(usize, usize, usize) -> u8,
    taps: &[(usize, Vec<i32>)],
    horizontal: bool,
) -> Plane {
    let half = 1i32 << (PRECISION_BITS - 1);
    let (out_h, out_w) = if horizontal {
        (height, taps.len())
    } else {
        (taps.len(), width)
    };
    let mut data = Vec::with_capacity(out_h * out_w * 3);
    for y in 0..out_h {
        for x in 0..out_w {
            let (first, weights) = &taps[if horizontal { x } else { y }];
            for c in 0..3 {
                let acc = weights.iter().enumerate().fold(half, |acc, (i, &w)| {
                    let s = if horizontal {
                        sample(y, first + i, c)
                    } else {
                        sample(first + i, x, c)
                    };
                    acc.wrapping_add(i32::from(s) * w)
                });
                data.push((acc >> PRECISION_BITS).clamp(0, 255) as u8);
            }
        }
    }
    Plane {
        height: out_h,
        width: out_w,
        data,
    }
}

/// Pillow's `Image.resize` for RGB8 with a convolution filter: two passes, each rounded to 8 bits, and an axis
/// whose size stays is not resampled. Pillow 13 runs the vertical pass first when the height shrinks by more
/// than twice as many pixels as the width does (Pillow PR 9549; the boundary measured against Pillow 13.0.0
/// pixel by pixel: the order changes the rounding, so it has to match).
fn pil_resample(src: &Window, out_h: usize, out_w: usize, filter: &PilFilter) -> Vec<u8> {
    let (in_h, in_w) = (src.height, src.width);
    let horizontal = (out_w != in_w).then(|| pil_axis(in_w, out_w, filter));
    let vertical = (out_h != in_h).then(|| pil_axis(in_h, out_h, filter));
    let at = |y, x, c| src.at(y, x, c);
    let shrink = |i: usize, o: usize| i as i64 - o as i64;
    let vertical_first = out_h < in_h && shrink(in_h, out_h) > 2 * shrink(in_w, out_w);
    match (horizontal, vertical) {
        (None, None) => copy(src),
        (Some(h), None) => pil_pass((in_h, in_w), at, &h, true).data,
        (None, Some(v)) => pil_pass((in_h, in_w), at, &v, false).data,
        (Some(h), Some(v)) if vertical_first => {
            let tmp = pil_pass((in_h, in_w), at, &v, false);
            pil_pass((tmp.height, tmp.width), |y, x, c| tmp.at(y, x, c), &h, true).data
        }
        (Some(h), Some(v)) => {
            let tmp = pil_pass((in_h, in_w), at, &h, true);
            pil_pass((tmp.height, tmp.width), |y, x, c| tmp.at(y, x, c), &v, false).data
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(data: &[u8], h: usize, w: usize) -> Window<'_> {
        Window { data, stride: w * 3, top: 0, left: 0, height: h, width: w }
    }

    #[test]
    fn tf_half_pixel_taps_clamp() {
        // scale 0.5: v = -0.25, 0.25, 0.75, 1.25
        let t = tf_axis(2, 4, true);
        assert_eq!(t[0], (0, 0, 0.75)); // lower and upper both clamp to 0: the lerp is unused
        assert_eq!(t[1], (0, 1, 0.25));
        assert_eq!(t[3], (1, 1, 0.25));
        assert_eq!(tf_axis(4, 2, false), vec![(0, 0, 0.0), (2, 2, 0.0)]);
    }

    #[test]
    fn identity_sizes_are_copies() {
        let data: Vec<u8> = (0..5 * 7 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let w = window(&data, 5, 7);
        for f in [Resize::Tf2Bilinear, Resize::Tf1Bilinear, Resize::PilNearest, Resize::PilBilinear, Resize::PilBicubic] {
            let out = resize(&w, 5, 7, f);
            assert!(out.iter().zip(&data).all(|(a, &b)| *a == f32::from(b)), "{}", f.name());
        }
    }

    #[test]
    fn pil_weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(640, 224), (100, 224), (7, 3), (1, 5)] {
            for f in [&PIL_BILINEAR, &PIL_BICUBIC] {
                for (_, k) in pil_axis(i, o, f) {
                    let sum: i64 = k.iter().map(|&w| i64::from(w)).sum();
                    assert!((sum - (1 << PRECISION_BITS)).abs() <= k.len() as i64, "{i}->{o}: {sum}");
                }
            }
        }
    }
}

//! The image half of preprocessing: encoded bytes → RGB8 (with the config's limits checked from the
//! header first; JPEGs as libjpeg-turbo, `jpeg.rs`) → central crop → the model's resize filter (`resize.rs`) →
//! normalised NHWC f32 tensor.

use crate::jpeg;
use crate::model::{self, Facts};
use crate::resize::{resize, Window};
use crate::{GuestError, Result};
use std::io::Cursor;

/// A decoded image: RGB8, row-major, `h * w * 3` bytes.
#[derive(Debug, Clone)]
pub struct Rgb8 {
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}

fn image_error(e: image::ImageError, facts: &Facts) -> GuestError {
    use image::ImageError as E;
    match e {
        E::Limits(l) => GuestError::bad_image(format!(
            "image exceeds the decoder's limits ({l}); send an image of at most {} pixels and {} \
             per side",
            facts.limits.max_pixels,
            facts.limits.max_side
        )),
        E::Unsupported(u) => GuestError::bad_image(format!(
            "unsupported image ({u}); send a JPEG, PNG, GIF or WebP"
        )),
        other => GuestError::bad_image(format!(
            "image could not be decoded ({other}); the file may be truncated or corrupt"
        )),
    }
}

/// Decode encoded image bytes to RGB8, refusing images over the configured limits from the
/// header before decoding. JPEGs decode as the model config's `jpeg_decoder` (jpeg.rs), other
/// formats through the image crate. Grayscale is replicated, alpha dropped (no compositing),
/// palettes expanded; EXIF orientation is ignored.
pub fn decode_image(bytes: &[u8]) -> Result<Rgb8> {
    use image::{DynamicImage as D, ImageReader, Limits};
    let facts = model::facts()?;
    let (max_side, max_pixels) = (facts.limits.max_side, facts.limits.max_pixels);
    let reader = |limits: Limits| -> Result<ImageReader<Cursor<&[u8]>>> {
        let mut r = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| GuestError::bad_image(format!("cannot read image: {e}")))?;
        if r.format().is_none() {
            return Err(GuestError::bad_image(
                "\"image\" is not a recognised image (expected JPEG, PNG, GIF or WebP bytes, \
                 base64-encoded)",
            ));
        }
        r.limits(limits);
        Ok(r)
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    // Worst case 8 bytes/pixel (RGBA16) for an image at the pixel limit.
    limits.max_alloc = Some(max_pixels.saturating_mul(8));

    let format = reader(Limits::no_limits())?.format();
    if format == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        return Err(GuestError::bad_image(
            "JPEG is truncated (no end-of-image marker after the scan data); send the whole file",
        ));
    }
    // Header only: no pixel buffer is allocated here.
    let (w, h) = reader(Limits::no_limits())?
        .into_dimensions()
        .map_err(|e| image_error(e, facts))?;
    if w == 0 || h == 0 {
        return Err(GuestError::bad_image(format!(
            "image is {w}x{h}; it has no pixels"
        )));
    }
    if w > max_side || h > max_side || (w as u64) * (h as u64) > max_pixels {
        return Err(GuestError::bad_image(format!(
            "image is {w}x{h} ({} pixels); the limit is {} pixels and {} per side; downscale it \
             first",
            (w as u64) * (h as u64),
            max_pixels,
            max_side
        )));
    }
    if format == Some(image::ImageFormat::Jpeg) {
        // As the model's training pipeline decoded it: the same bytes as libjpeg-turbo (jpeg.rs).
        let (width, height, data) =
            jpeg::decode_rgb8(bytes, facts.preprocess.jpeg_decoder, max_side as usize).map_err(|e| {
                GuestError::bad_image(format!(
                    "JPEG could not be decoded ({e}); the file may be truncated or corrupt"
                ))
            })?;
        return Ok(Rgb8 {
            height,
            width,
            data,
        });
    }
    let img = reader(limits)?.decode().map_err(|e| image_error(e, facts))?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let n = width * height;
    let mut data = Vec::with_capacity(n * 3);
    match &img {
        D::ImageRgb8(b) => data.extend_from_slice(b.as_raw()),
        D::ImageRgba8(b) => {
            for p in b.as_raw().chunks_exact(4) {
                data.extend_from_slice(&p[..3]);
            }
        }
        D::ImageLuma8(b) => {
            for &g in b.as_raw() {
                data.extend_from_slice(&[g, g, g]);
            }
        }
        D::ImageLumaA8(b) => {
            for p in b.as_raw().chunks_exact(2) {
                data.extend_from_slice(&[p[0], p[0], p[0]]);
            }
        }
        // 16-bit and float images: the image crate's own conversion (rounds to 8 bits).
        other => data.extend_from_slice(other.to_rgb8().as_raw()),
    }
    if data.len() != n * 3 {
        return Err(GuestError::bad_image(
            "decoded image has an unexpected size",
        ));
    }
    Ok(Rgb8 {
        height,
        width,
        data,
    })
}

/// True if a JPEG has an end-of-image marker (FF D9) after its first start-of-scan segment.
/// zune-jpeg decodes truncated files leniently (filling the rest); we refuse them instead, as
/// PIL does. Marker segments before the scan are skipped by their lengths, so an EOI inside an
/// EXIF thumbnail does not count; inside scan data FF is always followed by 00 or a RST/EOI.
fn jpeg_is_complete(b: &[u8]) -> bool {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return false;
    }
    let mut i = 2;
    // Find the first SOS (FF DA) walking the marker segments.
    loop {
        while i < b.len() && b[i] != 0xFF {
            i += 1; // tolerate junk between segments, as decoders do
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1; // fill bytes
        }
        if i >= b.len() {
            return false;
        }
        let marker = b[i];
        i += 1;
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return false, // EOI before any scan
            _ => {}
        }
        if i + 2 > b.len() {
            return false;
        }
        let len = u16::from_be_bytes([b[i], b[i + 1]]) as usize;
        if len < 2 {
            return false;
        }
        i += len;
        if marker == 0xDA {
            break;
        }
    }
    b.get(i..)
        .is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// Central crop offset and length along one axis: `off = floor((n - n*f) / 2)` in f64.
pub fn crop_axis(n: usize, fraction: f64) -> (usize, usize) {
    let off = ((n as f64 - n as f64 * fraction) / 2.0).floor() as usize;
    (off, n - 2 * off)
}

/// Central crop, the model's resize filter and normalisation to its NHWC f32 input. Every step is specified
/// exactly, so the Python reference (which calls the filter's own library) gives the same numbers.
pub fn preprocess(img: &Rgb8, facts: &Facts) -> Vec<f32> {
    let [_, oh, ow, _] = facts.input.shape;
    let p = &facts.preprocess;
    let (top, height) = crop_axis(img.height, p.central_crop);
    let (left, width) = crop_axis(img.width, p.central_crop);
    let window = Window {
        data: &img.data,
        stride: img.width * 3,
        top,
        left,
        height,
        width,
    };
    let mut out = resize(&window, oh, ow, p.resize);
    for px in out.chunks_exact_mut(3) {
        for c in 0..3 {
            px[c] = (px[c] - p.mean[c]) / p.std[c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_matches_formula() {
        assert_eq!(crop_axis(512, 0.875), (32, 448));
        assert_eq!(crop_axis(1, 0.875), (0, 1));
        assert_eq!(crop_axis(3, 0.875), (0, 3));
        assert_eq!(crop_axis(100, 1.0), (0, 100));
    }

    #[test]
    fn jpeg_completeness() {
        // SOI, APP0 (len 4, 2 bytes payload), SOS (len 2), scan data, EOI
        let mut j = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xD9, 0xFF, 0xDA, 0x00, 0x02,
        ];
        j.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34]);
        assert!(
            !jpeg_is_complete(&j),
            "EOI inside APP0 payload must not count"
        );
        j.extend_from_slice(&[0xFF, 0xD9]);
        assert!(jpeg_is_complete(&j));
        assert!(!jpeg_is_complete(b"\x89PNG"));
    }
}

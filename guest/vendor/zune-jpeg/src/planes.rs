//! The component planes of a decoded JPEG before upsampling and colour conversion, for callers that
//! do those steps themselves (added for the mobilenet-infer-benchmark guest; see
//! `guest/vendor/README.md`).

use alloc::vec::Vec;

use zune_core::bytestream::ZByteReaderTrait;
use zune_core::colorspace::ColorSpace;

use crate::errors::DecodeErrors;
use crate::JpegDecoder;

/// One component's samples after the IDCT, at its own (downsampled) resolution.
#[derive(Clone, Debug)]
pub struct ComponentPlane {
    /// Horizontal sampling factor of this component (`h_samp_factor`).
    pub h_samp:  usize,
    /// Vertical sampling factor of this component (`v_samp_factor`).
    pub v_samp:  usize,
    /// `ceil(image_width * h_samp / max_h_samp)`: libjpeg's `downsampled_width`.
    pub width:   usize,
    /// `ceil(image_height * v_samp / max_v_samp)`: libjpeg's `downsampled_height`.
    pub height:  usize,
    /// `width * height` samples, row-major.
    pub samples: Vec<u8>
}

/// All components of an image, as [`JpegDecoder::decode_planes`] returns them.
#[derive(Clone, Debug)]
pub struct Planes {
    /// Image width in pixels.
    pub width:        usize,
    /// Image height in pixels.
    pub height:       usize,
    /// Largest horizontal sampling factor of any component.
    pub max_h_samp:   usize,
    /// Largest vertical sampling factor of any component.
    pub max_v_samp:   usize,
    /// What the components are, chosen as libjpeg's `default_decompress_parms` does: `Luma`,
    /// `YCbCr`, `RGB`, `CMYK` or `YCCK`.
    pub colorspace:   ColorSpace,
    /// An Adobe APP14 segment was present (CMYK is then stored inverted, Photoshop's convention).
    pub adobe_marker: bool,
    /// One plane per component, in frame order.
    pub components:   Vec<ComponentPlane>
}

impl<T: ZByteReaderTrait> JpegDecoder<T> {
    /// Decode to the component planes after the IDCT, before upsampling and colour conversion
    /// (what libjpeg calls the downsampled components), each cropped to its own size. Rows a
    /// damaged stream never delivered are mid-grey, as zune fills them.
    ///
    /// # Errors
    /// As [`JpegDecoder::decode`], and for images with two or more than four components.
    pub fn decode_planes(&mut self) -> Result<Planes, DecodeErrors> {
        self.decode_headers_internal()?;
        let colorspace = self.libjpeg_colorspace()?;
        self.captured_planes = Some(Vec::new());
        let decoded = if self.is_progressive {
            self.decode_mcu_ycbcr_progressive(&mut [])
        } else {
            self.decode_mcu_ycbcr_baseline(&mut [])
        };
        let mut components = self.captured_planes.take().unwrap_or_default();
        decoded?;
        if components.len() != self.components.len() {
            return Err(DecodeErrors::FormatStatic("the JPEG has no decodable scan data"));
        }
        for plane in &mut components {
            plane.samples.resize(plane.width * plane.height, 128);
        }
        Ok(Planes {
            width: usize::from(self.info.width),
            height: usize::from(self.info.height),
            max_h_samp: self.h_max,
            max_v_samp: self.v_max,
            colorspace,
            adobe_marker: self.adobe_transform.is_some(),
            components
        })
    }

    /// `jdapimin.c`'s `default_decompress_parms`: the JFIF marker, then the Adobe marker's transform,
    /// then the component IDs decide (zune's own guess lets 'R','G','B' IDs win over the markers).
    fn libjpeg_colorspace(&self) -> Result<ColorSpace, DecodeErrors> {
        let ids: Vec<u8> = self.components.iter().map(|c| c.id_byte).collect();
        Ok(match (self.components.len(), self.adobe_transform) {
            (1, _) => ColorSpace::Luma,
            (3, _) if self.saw_jfif_marker => ColorSpace::YCbCr,
            (3, Some(0)) => ColorSpace::RGB,
            (3, Some(_)) => ColorSpace::YCbCr,
            (3, None) if ids == [82, 71, 66] => ColorSpace::RGB,
            (3, None) => ColorSpace::YCbCr,
            (4, Some(0) | None) => ColorSpace::CMYK,
            (4, Some(_)) => ColorSpace::YCCK,
            _ => {
                return Err(DecodeErrors::FormatStatic(
                    "a JPEG with 2 components has no colour space (1, 3 or 4 are decodable)"
                ))
            }
        })
    }

    /// Called instead of upsampling and colour conversion after each MCU row's IDCT: append the
    /// rows of each component, cropped to its width, until it has its height.
    pub(crate) fn capture_planes_row(&mut self) -> Result<(), DecodeErrors> {
        let (width, height) = (usize::from(self.info.width), usize::from(self.info.height));
        let (h_max, v_max) = (self.h_max.max(1), self.v_max.max(1));
        let Some(planes) = self.captured_planes.as_mut() else {
            return Ok(());
        };
        if planes.is_empty() {
            // the sampling factors are final now (zune resets them for odd grayscale files)
            for c in &self.components {
                let (w, h) = (
                    (width * c.horizontal_sample).div_ceil(h_max),
                    (height * c.vertical_sample).div_ceil(v_max)
                );
                planes.push(ComponentPlane {
                    h_samp:  c.horizontal_sample,
                    v_samp:  c.vertical_sample,
                    width:   w,
                    height:  h,
                    samples: Vec::with_capacity(w * h)
                });
            }
        }
        for (plane, c) in planes.iter_mut().zip(&self.components) {
            if !c.needed || plane.width == 0 {
                continue;
            }
            if c.width_stride < plane.width {
                return Err(DecodeErrors::FormatStatic("a component is narrower than its plane"));
            }
            let wanted = plane.width * plane.height;
            for row in c.raw_coeff.chunks_exact(c.width_stride) {
                if plane.samples.len() >= wanted {
                    break;
                }
                let samples = row[..plane.width].iter().map(|&s| s.clamp(0, 255) as u8);
                plane.samples.extend(samples);
            }
        }
        Ok(())
    }
}

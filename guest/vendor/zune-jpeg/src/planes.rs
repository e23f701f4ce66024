//! The component planes of a decoded JPEG before upsampling and colour conversion, for callers that
//! do those steps themselves (added for the mobilenet-infer-benchmark guest; see
//! `guest/vendor/README.md`).

use alloc::vec::Vec;

use zune_core::colorspace::ColorSpace;

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

/// All components of an image, as [`crate::JpegDecoder::decode_planes`] returns them.
#[derive(Clone, Debug)]
pub struct Planes {
    /// Image width in pixels.
    pub width:      usize,
    /// Image height in pixels.
    pub height:     usize,
    /// Largest horizontal sampling factor of any component.
    pub max_h_samp: usize,
    /// Largest vertical sampling factor of any component.
    pub max_v_samp: usize,
    /// The colour space of the components (`Luma`, `YCbCr`, `RGB`, `CMYK` or `YCCK`).
    pub colorspace: ColorSpace,
    /// An Adobe APP14 segment was present (CMYK is then stored inverted, Photoshop's convention).
    pub adobe_marker: bool,
    /// One plane per component, in frame order.
    pub components: Vec<ComponentPlane>
}

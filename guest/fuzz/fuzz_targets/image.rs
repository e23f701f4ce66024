//! Raw image bytes straight into the decoders and preprocessing: the request target spends most
//! of its inputs in JSON and base64, this one reaches JPEG/PNG/GIF/WebP headers directly.
#![no_main]

use classifier::{decode_image, input_len, preprocess};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(rgb) = decode_image(bytes) {
        assert_eq!(rgb.data.len(), rgb.width * rgb.height * 3);
        assert_eq!(preprocess(&rgb).len(), input_len());
    }
});

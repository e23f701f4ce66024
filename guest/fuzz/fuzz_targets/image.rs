//! Raw image bytes straight into the decoders and preprocessing: the request target spends most
//! of its inputs in JSON and base64, this one reaches JPEG/PNG/GIF/WebP headers directly.
//! The model facts (limits, input shape) come from the payload named by CLASSIFIER_PAYLOAD.
#![no_main]

use classifier::{decode_image, model, preprocess};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let facts = model::facts().expect("CLASSIFIER_PAYLOAD names a model payload");
    if let Ok(rgb) = decode_image(bytes) {
        assert_eq!(rgb.data.len(), rgb.width * rgb.height * 3);
        assert_eq!(preprocess(&rgb, facts).len(), facts.input_len());
    }
});

"""The JPEG decoders a model config can name (``[preprocess] jpeg_decoder``), each run here by its own library, so
``invoke verify`` checks the guest's decoder (guest/classifier/src/jpeg.rs) against the real thing.

All three are libjpeg-turbo with fancy upsampling; they differ in the IDCT and, for CMYK/YCCK files, in the
CMYK→RGB step after libjpeg. TensorFlow's default ``decode_jpeg`` uses the fast integer IDCT, which differs from
PIL's accurate one by up to 18 levels on photos: a model trained on TF-decoded images should say so.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

DecodeFn = Callable[[bytes], np.ndarray]


@dataclass(frozen=True)
class JpegDecoder:
    name: str
    library: str
    call: str  # the library call it is, as a user would recognise it
    decode: DecodeFn  # JPEG bytes → (h, w, 3) uint8


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _tensorflow(dct_method: str) -> DecodeFn:
    def decode(data: bytes) -> np.ndarray:
        # TensorFlow is imported on first use only: it takes seconds, and most callers never need it.
        import tensorflow as tf

        return np.asarray(tf.io.decode_jpeg(data, channels=3, dct_method=dct_method), dtype=np.uint8)

    return decode


_DECODERS = (
    JpegDecoder("pil", "pillow", "PIL.Image.open(f).convert('RGB') (libjpeg-turbo, accurate integer IDCT)", _pillow),
    JpegDecoder(
        "tf-integer-accurate",
        "tensorflow",
        "tf.io.decode_jpeg(dct_method='INTEGER_ACCURATE')",
        _tensorflow("INTEGER_ACCURATE"),
    ),
    JpegDecoder(
        "tf-integer-fast",
        "tensorflow",
        "tf.io.decode_jpeg() by default (dct_method='INTEGER_FAST')",
        _tensorflow("INTEGER_FAST"),
    ),
)

JPEG_DECODERS: dict[str, JpegDecoder] = {d.name: d for d in _DECODERS}
DEFAULT_JPEG_DECODER = "pil"

"""The resize filters a model config can name (``[preprocess] resize``), each computed here by the library
that defines it, never re-implemented, so ``invoke verify`` checks the guest (guest/classifier/src/resize.rs)
against the real thing.

A config names the library and filter its model was trained with: TF-slim and ``tf.image.resize`` pipelines
use TensorFlow's bilinear kernel (with or without half-pixel centres), Keras fine-tunes usually resize with
Pillow (``Image.resize``; ``keras.utils.load_img(target_size=...)`` uses nearest by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

ResizeFn = Callable[[np.ndarray, int, int], np.ndarray]


@dataclass(frozen=True)
class ResizeFilter:
    name: str
    library: str
    call: str  # the library call it is, as a user would recognise it
    resize: ResizeFn  # (h, w, 3) uint8 → (out_h, out_w, 3) float32 samples in 0..255


def _tensorflow_bilinear(half_pixel_centers: bool) -> ResizeFn:
    def resize(rgb: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
        # TensorFlow is imported on first use only: it takes seconds, and most callers never resize.
        import tensorflow as tf

        out = tf.raw_ops.ResizeBilinear(
            images=rgb[None], size=[out_h, out_w], align_corners=False, half_pixel_centers=half_pixel_centers
        )[0]
        return np.asarray(out, dtype=np.float32)

    return resize


def _pillow(resample: Image.Resampling) -> ResizeFn:
    def resize(rgb: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
        resized = Image.fromarray(np.ascontiguousarray(rgb), "RGB").resize((out_w, out_h), resample)
        return np.asarray(resized, dtype=np.float32)

    return resize


_FILTERS = (
    ResizeFilter(
        "tf2-bilinear",
        "tensorflow",
        "tf.image.resize(method='bilinear') (half-pixel centres, no antialiasing)",
        _tensorflow_bilinear(True),
    ),
    ResizeFilter(
        "tf1-bilinear",
        "tensorflow",
        "tf.compat.v1.image.resize_bilinear (TF1 and TF-slim: no half-pixel centres)",
        _tensorflow_bilinear(False),
    ),
    ResizeFilter(
        "pil-nearest",
        "pillow",
        "PIL Image.resize(NEAREST), as keras.utils.load_img(target_size=...) by default",
        _pillow(Image.Resampling.NEAREST),
    ),
    ResizeFilter(
        "pil-bilinear",
        "pillow",
        "PIL Image.resize(BILINEAR) (antialiased when downscaling)",
        _pillow(Image.Resampling.BILINEAR),
    ),
    ResizeFilter(
        "pil-bicubic",
        "pillow",
        "PIL Image.resize(BICUBIC), Pillow's default (antialiased when downscaling)",
        _pillow(Image.Resampling.BICUBIC),
    ),
)

RESIZE_FILTERS: dict[str, ResizeFilter] = {f.name: f for f in _FILTERS}
# Earlier configs said "bilinear" for TensorFlow 2's kernel; it still means that.
RESIZE_ALIASES = {"bilinear": "tf2-bilinear"}

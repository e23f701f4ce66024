"""The reference preprocessing, written once from the model config.

The Rust guest implements the same arithmetic (guest/classifier/src/image_input.rs and resize.rs), so
decode, crop, resize and normalise can be compared bit for bit:

1. decode to RGB8 (grayscale replicated, alpha dropped without compositing, palette expanded); JPEGs by the
   config's decoder, run by its library (``toolchain/core/jpeg.py``);
2. central crop: ``off = floor((h - h*f) / 2)`` in float64, ``crop = h - 2*off`` (TF's central_crop);
3. the config's resize filter, computed by the library that defines it (``toolchain/core/resize.py``);
4. normalise ``(v - mean) / std`` in float32.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from toolchain.core.config import ModelConfig
from toolchain.core.errors import InputError
from toolchain.core.jpeg import JPEG_DECODERS
from toolchain.core.resize import RESIZE_FILTERS


def decode_rgb8(image_bytes: bytes, cfg: ModelConfig) -> np.ndarray:
    """Decode JPEG/PNG bytes to an (H, W, 3) uint8 array, checking the config's limits from the header."""
    if len(image_bytes) > cfg.max_image_bytes:
        raise InputError(
            f"image is {len(image_bytes)} bytes, over the limit of {cfg.max_image_bytes}",
            hint="send a smaller or more compressed image",
        )
    try:
        with Image.open(io.BytesIO(image_bytes)) as im:
            w, h = im.size
            if w == 0 or h == 0 or w > cfg.max_side or h > cfg.max_side or w * h > cfg.max_pixels:
                raise InputError(
                    f"image is {w}x{h}; accepted are 1..{cfg.max_side} per side and at most {cfg.max_pixels} pixels",
                    hint="resize the image before sending it",
                )
            if im.format == "JPEG":
                return JPEG_DECODERS[cfg.jpeg_decoder].decode(image_bytes)
            opened: Image.Image = im
            if opened.mode == "P" and "transparency" in opened.info:
                opened = opened.convert("RGBA")
            return np.asarray(opened.convert("RGB"), dtype=np.uint8).copy()
    except InputError:
        raise
    except Exception as exc:  # PIL raises many types for bad data
        raise InputError(f"not a decodable image ({exc})", hint="send JPEG or PNG bytes") from exc


def central_crop_box(h: int, w: int, fraction: float) -> tuple[int, int, int, int]:
    off_h = int(np.floor((h - h * fraction) / 2.0))
    off_w = int(np.floor((w - w * fraction) / 2.0))
    return off_h, off_w, h - 2 * off_h, w - 2 * off_w


def normalise(pixels: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    mean = np.asarray(cfg.mean, dtype=np.float32)
    std = np.asarray(cfg.std, dtype=np.float32)
    return ((pixels - mean) / std).astype(np.float32)


def rgb8_to_tensor(rgb: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """(h, w, 3) uint8 → the model's (1, H, W, 3) float32 input."""
    top, left, ch, cw = central_crop_box(rgb.shape[0], rgb.shape[1], cfg.central_crop)
    cropped = rgb[top : top + ch, left : left + cw]
    resized = RESIZE_FILTERS[cfg.resize].resize(cropped, cfg.height, cfg.width)
    return normalise(resized, cfg)[None, ...]


def image_to_tensor(image_bytes: bytes, cfg: ModelConfig) -> np.ndarray:
    return rgb8_to_tensor(decode_rgb8(image_bytes, cfg), cfg)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float32) - np.max(logits)
    e = np.exp(z)
    return (e / e.sum()).astype(np.float32)


def to_probabilities(output: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    flat = np.asarray(output, dtype=np.float32).reshape(-1)
    if flat.size != cfg.classes:
        raise InputError(
            f"model output has {flat.size} values, the config says {cfg.classes} classes",
            hint=f"fix [output] classes in {cfg.config_path.name}",
        )
    return flat if cfg.output_is_softmax else softmax(flat)


def top_k(probs: np.ndarray, cfg: ModelConfig, labels: list[str], k: int = 5) -> dict:
    """The result contract: label, confidence, index and top-5; ties broken by the lower index."""
    order = sorted(range(len(probs)), key=lambda i: (-float(probs[i]), i))[:k]
    top = [{"label": cfg.label_of(i, labels), "confidence": float(probs[i]), "index": int(i)} for i in order]
    return {**top[0], "top5": top}

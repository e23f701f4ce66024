"""Every resize filter a config can name, in the guest, against the library that defines it (issue #18): the
guest's tensor must equal the reference's, computed by TensorFlow or Pillow themselves, for shapes that
upscale, downscale, keep one axis, and sit on each side of Pillow's pass-order boundary."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from toolchain.core.preprocess import rgb8_to_tensor
from toolchain.core.resize import RESIZE_FILTERS
from toolchain.runtimes.guest_base import debug_tensor

pytestmark = pytest.mark.slow

# (height, width) of the source; the model's input is 224x224. Pillow 13 runs its vertical pass first when
# the height shrinks by more than twice as many pixels as the width: 776/777 x 500 and 376/377 x 300 sit on
# either side of that boundary.
SHAPES = [(427, 640), (1000, 60), (60, 1000), (224, 224), (224, 300), (1, 1), (2, 3), (100, 37)]
SHAPES += [(776, 500), (777, 500), (376, 300), (377, 300), (226, 225), (227, 225), (513, 389)]


def photo_like(h: int, w: int, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1.5)))


@pytest.fixture(scope="module")
def guest_with(built, guest_debug):
    """The guest's input tensor and the reference's, for one filter and crop, on an image given as pixels."""

    def run(filter_name: str, crop: float, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        png = io.BytesIO()
        Image.fromarray(rgb).save(png, format="PNG")
        answer = guest_debug(png.getvalue(), resize=filter_name, central_crop=crop)
        assert "error" not in answer, answer
        cfg = dataclasses.replace(built, resize=filter_name, central_crop=crop)
        return debug_tensor(answer, cfg.input_shape), rgb8_to_tensor(rgb, cfg)

    return run


@pytest.mark.parametrize("filter_name", list(RESIZE_FILTERS))
def test_the_guest_resizes_exactly_as_the_library(guest_with, filter_name):
    differences = []
    for i, (h, w) in enumerate(SHAPES):
        for crop in (1.0, 0.875):
            guest, reference = guest_with(filter_name, crop, photo_like(h, w, seed=i))
            worst = float(np.max(np.abs(guest - reference)))
            if worst != 0.0:
                differences.append(f"{h}x{w} crop {crop}: {worst:.3g}")
    assert not differences, f"{filter_name} ({RESIZE_FILTERS[filter_name].call}): {differences}"


def test_the_filters_differ_from_each_other(guest_with):
    """A filter name that silently fell back to another would pass the test above; they must all differ."""
    rgb = photo_like(427, 640, seed=99)
    tensors = {name: guest_with(name, 1.0, rgb)[0] for name in RESIZE_FILTERS}
    names = list(tensors)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.array_equal(tensors[a], tensors[b]), (a, b)

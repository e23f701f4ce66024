import io

import numpy as np
import pytest
from PIL import Image

from toolchain.core.errors import InputError
from toolchain.core.preprocess import central_crop_box, decode_rgb8, rgb8_to_tensor, softmax, top_k
from toolchain.core.resize import RESIZE_FILTERS


def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_central_crop_matches_tf_formula():
    # tf.image.central_crop(0.875) on 300x451 keeps rows 18..281 and columns 28..422
    assert central_crop_box(300, 451, 0.875) == (18, 28, 264, 395)
    assert central_crop_box(5, 7, 1.0) == (0, 0, 5, 7)


@pytest.mark.parametrize("name", list(RESIZE_FILTERS))
def test_resize_identity_is_exact(name):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    assert np.array_equal(RESIZE_FILTERS[name].resize(rgb, 6, 9), rgb.astype(np.float32))


def test_tf2_resize_halving_averages_pairs():
    rgb = np.array([[[0] * 3, [100] * 3, [200] * 3, [250] * 3]], dtype=np.uint8)
    out = RESIZE_FILTERS["tf2-bilinear"].resize(rgb, 1, 2)
    assert out[0, :, 0].tolist() == [50.0, 225.0]


def test_tf1_resize_takes_the_left_sample_without_half_pixel_centres():
    rgb = np.array([[[0] * 3, [100] * 3, [200] * 3, [250] * 3]], dtype=np.uint8)
    assert RESIZE_FILTERS["tf1-bilinear"].resize(rgb, 1, 2)[0, :, 0].tolist() == [0.0, 200.0]


def test_pil_filters_antialias_when_downscaling():
    stripes = np.zeros((1, 8, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    # nearest picks samples; the convolution filters average the stripes to mid-grey
    assert set(RESIZE_FILTERS["pil-nearest"].resize(stripes, 1, 2)[0, :, 0].tolist()) <= {0.0, 255.0}
    for name in ("pil-bilinear", "pil-bicubic"):
        assert all(100 < v < 155 for v in RESIZE_FILTERS[name].resize(stripes, 1, 2)[0, :, 0].tolist()), name


def test_tensor_range_and_shape(default_cfg):
    rgb = np.zeros((300, 400, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    t = rgb8_to_tensor(rgb, default_cfg)
    assert t.shape == (1, 224, 224, 3) and t.dtype == np.float32
    # (1 - f) * 255 + f * 255 rounds in float32, so "exactly 1" is 1 ± 1 ulp
    assert np.allclose(t[..., 0], 1.0, atol=1e-6) and np.allclose(t[..., 1], -1.0, atol=1e-6)


def test_decode_modes_become_rgb(default_cfg):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = decode_rgb8(png(gray), default_cfg)
    assert out.shape == (3, 4, 3) and np.array_equal(out[..., 1], gray)
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 9
    assert decode_rgb8(png(rgba), default_cfg)[0, 0].tolist() == [9, 0, 0]  # alpha dropped, not composited


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "not a decodable image"),
        (b"hello, not an image", "not a decodable image"),
        (png(np.zeros((4, 4, 3), dtype=np.uint8))[:40], "not a decodable image"),
    ],
)
def test_bad_images_are_input_errors(default_cfg, data, message):
    with pytest.raises(InputError, match=message):
        decode_rgb8(data, default_cfg)


def test_pixel_limit_is_checked_from_the_header(default_cfg):
    # an 8193-pixel-wide PNG header is refused before decoding
    wide = png(np.zeros((1, 8193, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="8193x1"):
        decode_rgb8(wide, default_cfg)


def test_top_k_ties_prefer_lower_index(small_cfg):
    probs = np.array([0.1, 0.3, 0.3, 0.0, 0.0, 0.1, 0.1, 0.1, 0.0, 0.0], dtype=np.float32)
    r = top_k(probs, small_cfg, small_cfg.labels())
    assert r["index"] == 1 and [t["index"] for t in r["top5"]] == [1, 2, 0, 5, 6]
    assert r["label"] == "automobile"


def test_softmax_sums_to_one():
    p = softmax(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    assert abs(float(p.sum()) - 1.0) < 1e-6 and p.argmax() == 2

"""Every JPEG decoder a config can name, in the guest, against the library that defines it (issue #18): the guest's
decoded pixels must equal what PIL or TensorFlow's ``decode_jpeg`` give, byte for byte, for every chroma layout
(4:4:4, 4:2:2, 4:2:0, 4:1:1, 4:4:0, 4:1:0, mixed), baseline and progressive, restart intervals, qualities 50–100,
odd and tiny sizes, grayscale, CMYK and YCCK, and the photos scikit-image and matplotlib ship as JPEG."""

from __future__ import annotations

import io
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toolchain.build.golden import cjpeg
from toolchain.core.jpeg import JPEG_DECODERS
from toolchain.runtimes.guest_base import debug_decoded

pytestmark = pytest.mark.slow


def _photo(name: str) -> Image.Image:
    return Image.open(str(resources.files("skimage") / "data" / name)).convert("RGB")


def _pil_jpeg(im: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    im.save(out, format="JPEG", **options)
    return out.getvalue()


def _adobe_transform(jpeg: bytes, transform: int) -> bytes:
    """The same file with its Adobe APP14 colour transform byte replaced (0 CMYK → 2 YCCK)."""
    at = jpeg.index(b"Adobe")
    return jpeg[: at + 11] + bytes([transform]) + jpeg[at + 12 :]


def _without_adobe(jpeg: bytes) -> bytes:
    """The Adobe APP14 segment turned into a comment, so a CMYK file is read without Adobe's polarity."""
    at = jpeg.index(b"Adobe") - 4
    assert jpeg[at : at + 2] == b"\xff\xee"
    return jpeg[: at + 1] + b"\xfe" + jpeg[at + 2 :]


def jpeg_variants() -> dict[str, bytes]:
    astronaut, coffee = _photo("astronaut.png"), _photo("coffee.png")
    out: dict[str, bytes] = {}
    qualities = iter([50, 75, 95, 100] * 20)
    for i, (w, h) in enumerate([(301, 197), (17, 9), (1, 1), (640, 427)]):
        src = (astronaut if i % 2 else coffee).resize((w, h), Image.Resampling.BICUBIC)
        for sub in ("4:4:4", "4:2:2", "4:2:0"):
            for progressive in (False, True):
                q = next(qualities)
                restart = {"restart_marker_rows": 1} if i == 0 else {}
                name = f"pil_{w}x{h}_{sub.replace(':', '')}_q{q}{'_prog' if progressive else ''}.jpg"
                out[name] = _pil_jpeg(src, quality=q, subsampling=sub, progressive=progressive, **restart)
    small = astronaut.resize((35, 19), Image.Resampling.BICUBIC)
    for label, sample in [
        ("411", "4x1,1x1,1x1"),
        ("440", "1x2,1x1,1x1"),
        ("410", "4x2,1x1,1x1"),
        ("mixed", "2x2,1x1,1x2"),
    ]:
        out[f"cjpeg_{label}.jpg"] = cjpeg(coffee.resize((301, 197)), 80, sample)
        out[f"cjpeg_{label}_35x19_prog.jpg"] = cjpeg(small, 85, sample, progressive=True)
    out["gray_513x257.jpg"] = _pil_jpeg(coffee.resize((513, 257)).convert("L"), quality=80)
    cmyk = _pil_jpeg(astronaut.resize((67, 91)).convert("CMYK"), quality=90)
    noise = np.random.default_rng(0).integers(0, 256, (40, 56, 4), dtype=np.uint8)
    out["cmyk_adobe.jpg"] = cmyk
    out["cmyk_random_k.jpg"] = _pil_jpeg(Image.fromarray(noise, "CMYK"), quality=90)
    out["cmyk_no_adobe.jpg"] = _without_adobe(cmyk)
    out["ycck.jpg"] = _adobe_transform(cmyk, 2)
    out["noise_q100.jpg"] = _pil_jpeg(Image.fromarray(noise[..., :3], "RGB"), quality=100, subsampling="4:2:0")
    # What review found beyond the layouts above: components in separate baseline scans (with restart markers),
    # and extreme coefficients where libjpeg-turbo's vector IDCTs (what PIL and TF run) saturate in 16 bits and
    # its scalar C does not: a dithered photo at low quality, quantization tables far above the usual.
    with tempfile.TemporaryDirectory() as tmp:
        separate, tables = Path(tmp) / "separate.txt", Path(tmp) / "tables.txt"
        separate.write_text("0;\n1;\n2;\n")
        tables.write_text(" ".join(str(300 + 50 * i) for i in range(64)) + "\n")
        for sample in ("2x2,1x1,1x1", "1x1,1x1,1x1", "2x1,1x1,1x1"):
            out[f"cjpeg_separate_scans_{sample[:3]}.jpg"] = cjpeg(
                coffee.resize((99, 61)), 85, sample, options=("-scans", str(separate), "-restart", "3B")
            )
        out["cjpeg_big_qtables.jpg"] = cjpeg(
            astronaut.resize((64, 48)), 50, "2x2,1x1,1x1", options=("-qtables", str(tables))
        )
    out["pil_dithered_q30.jpg"] = _pil_jpeg(astronaut.resize((128, 128)).convert("1").convert("RGB"), quality=30)
    for name in ("hubble_deep_field.jpg", "retina.jpg", "rocket.jpg"):
        out[name] = (resources.files("skimage") / "data" / name).read_bytes()
    # a photo outside the golden set: the 512x600 4:2:0 portrait matplotlib ships
    out["grace_hopper.jpg"] = (resources.files("matplotlib") / "mpl-data/sample_data/grace_hopper.jpg").read_bytes()
    return out


@pytest.fixture(scope="module")
def guest_decodes(guest_debug):
    """The guest's answer with its facts naming a given JPEG decoder."""
    return lambda decoder, jpeg: guest_debug(jpeg, jpeg_decoder=decoder)


@pytest.fixture(scope="module")
def variants():
    return jpeg_variants()


@pytest.mark.parametrize("decoder", list(JPEG_DECODERS))
def test_the_guest_decodes_exactly_as_the_library(guest_decodes, variants, decoder):
    differences = []
    for name, jpeg in variants.items():
        answer = guest_decodes(decoder, jpeg)
        assert "error" not in answer, (name, answer)
        guest, reference = debug_decoded(answer), JPEG_DECODERS[decoder].decode(jpeg)
        if guest.shape != reference.shape:
            differences.append(f"{name}: shape {guest.shape} != {reference.shape}")
        elif (worst := int(np.max(np.abs(guest.astype(int) - reference)))) != 0:
            differences.append(f"{name}: up to {worst} levels")
    assert not differences, f"{decoder} ({JPEG_DECODERS[decoder].call}): {differences}"


def test_the_decoders_differ_where_their_libraries_do(guest_decodes, variants):
    """A decoder name that silently fell back to another would pass the test above."""
    photo = next(jpeg for name, jpeg in variants.items() if name.startswith("pil_640x427_420"))
    cmyk = variants["cmyk_random_k.jpg"]
    fast, accurate = (debug_decoded(guest_decodes(d, photo)) for d in ("tf-integer-fast", "pil"))
    assert not np.array_equal(fast, accurate)  # the IDCT
    pil, tf = (debug_decoded(guest_decodes(d, cmyk)) for d in ("pil", "tf-integer-accurate"))
    assert not np.array_equal(pil, tf)  # Pillow's and TensorFlow's CMYK→RGB


def test_a_sampling_factor_zune_cannot_decode_is_a_clear_error(guest_decodes):
    """libjpeg upsamples 3:1 chroma by replication; zune-jpeg refuses factors that are not powers of two. The
    guest must answer with the error contract, not panic."""
    jpeg = cjpeg(_photo("coffee.png").resize((64, 48)), 80, "3x1,1x1,1x1")
    answer = guest_decodes("pil", jpeg)
    assert "could not be decoded" in answer["error"] and "power of two" in answer["error"], answer

"""Golden inputs and TensorFlow's reference outputs, under ``dist/golden/<model>/``.

Real photos come from scikit-image's bundled data (no downloads); edge cases (grayscale, RGBA, palette,
tiny, very wide/tall, JPEG and PNG) are generated from them. For each golden the directory holds the
encoded image, the decoded RGB8 pixels, the reference input tensor, TF's output vector, and ``index.json``
with top-5 labels, so decode, resize and inference parity can each be checked on their own.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from toolchain.build import reference
from toolchain.build.reference import FrozenGraph
from toolchain.core import jpeg, log, preprocess, resize
from toolchain.core.catalog import DistLayout
from toolchain.core.config import ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import (
    Incremental,
    canonical_json,
    digest_inputs,
    sha256_file,
    write_atomic,
)
from toolchain.core.preprocess import decode_rgb8, rgb8_to_tensor, to_probabilities, top_k
from toolchain.core.programs import CJPEG

# The code that makes the goldens and their reference outputs: a change to any of it remakes them (this replaced
# a version number bumped by hand, whose bump was once forgotten and left stale goldens).
REFERENCE_CODE = [Path(__file__), *(Path(m.__file__ or "") for m in (preprocess, resize, jpeg, reference))]

# scikit-image ships these in its wheel: eight colour photos and one grayscale photo.
PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
    "camera.png",
)


@dataclass(frozen=True)
class Golden:
    name: str
    kind: str  # "photo" or "edge"
    image_bytes: bytes


def photo_sources() -> list[Path]:
    data = resources.files("skimage") / "data"
    return [Path(str(data / name)) for name in PHOTOS]


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def cjpeg(
    im: Image.Image, quality: int, sample: str, progressive: bool = False, options: tuple[str, ...] = ()
) -> bytes:
    """JPEG bytes from libjpeg-turbo's cjpeg, for chroma layouts Pillow cannot write (``sample`` as cjpeg's
    ``-sample``, e.g. ``4x1,1x1,1x1`` for 4:1:1; Pillow silently writes 4:2:0 for "4:1:1"); ``options`` are more
    cjpeg switches (``-scans FILE``, ``-qtables FILE``, ``-restart N``)."""
    command = [CJPEG.require(), "-quality", str(quality), "-sample", sample, *(["-progressive"] if progressive else [])]
    command += options
    ppm = _encode(im.convert("RGB"), "PPM")
    done = subprocess.run(command, input=ppm, capture_output=True, check=False)
    if done.returncode != 0:
        raise StageError(f"cjpeg failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def edge_cases() -> list[Golden]:
    data = resources.files("skimage") / "data"
    chelsea = Image.open(str(data / "chelsea.png")).convert("RGB")
    astronaut = Image.open(str(data / "astronaut.png")).convert("RGB")
    camera = Image.open(str(data / "camera.png")).convert("L")
    coffee = Image.open(str(data / "coffee.png")).convert("RGB")
    rocket = Image.open(str(data / "rocket.jpg")).convert("RGB")
    logo = Image.open(str(data / "logo.png"))  # RGBA
    gradient = np.zeros((5, 7, 3), dtype=np.uint8)
    gradient[..., 0] = np.arange(7, dtype=np.uint8)[None, :] * 36
    gradient[..., 1] = np.arange(5, dtype=np.uint8)[:, None] * 60
    gradient[..., 2] = 200
    return [
        Golden("chelsea_q90.jpg", "edge", _encode(chelsea, "JPEG", quality=90)),
        Golden("chelsea_progressive.jpg", "edge", _encode(chelsea, "JPEG", quality=80, progressive=True)),
        Golden("camera_gray.jpg", "edge", _encode(camera, "JPEG", quality=90)),
        Golden("logo_rgba.png", "edge", _encode(logo, "PNG")),
        Golden("chelsea_palette.png", "edge", _encode(chelsea.quantize(64, dither=Image.Dither.NONE), "PNG")),
        Golden("tiny_7x5.png", "edge", _encode(Image.fromarray(gradient), "PNG")),
        Golden(
            "wide_1000x60.jpg",
            "edge",
            _encode(astronaut.resize((1000, 60), Image.Resampling.BILINEAR), "JPEG", quality=90),
        ),
        Golden("tall_40x600.png", "edge", _encode(chelsea.resize((40, 600), Image.Resampling.BILINEAR), "PNG")),
        # JPEG layouts a decoder must get right (issue #18): no chroma subsampling at quality 100, 4:2:2 at an odd
        # size (partial MCUs at the right and bottom edges), restart markers, progressive 4:2:0 at q50 (which
        # flipped the small model's top-1 while the guest's decoder was 4 levels off: TF's margin is 0.086),
        # 4:1:1 and 4:4:0 (written by cjpeg), and CMYK.
        Golden("chelsea_444_q100.jpg", "edge", _encode(chelsea, "JPEG", quality=100, subsampling="4:4:4")),
        Golden(
            "coffee_422_q60_333x251.jpg",
            "edge",
            _encode(coffee.resize((333, 251), Image.Resampling.BICUBIC), "JPEG", quality=60, subsampling="4:2:2"),
        ),
        Golden("rocket_restart_q85.jpg", "edge", _encode(rocket, "JPEG", quality=85, restart_marker_blocks=3)),
        Golden(
            "astronaut_progressive_q50_301x197.jpg",
            "edge",
            _encode(
                astronaut.resize((301, 197), Image.Resampling.BICUBIC),
                "JPEG",
                quality=50,
                progressive=True,
                subsampling="4:2:0",
            ),
        ),
        Golden("coffee_411_q75.jpg", "edge", cjpeg(coffee, 75, "4x1,1x1,1x1")),
        Golden("chelsea_440_progressive_q90.jpg", "edge", cjpeg(chelsea, 90, "1x2,1x1,1x1", progressive=True)),
        Golden("astronaut_cmyk_q90.jpg", "edge", _encode(astronaut.convert("CMYK"), "JPEG", quality=90)),
    ]


def golden_inputs() -> list[Golden]:
    photos = [Golden(p.name, "photo", p.read_bytes()) for p in photo_sources()]
    return photos + edge_cases()


def make_goldens(cfg: ModelConfig, dist: DistLayout, force: bool = False) -> Path:
    """Write the golden set for ``cfg`` (needs the frozen graph from the model stage)."""
    out_dir = dist.golden_dir(cfg.name)
    index_path = out_dir / "index.json"
    pb = dist.frozen_pb(cfg.name)
    inputs = digest_inputs([pb, cfg.config_path, cfg.labels_path, *photo_sources(), *REFERENCE_CODE])
    job = Incremental("golden", dist.stamp("golden", cfg.name), inputs, (index_path,), subject=str(out_dir))
    if job.up_to_date(force):
        return index_path
    labels = cfg.labels()
    reference = FrozenGraph(pb, cfg)
    entries = []
    with log.step(f"golden references for {cfg.name}"):
        for g in golden_inputs():
            stem = g.name.replace(".", "_")
            rgb = decode_rgb8(g.image_bytes, cfg)
            tensor = rgb8_to_tensor(rgb, cfg)
            probs = to_probabilities(reference.run(tensor), cfg)
            files = {
                "image": f"images/{g.name}",
                "decoded_rgb8": f"arrays/{stem}.rgb8.npy",
                "tensor": f"arrays/{stem}.input.npy",
                "probabilities": f"arrays/{stem}.tf.npy",
            }
            write_atomic(out_dir / files["image"], g.image_bytes)
            for key, arr in (("decoded_rgb8", rgb), ("tensor", tensor), ("probabilities", probs)):
                buf = io.BytesIO()
                np.save(buf, arr, allow_pickle=False)
                write_atomic(out_dir / files[key], buf.getvalue())
            entries.append(
                {
                    "name": g.name,
                    "kind": g.kind,
                    "decoded_shape": list(rgb.shape),
                    "files": files,
                    "sha256": {k: sha256_file(out_dir / v) for k, v in files.items()},
                    "tf_result": top_k(probs, cfg, labels),
                }
            )
    index = {"model": cfg.name, "reference": "tensorflow", "goldens": entries}
    write_atomic(index_path, canonical_json(index))
    job.record()
    return index_path


@dataclass(frozen=True)
class GoldenCase:
    name: str
    kind: str
    image_bytes: bytes
    decoded_rgb8: np.ndarray
    tensor: np.ndarray
    tf_probabilities: np.ndarray
    tf_result: dict


def load_goldens(cfg: ModelConfig, dist: DistLayout) -> list[GoldenCase]:
    import json

    out_dir = dist.golden_dir(cfg.name)
    index_path = out_dir / "index.json"
    if not index_path.is_file():
        raise StageError(f"no golden set at {index_path}", hint=f"run `invoke golden --model {cfg.name}` first")
    index = json.loads(index_path.read_text())
    cases = []
    for e in index["goldens"]:
        f = e["files"]
        cases.append(
            GoldenCase(
                name=e["name"],
                kind=e["kind"],
                image_bytes=(out_dir / f["image"]).read_bytes(),
                decoded_rgb8=np.load(out_dir / f["decoded_rgb8"]),
                tensor=np.load(out_dir / f["tensor"]),
                tf_probabilities=np.load(out_dir / f["probabilities"]),
                tf_result=e["tf_result"],
            )
        )
    return cases

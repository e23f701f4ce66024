"""Model configuration (``models/<name>.toml``) and the one place every path is defined."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from toolchain.core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
DEFAULT_MODEL = "mobilenet_v2_1.4_224"


def project_version() -> str:
    """The toolchain's version, from pyproject.toml (its one home)."""
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


RESIZE_FILTERS = ("bilinear",)


@dataclass(frozen=True)
class Source:
    kind: str  # "generator" or "file"
    path: Path | None = None
    generator: str | None = None
    alpha: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    name: str
    description: str
    config_path: Path
    source: Source
    input_name: str
    input_shape: tuple[int, int, int, int]  # NHWC, batch 1
    output_name: str
    classes: int
    output_is_softmax: bool
    labels_path: Path
    label_offset: int
    central_crop: float
    resize: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    max_image_bytes: int
    max_pixels: int
    max_side: int
    tensor_tolerance: float
    image_tolerance: float
    jpeg_decode_tolerance: int

    @property
    def height(self) -> int:
        return self.input_shape[1]

    @property
    def width(self) -> int:
        return self.input_shape[2]

    def labels(self) -> list[str]:
        return self.labels_path.read_text(encoding="utf-8").splitlines()

    def label_of(self, index: int, labels: list[str] | None = None) -> str:
        return (labels or self.labels())[index + self.label_offset]


# Every key a model config may have, per section: anything else is a typo the loader would otherwise ignore.
SCHEMA: dict[str, tuple[str, ...]] = {
    "model": ("name", "description"),
    "source": ("kind", "path", "generator", "alpha", "seed"),
    "input": ("name", "shape", "layout"),
    "output": ("name", "classes", "softmax"),
    "labels": ("file", "offset"),
    "preprocess": ("central_crop", "resize", "mean", "std"),
    "limits": ("max_image_bytes", "max_pixels", "max_side"),
    "tolerance": ("tensor_max_abs", "image_max_abs", "jpeg_decode_max_abs"),
}


def _reject_unknown_keys(raw: dict, where: str) -> None:
    """An unknown section or key is an error with a did-you-mean hint (``centrl_crop`` → ``central_crop``)."""
    for section, table in raw.items():
        if section not in SCHEMA:
            close = difflib.get_close_matches(section, SCHEMA, n=1)
            raise ConfigError(
                f"{where}: unknown section [{section}]",
                hint=f"did you mean [{close[0]}]?" if close else f"sections: {', '.join(SCHEMA)}",
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table, not {type(table).__name__}")
        for key in table:
            if key not in SCHEMA[section]:
                close = difflib.get_close_matches(key, SCHEMA[section], n=1)
                raise ConfigError(
                    f"{where} [{section}]: unknown key '{key}'",
                    hint=f"did you mean '{close[0]}'?" if close else f"[{section}] takes {', '.join(SCHEMA[section])}",
                )


def _require(table: dict, key: str, where: str):
    if key not in table:
        raise ConfigError(f"{where}: missing key '{key}'", hint="see models/mobilenet_v2_1.4_224.toml for every key")
    return table[key]


def load_model_config(model: str | os.PathLike = DEFAULT_MODEL) -> ModelConfig:
    """Load ``models/<model>.toml`` (or a path to any TOML file) and validate it."""
    path = Path(model)
    if path.suffix != ".toml":
        path = MODELS_DIR / f"{model}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in MODELS_DIR.glob("*.toml")))
        raise ConfigError(
            f"no model config at {path}", hint=f"use --model with one of: {known}, or a path to a .toml file"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})", hint="fix the syntax") from exc
    where = str(path)
    _reject_unknown_keys(raw, where)
    section = {
        k: _require(raw, k, where)
        for k in ("model", "source", "input", "output", "labels", "preprocess", "limits", "tolerance")
    }
    src = section["source"]
    kind = _require(src, "kind", where + " [source]")
    if kind == "file":
        src_path = Path(os.path.expanduser(_require(src, "path", where + " [source]")))
        if not src_path.is_absolute():
            src_path = path.parent / src_path
        source = Source(kind="file", path=src_path)
    elif kind == "generator":
        source = Source(
            kind="generator",
            generator=_require(src, "generator", where + " [source]"),
            alpha=float(src.get("alpha", 1.0)),
            seed=int(src.get("seed", 0)),
        )
    else:
        raise ConfigError(f"{where} [source]: kind must be 'generator' or 'file', not {kind!r}")

    shape = tuple(int(v) for v in _require(section["input"], "shape", where + " [input]"))
    layout = section["input"].get("layout", "NHWC")
    if layout != "NHWC" or len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
        raise ConfigError(
            f"{where} [input]: shape {list(shape)} layout {layout}: only NHWC [1, H, W, 3] inputs are supported"
        )
    pre = section["preprocess"]
    crop = float(_require(pre, "central_crop", where + " [preprocess]"))
    if not 0.0 < crop <= 1.0:
        raise ConfigError(f"{where} [preprocess]: central_crop must be in (0, 1], got {crop}")
    resize = _require(pre, "resize", where + " [preprocess]")
    if resize not in RESIZE_FILTERS:
        raise ConfigError(
            f"{where} [preprocess]: resize {resize!r} is not supported (supported: {', '.join(RESIZE_FILTERS)})"
        )
    mean = tuple(float(v) for v in _require(pre, "mean", where))
    std = tuple(float(v) for v in _require(pre, "std", where))
    if len(mean) != 3 or len(std) != 3 or any(s == 0 for s in std):
        raise ConfigError(f"{where} [preprocess]: mean and std need 3 values each, std non-zero")

    out = section["output"]
    classes = int(_require(out, "classes", where + " [output]"))
    labels_path = path.parent / _require(section["labels"], "file", where + " [labels]")
    offset = int(section["labels"].get("offset", 0))
    if not labels_path.is_file():
        raise ConfigError(f"{where} [labels]: label file {labels_path} does not exist")
    n_labels = len(labels_path.read_text(encoding="utf-8").splitlines())
    if offset < 0 or n_labels < classes + offset:
        raise ConfigError(
            f"{where} [labels]: {labels_path.name} has {n_labels} lines, but {classes} classes "
            f"with offset {offset} need {classes + offset}"
        )
    lim = section["limits"]
    tol = section["tolerance"]
    return ModelConfig(
        name=_require(section["model"], "name", where + " [model]"),
        description=section["model"].get("description", ""),
        config_path=path.resolve(),
        source=source,
        input_name=_require(section["input"], "name", where + " [input]"),
        input_shape=shape,
        output_name=_require(out, "name", where + " [output]"),
        classes=classes,
        output_is_softmax=bool(_require(out, "softmax", where + " [output]")),
        labels_path=labels_path.resolve(),
        label_offset=offset,
        central_crop=crop,
        resize=resize,
        mean=mean,
        std=std,
        max_image_bytes=int(_require(lim, "max_image_bytes", where)),
        max_pixels=int(_require(lim, "max_pixels", where)),
        max_side=int(_require(lim, "max_side", where)),
        tensor_tolerance=float(_require(tol, "tensor_max_abs", where)),
        image_tolerance=float(_require(tol, "image_max_abs", where)),
        jpeg_decode_tolerance=int(_require(tol, "jpeg_decode_max_abs", where)),
    )


CACHE_DIR = Path(os.environ.get("MIB_CACHE", Path.home() / ".cache" / "mobilenet-infer-benchmark"))

"""Model configuration (``models/<name>.toml``) and the one place every path is defined."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from toolchain.core.errors import ConfigError
from toolchain.core.jpeg import DEFAULT_JPEG_DECODER, JPEG_DECODERS
from toolchain.core.resize import RESIZE_ALIASES, RESIZE_FILTERS

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
DEFAULT_MODEL = "mobilenet_v2_1.4_224"


def project_version() -> str:
    """The toolchain's version, from pyproject.toml (its one home)."""
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


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
    jpeg_decoder: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    max_image_bytes: int
    max_pixels: int
    max_side: int
    tensor_tolerance: float
    image_tolerance: float

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
    "preprocess": ("central_crop", "resize", "jpeg_decoder", "mean", "std"),
    "limits": ("max_image_bytes", "max_pixels", "max_side"),
    "tolerance": ("tensor_max_abs", "image_max_abs"),
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


_REQUIRED = object()


def _require(table: dict, key: str, where: str):
    if key not in table:
        raise ConfigError(f"{where}: missing key '{key}'", hint="see models/mobilenet_v2_1.4_224.toml for every key")
    return table[key]


def _typed(table: dict, key: str, where: str, convert, what: str, default=_REQUIRED):
    """``table[key]`` converted, or a ConfigError naming the key and the type it needs (never a TypeError)."""
    value = _require(table, key, where) if default is _REQUIRED else table.get(key, default)
    try:
        return convert(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {key} = {value!r} is not {what}") from exc


def _number(value, kind):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{type(value).__name__}, not a number")
    return kind(value)


def _numbers(value, kind, n: int | None = None) -> tuple:
    if not isinstance(value, list) or (n is not None and len(value) != n):
        raise TypeError("not a list" if not isinstance(value, list) else f"{len(value)} values, not {n}")
    return tuple(_number(v, kind) for v in value)


def _string(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__}, not a string")
    return value


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{type(value).__name__}, not true or false")
    return value


def _positive(value, kind):
    number = _number(value, kind)
    if not number > 0:
        raise ValueError("must be greater than 0")
    return number


def _non_negative(value, kind):
    number = _number(value, kind)
    if not number >= 0:
        raise ValueError("must not be negative")
    return number


def _file_name(value) -> str:
    """Model names become file names in dist/: no separators, no leading dot."""
    name = _string(value)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise ValueError("letters, digits, '_', '.' and '-' only, not starting with '.' or '-'")
    return name


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
    section = {k: _require(raw, k, where) for k in SCHEMA}
    at = {k: f"{where} [{k}]" for k in SCHEMA}  # where each section's errors point

    src = section["source"]
    kind = _typed(src, "kind", at["source"], _string, "a string")
    if kind == "file":
        src_path = Path(os.path.expanduser(_typed(src, "path", at["source"], _string, "a path")))
        if not src_path.is_absolute():
            src_path = path.parent / src_path
        source = Source(kind="file", path=src_path)
    elif kind == "generator":
        source = Source(
            kind="generator",
            generator=_typed(src, "generator", at["source"], _string, "a string"),
            alpha=_typed(src, "alpha", at["source"], lambda v: _positive(v, float), "a positive number", 1.0),
            seed=_typed(src, "seed", at["source"], lambda v: _number(v, int), "an integer", 0),
        )
    else:
        raise ConfigError(f"{at['source']}: kind must be 'generator' or 'file', not {kind!r}")

    inp = section["input"]
    shape = _typed(inp, "shape", at["input"], lambda v: _numbers(v, int), "a list of integers")
    layout = _typed(inp, "layout", at["input"], _string, "a string", "NHWC")
    if layout != "NHWC" or len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or min(shape) < 1:
        raise ConfigError(
            f"{at['input']}: shape {list(shape)} layout {layout}: only NHWC [1, H, W, 3] inputs are supported"
        )
    pre = section["preprocess"]
    crop = _typed(pre, "central_crop", at["preprocess"], lambda v: _number(v, float), "a number")
    if not 0.0 < crop <= 1.0:
        raise ConfigError(f"{at['preprocess']}: central_crop must be in (0, 1], got {crop}")
    resize = _typed(pre, "resize", at["preprocess"], _string, "a string")
    resize = RESIZE_ALIASES.get(resize, resize)
    if resize not in RESIZE_FILTERS:
        raise ConfigError(
            f"{at['preprocess']}: resize {resize!r} is not supported (supported: {', '.join(RESIZE_FILTERS)})"
        )
    jpeg_decoder = _typed(pre, "jpeg_decoder", at["preprocess"], _string, "a string", DEFAULT_JPEG_DECODER)
    if jpeg_decoder not in JPEG_DECODERS:
        raise ConfigError(
            f"{at['preprocess']}: jpeg_decoder {jpeg_decoder!r} is not supported "
            f"(supported: {', '.join(JPEG_DECODERS)})"
        )
    mean = _typed(pre, "mean", at["preprocess"], lambda v: _numbers(v, float), "a list of numbers")
    std = _typed(pre, "std", at["preprocess"], lambda v: _numbers(v, float), "a list of numbers")
    if len(mean) != 3 or len(std) != 3 or any(s == 0 for s in std):
        raise ConfigError(f"{at['preprocess']}: mean and std need 3 values each, std non-zero")

    out = section["output"]
    classes = _typed(out, "classes", at["output"], lambda v: _positive(v, int), "a positive integer")
    labels = section["labels"]
    labels_path = path.parent / _typed(labels, "file", at["labels"], _string, "a file name")
    offset = _typed(labels, "offset", at["labels"], lambda v: _number(v, int), "an integer", 0)
    if not labels_path.is_file():
        raise ConfigError(f"{at['labels']}: label file {labels_path} does not exist")
    n_labels = len(labels_path.read_text(encoding="utf-8").splitlines())
    if offset < 0 or n_labels < classes + offset:
        raise ConfigError(
            f"{at['labels']}: {labels_path.name} has {n_labels} lines, but {classes} classes "
            f"with offset {offset} need {classes + offset}"
        )
    lim, tol = section["limits"], section["tolerance"]

    def limit(key: str) -> int:
        return _typed(lim, key, at["limits"], lambda v: _positive(v, int), "a positive integer")

    def tolerance(key: str, kind):
        return _typed(tol, key, at["tolerance"], lambda v: _non_negative(v, kind), "a number ≥ 0")

    return ModelConfig(
        name=_typed(section["model"], "name", at["model"], _file_name, "a usable model name (letters, digits, _ . -)"),
        description=_typed(section["model"], "description", at["model"], _string, "a string", ""),
        config_path=path.resolve(),
        source=source,
        input_name=_typed(inp, "name", at["input"], _string, "a tensor name"),
        input_shape=shape,
        output_name=_typed(out, "name", at["output"], _string, "a tensor name"),
        classes=classes,
        output_is_softmax=_typed(out, "softmax", at["output"], _flag, "true or false"),
        labels_path=labels_path.resolve(),
        label_offset=offset,
        central_crop=crop,
        resize=resize,
        jpeg_decoder=jpeg_decoder,
        mean=mean,
        std=std,
        max_image_bytes=limit("max_image_bytes"),
        max_pixels=limit("max_pixels"),
        max_side=limit("max_side"),
        tensor_tolerance=tolerance("tensor_max_abs", float),
        image_tolerance=tolerance("image_max_abs", float),
    )


CACHE_DIR = Path(os.environ.get("MIB_CACHE", Path.home() / ".cache" / "mobilenet-infer-benchmark"))

"""`invoke classify`: one image file on one runtime — what a user tries first."""

from __future__ import annotations

from pathlib import Path

from toolchain.core.catalog import DistLayout
from toolchain.core.config import ModelConfig
from toolchain.core.errors import InputError, StageError
from toolchain.core.fsutil import json_text
from toolchain.runtimes import make_runtime


def classify_file(image: str, cfg: ModelConfig, dist: DistLayout, runtime: str) -> str:
    path = Path(image)
    if not path.is_file():
        raise InputError(f"no image file at {path}", hint="pass the path of a JPEG or PNG file")
    rt = make_runtime(runtime, cfg, dist)
    reason = rt.unavailable_reason()
    if reason:
        raise StageError(f"runtime {runtime} is not available: {reason}")
    try:
        result = rt.classify(path.read_bytes())
    finally:
        rt.close()
    if "error" in result:
        raise InputError(f"{path}: {result['error']}")
    return json_text(result, sort_keys=False)

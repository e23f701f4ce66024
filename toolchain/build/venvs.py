"""Isolated venvs holding exactly one pinned wasmtime version each (outside the clone: a cache)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from toolchain.core import log
from toolchain.core.config import CACHE_DIR
from toolchain.core.errors import StageError
from toolchain.core.versions import WASMTIME_TARGETS


def runtime_python(target: str) -> Path:
    """The interpreter of the venv for ``target`` (a key of WASMTIME_TARGETS), created on first use."""
    spec = str(WASMTIME_TARGETS[target]["pip"])
    venv = CACHE_DIR / "venvs" / spec.replace("==", "-")
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.is_file() and stamp.read_text() == spec:
        return python
    with log.step(f"creating an isolated venv with {spec}"):
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec],
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as exc:
            raise StageError(
                f"could not install {spec} into {venv}: {(exc.stderr or '').strip()[-400:]}",
                hint="check that PyPI is reachable, then re-run",
            ) from exc
    stamp.write_text(spec)
    return python

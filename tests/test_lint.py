"""Lint, format and type checks of the Python code, with the pinned tools from requirements.lock."""

import subprocess
import sys

import pytest

from toolchain.core.config import REPO_ROOT

CHECKS = {
    "ruff lint": [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
    "mypy": [sys.executable, "-m", "mypy", "--cache-dir", "/dev/null"],
}


@pytest.mark.parametrize("check", CHECKS)
def test_clean(check):
    proc = subprocess.run(CHECKS[check], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{check}:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"

"""Cargo builds of the guest classifier (native and wasm32-wasip1); every compiler flag lives here."""

from __future__ import annotations

from toolchain.config import DistLayout
from toolchain.manifest import Artifact


def artifacts(model: str, dist: DistLayout) -> list["Artifact"]:
    return []

"""The task graph: build stages in data-flow order, then packaging and the manifest."""

from __future__ import annotations

import shutil

from toolchain import log
from toolchain.config import DistLayout, ModelConfig


def build_all(cfg: ModelConfig, dist: DistLayout) -> None:
    from toolchain.aot import precompile_cwasm
    from toolchain.convert import convert_pb_to_onnx
    from toolchain.golden import make_goldens
    from toolchain.guest import build_guest
    from toolchain.model import ensure_frozen_model
    from toolchain.wasm import optimize_guest

    ensure_frozen_model(cfg, dist)
    convert_pb_to_onnx(cfg, dist)
    make_goldens(cfg, dist)
    build_guest(cfg, dist)
    optimize_guest(cfg, dist)
    precompile_cwasm(cfg, dist)


def package_all(cfg: ModelConfig, dist: DistLayout) -> None:
    from toolchain.manifest import write_manifest
    from toolchain.package import package_wasm01_zip

    package_wasm01_zip(cfg, dist)
    path = write_manifest(dist)
    log.info(f"manifest: {path}")


def clean_dist(dist: DistLayout) -> None:
    if dist.root.exists():
        shutil.rmtree(dist.root)
        log.info(f"removed {dist.root}")

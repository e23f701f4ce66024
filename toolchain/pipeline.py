"""The task graph on top of the layers: build stages in data-flow order, then packaging, the deploy files with
memory measured on this machine (measure/peaks.py), and the manifest."""

from __future__ import annotations

import shutil

from toolchain.build.aot import precompile_cwasm
from toolchain.build.convert import convert_pb_to_onnx
from toolchain.build.golden import make_goldens
from toolchain.build.guest import build_guest
from toolchain.build.host import build_wasm_host
from toolchain.build.model import ensure_frozen_model
from toolchain.build.optimize import optimize_guest
from toolchain.build.payload import attach_guests
from toolchain.build.preinit import preinitialize_guests
from toolchain.core import log
from toolchain.core.catalog import DistLayout
from toolchain.core.config import ModelConfig
from toolchain.measure.peaks import plan_actions
from toolchain.package.deploy import write_deploy_files
from toolchain.package.image import build_action_image
from toolchain.package.manifest import write_manifest
from toolchain.package.zips import package_exec_zip, package_wasm01_zip


def build_all(cfg: ModelConfig, dist: DistLayout) -> None:
    """pb → onnx → goldens → guest bases (native, wasm; model-independent) → wasm-opt → the Rust wasm host (Wizer,
    cold starts) → the model's payload attached to every base → pre-initialised module → .cwasm."""

    ensure_frozen_model(cfg, dist)
    convert_pb_to_onnx(cfg, dist)
    make_goldens(cfg, dist)
    build_guest(dist)
    optimize_guest(dist)
    # Wizer runs inside the host: it attaches the model to the wasm bases and pre-initialises.
    build_wasm_host(dist)
    attach_guests(cfg, dist)
    preinitialize_guests(cfg, dist)
    precompile_cwasm(cfg, dist)


def package_all(cfg: ModelConfig, dist: DistLayout, measure: bool = True) -> None:
    """The OpenWhisk artifacts (wasm:0.1 zip, exec zip, action image), the deploy files with memory limits
    measured on this machine (skipped with ``measure=False``), then the manifest."""

    package_wasm01_zip(cfg, dist)
    package_exec_zip(cfg, dist)
    build_action_image(cfg, dist)
    build_action_image(cfg, dist, "onnxruntime")
    if measure:
        write_deploy_files(cfg, dist, plan_actions(cfg, dist))
    path = write_manifest(dist)
    log.info(f"manifest: {path}")


def clean_dist(dist: DistLayout) -> None:
    if dist.root.exists():
        shutil.rmtree(dist.root)
        log.info(f"removed {dist.root}")

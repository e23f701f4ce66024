"""Pre-initialise the wasm guests named by catalog.PREINIT_VARIANTS (today the SIMD one; it says why not the
no-SIMD one): run a module's `wizer-initialize` export (parse + optimise the embedded model) once at build time and
snapshot the initialised memory into a new module, so an instance starts with the model ready. With a .cwasm and
wasmtime's copy-on-write memory images the weights are mapped, not copied. The guest wipes its embedded model
file before the snapshot (guest/classifier/src/snapshot.rs), so the snapshot holds what the loaded model holds.

Wizer runs inside the Rust wasm host (`wasm-host preinit`, the wasmtime-wizer crate at wasmtime's version), with
a fixed WASI random seed, so two builds give the same snapshot.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from toolchain.core import log
from toolchain.core.artifact import Artifact
from toolchain.core.catalog import (
    PREINIT_VARIANTS,
    VARIANTS,
    WASM_TARGET,
    DistLayout,
    host_path,
    optimized_wasm_path,
    preinit_path,
)
from toolchain.core.config import ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import (
    Incremental,
    atomic_path,
    digest_inputs,
)

INIT_FUNC = "wizer-initialize"


def preinitialize_guests(cfg: ModelConfig, dist: DistLayout, force: bool = False) -> list[Path]:
    return [preinitialize_guest(cfg, variant, dist, force) for variant in PREINIT_VARIANTS]


def preinitialize_guest(cfg: ModelConfig, variant: str, dist: DistLayout, force: bool = False) -> Path:
    src = optimized_wasm_path(cfg.name, variant, dist)
    if not src.is_file():
        raise StageError(f"{src} missing", hint=f"run `invoke optimize --model {cfg.name}` first")
    dst = preinit_path(cfg.name, variant, dist)
    host = host_path(dist)
    if not host.is_file():
        raise StageError(f"{host} missing", hint="run `invoke host` first (Wizer runs inside the wasm host)")
    inputs = digest_inputs([src, host], {"init": INIT_FUNC})
    job = Incremental("preinit", dist.stamp(f"preinit-{variant}", cfg.name), inputs, (dst,))
    if job.up_to_date(force):
        return dst
    started = time.perf_counter()
    with atomic_path(dst) as tmp, log.step(f"wizer {src.name} (model parsed and optimised at build time)"):
        # The hash-map seed std draws while the model loads is then fixed per module, not per instance:
        # harmless here, no untrusted keys are hashed.
        proc = subprocess.run([str(host), "preinit", str(src), str(tmp)], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise StageError(f"wizer failed on {src}: {proc.stderr.strip()[-1500:]}")
    job.record(dist.root, started)
    log.info(f"preinit: {dst} ({src.stat().st_size:,} → {dst.stat().st_size:,} bytes)")
    return dst


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    return [
        Artifact(preinit_path(model, v, dist), "wasm-preinit", model, target=WASM_TARGET, features=VARIANTS[v].features)
        for v in PREINIT_VARIANTS
    ]

"""Pre-initialise the wasm guests named by catalog.PREINIT_VARIANTS (the SIMD one, and the no-SIMD one the wasm:0.1
zip carries): run the optimised base module's `wizer-initialize` export with the model payload on stdin (attach,
parse and optimise the model) once at build time and snapshot the initialised memory into a new module, so an
instance starts with the model ready. With a .cwasm and wasmtime's copy-on-write memory images the weights are
mapped, not copied (wasmtime 0.23 copies them at instantiation). The guest wipes the ONNX bytes of the payload
and zeroes every block freed while loading (guest/classifier/src/model.rs, snapshot_alloc.rs), so the snapshot
holds what the loaded model holds.

Wizer runs inside the Rust wasm host (`wasm-host preinit`, the wasmtime-wizer crate at wasmtime's version), with
a fixed WASI random seed, so two builds give the same snapshot.
"""

from __future__ import annotations

import time
from pathlib import Path

from toolchain.build.payload import require_host, run_wizer, write_payload
from toolchain.core import log
from toolchain.core.artifact import Artifact
from toolchain.core.catalog import (
    PREINIT_VARIANTS,
    VARIANTS,
    WASM_TARGET,
    DistLayout,
    base_optimized_wasm_path,
    payload_path,
    preinit_path,
)
from toolchain.core.config import ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import Incremental, digest_inputs

INIT_FUNC = "wizer-initialize"


def preinitialize_guests(cfg: ModelConfig, dist: DistLayout, force: bool = False) -> list[Path]:
    return [preinitialize_guest(cfg, variant, dist, force) for variant in PREINIT_VARIANTS]


def preinitialize_guest(cfg: ModelConfig, variant: str, dist: DistLayout, force: bool = False) -> Path:
    src = base_optimized_wasm_path(variant, dist)
    if not src.is_file():
        raise StageError(f"{src} missing", hint="run `invoke optimize` first")
    payload = write_payload(cfg, dist)
    dst = preinit_path(cfg.name, variant, dist)
    host = require_host(dist)
    inputs = digest_inputs([src, payload, host], {"init": INIT_FUNC})
    job = Incremental("preinit", dist.stamp(f"preinit-{variant}", cfg.name), inputs, (dst,))
    if job.up_to_date(force):
        return dst
    started = time.perf_counter()
    with log.step(f"wizer {INIT_FUNC} {dst.name} ({cfg.name}: model parsed and optimised at build time)"):
        # The hash-map seed std draws while the model loads is then fixed per module, not per instance:
        # harmless here, no untrusted keys are hashed.
        run_wizer(dist, "preinit", src, payload, dst)
    job.record(dist.root, started)
    log.info(f"preinit: {dst} ({src.stat().st_size:,} → {dst.stat().st_size:,} bytes)")
    return dst


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    return [
        Artifact(
            preinit_path(model, v, dist),
            "wasm-preinit",
            model,
            target=WASM_TARGET,
            features=VARIANTS[v].features,
            base=base_optimized_wasm_path(v, dist),
            payload=payload_path(model, dist),
        )
        for v in PREINIT_VARIANTS
    ]

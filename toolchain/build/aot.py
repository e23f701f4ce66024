"""Ahead-of-time `.cwasm` per target wasmtime version, each compiled in a venv holding exactly that version.

Code is compiled for a declared CPU baseline where the version allows it (the build machine has AVX-512;
an invoker may not). wasmtime 0.23's Python API has no target or Cranelift flags, so its `.cwasm` is
compiled for the build host (recorded as such); its module has no SIMD, which keeps the risk small.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from toolchain.build import cwasm023
from toolchain.build.venvs import runtime_python
from toolchain.core import log
from toolchain.core.artifact import Artifact
from toolchain.core.catalog import (
    HOST_AOT_TARGET,
    NATIVE_TARGET,
    PREINIT_VARIANTS,
    WASINN_VARIANT,
    AotTarget,
    DistLayout,
    aot_target,
    aot_targets,
    cwasm_path,
    optimized_wasm_path,
    preinit_cwasm_path,
    preinit_path,
    wasinn_cwasm_path,
)
from toolchain.core.config import REPO_ROOT, ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import (
    Incremental,
    atomic_path,
    digest_inputs,
)
from toolchain.core.versions import WASMTIME_ENGINE_SETTINGS

WORKER = REPO_ROOT / "toolchain" / "hosts" / "wasmtime_worker.py"
REWRITER = Path(cwasm023.__file__)  # a change to the rewrite re-runs the AOT stage


def _jobs(cfg: ModelConfig, dist: DistLayout) -> list[tuple[AotTarget, Path, Path, str]]:
    """(target, source module, .cwasm, stamp name): each target's optimised module, and for the pre-initialised
    variants their snapshot when `invoke preinit` made one (the same rule as ``artifacts``)."""

    jobs = []
    for target in aot_targets():
        src = optimized_wasm_path(cfg.name, target.variant, dist)
        if not src.is_file():
            raise StageError(f"{src} missing", hint=f"run `invoke attach --model {cfg.name}` first")
        jobs.append((target, src, cwasm_path(cfg.name, target, dist), f"aot-{target.name}"))
        pre = preinit_path(cfg.name, target.variant, dist)
        if target.variant in PREINIT_VARIANTS and pre.is_file():
            jobs.append((target, pre, preinit_cwasm_path(cfg.name, target, dist), f"aot-preinit-{target.name}"))
    wasinn = optimized_wasm_path(cfg.name, WASINN_VARIANT, dist)
    if wasinn.is_file():  # only the Rust host offers wasi-nn
        jobs.append((aot_target(HOST_AOT_TARGET), wasinn, wasinn_cwasm_path(cfg.name, dist), "aot-wasinn"))
    return jobs


def precompile_cwasm(cfg: ModelConfig, dist: DistLayout) -> list[Path]:
    outs = []
    for target, src, dst, stamp_name in _jobs(cfg, dist):
        python = runtime_python(target.name)
        inputs = digest_inputs(
            [src, WORKER, WASMTIME_ENGINE_SETTINGS, REWRITER],
            {"target": target.name, "args": target.worker_args(), "rewritten": target.rewritten},
        )
        job = Incremental("aot", dist.stamp(stamp_name, cfg.name), inputs, (dst,))
        if job.up_to_date():
            outs.append(dst)
            continue
        started = time.perf_counter()
        with (
            atomic_path(dst) as tmp,
            log.step(f"AOT {src.name} for {target.name}: wasmtime {target.version}, {target.cpu_baseline}"),
        ):
            proc = subprocess.run(
                [str(python), str(WORKER), "serialize", str(src), str(tmp), *target.worker_args()],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise StageError(f"wasmtime {target.version} could not compile {src}: {proc.stderr.strip()[-1500:]}")
            if target.rewritten:
                tmp.write_bytes(cwasm023.rewrite(tmp.read_bytes(), src.read_bytes()))
        log.info(f"aot: {dst} ({dst.stat().st_size:,} bytes)")
        job.record(dist.root, started)
        outs.append(dst)
    return outs


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    found = []
    for t in aot_targets():
        snapshot = [preinit_cwasm_path(model, t, dist)] if t.variant in PREINIT_VARIANTS else []
        wasinn = [wasinn_cwasm_path(model, dist)] if t.name == HOST_AOT_TARGET else []
        paths = [cwasm_path(model, t, dist), *snapshot, *wasinn]
        # what the loading engine must enable: wasm SIMD, and epoch interruption where it is compiled in; and what
        # the host must offer: wasi-nn for the wasi-nn module
        engine = (*(("simd128",) if t.simd else ()), *(("epoch-interruption",) if t.epoch else ()))
        found += [
            Artifact(
                p,
                "cwasm",
                model,
                target=NATIVE_TARGET,
                runtime="wasmtime",
                runtime_version=t.version,
                cpu_baseline=t.cpu_baseline,
                features=(*engine, *(("wasi-nn",) if p in wasinn else ())),
            )
            for p in paths
        ]
    return found

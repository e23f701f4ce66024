"""The Rust wasm host (`guest/host`, wasmtime 50 crate): what the benchmark uses for wasm cold starts, so an
interpreter's start-up is not charged to wasm, and what a serverless executor embedding wasmtime looks like."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from toolchain.build.cargo import (
    HOST_DIR,
    install,
    nightly_command,
    nightly_problem,
    nightly_rustc_version,
    remap_path_flags,
    reproducible_cargo_env,
)
from toolchain.core import log
from toolchain.core.artifact import Artifact
from toolchain.core.catalog import HOST_AOT_TARGET, NATIVE_TARGET, DistLayout, aot_target, host_path
from toolchain.core.config import CACHE_DIR
from toolchain.core.errors import StageError
from toolchain.core.fsutil import Incremental, digest_inputs
from toolchain.core.versions import WASMTIME_ENGINE_SETTINGS


def build_wasm_host(dist: DistLayout) -> Path:
    problem = nightly_problem()
    if problem:
        raise StageError(
            problem,
            hint="install a nightly with rustup: Wizer inside the host attaches the model to the wasm guests",
        )
    final = host_path(dist)
    sources = [
        HOST_DIR / "Cargo.toml",
        HOST_DIR / "Cargo.lock",
        *sorted((HOST_DIR / "src").rglob("*.rs")),
        WASMTIME_ENGINE_SETTINGS,  # compiled in (include_str!)
    ]
    job = Incremental(
        "host", dist.stamp("host", "base"), digest_inputs(sources, {"rustc": nightly_rustc_version()}), (final,)
    )
    if job.up_to_date():
        return final
    env = reproducible_cargo_env()
    env.update(
        {
            "CARGO_TARGET_DIR": str(CACHE_DIR / "cargo-target" / "host"),
            "CARGO_TERM_PROGRESS_WHEN": "never",
            "RUSTFLAGS": " ".join(remap_path_flags()),
        }
    )
    started = time.perf_counter()
    with log.step("cargo build wasm-host (wasmtime 50)"):
        proc = subprocess.run(
            nightly_command("cargo", "build", "--release", "--locked", "--target", NATIVE_TARGET),
            cwd=HOST_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        raise StageError(f"cargo build of the wasm host failed:\n{proc.stderr[-3000:]}")
    built = Path(env["CARGO_TARGET_DIR"]) / NATIVE_TARGET / "release" / "wasm-host"
    install(built, final, executable=True)
    job.record(dist.root, started)
    log.info(f"host: {final} ({final.stat().st_size:,} bytes)")
    return final


def host_command(dist: DistLayout, mode: str, module: Path, *args: str, baseline: bool = True) -> list[str]:
    """`wasm-host MODE MODULE ARGS... --simd [--target T --cpu-flag ...]`: the arguments the wasmtime-50 AOT
    target compiled with (a .wasm compiled here for this CPU passes ``baseline=False``: SIMD only)."""
    target = aot_target(HOST_AOT_TARGET)
    engine_args = target.worker_args() if baseline else ["--simd"]
    return [str(host_path(dist)), mode, str(module), *args, *engine_args]


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    return [
        Artifact(
            host_path(dist),
            "wasm-host",
            model,
            target=NATIVE_TARGET,
            runtime="wasmtime",
            runtime_version=aot_target(HOST_AOT_TARGET).version,
        )
    ]

"""The Rust wasm host (`guest/host`, wasmtime 50 crate): what the benchmark uses for wasm cold starts, so an
interpreter's start-up is not charged to wasm, and what a serverless executor embedding wasmtime looks like."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from toolchain.core import log
from toolchain.core.config import CACHE_DIR, REPO_ROOT, DistLayout
from toolchain.core.errors import StageError
from toolchain.core.fsutil import record_build_seconds
from toolchain.build.guest import install, remap_path_flags, reproducible_cargo_env
from toolchain.package.manifest import Artifact
from toolchain.core.programs import RUSTUP
from toolchain.core.versions import HOST_RUSTC_EXPECTED, HOST_TOOLCHAIN

HOST_DIR = REPO_ROOT / "guest" / "host"
NATIVE_TARGET = "x86_64-unknown-linux-gnu"


def host_path(dist: DistLayout) -> Path:
    return dist.root / "hosts" / "wasm-host"


def nightly_command(*args: str) -> list[str]:
    """`rustup run nightly ARGS...`: the toolchain of the wasm host and of cargo fuzz."""
    return [RUSTUP.path, "run", HOST_TOOLCHAIN, *args]


def ensure_cargo_subcommand(name: str, version: str) -> None:
    """`cargo NAME` (crate cargo-NAME) at the pinned version, installed with the nightly into ~/.cargo/bin on
    first use; an existing install at that version is kept."""
    found = subprocess.run(nightly_command("cargo", name, "--version"), capture_output=True, text=True)
    if found.returncode == 0 and version in found.stdout:
        return
    with log.step(f"cargo install cargo-{name} {version}"):
        proc = subprocess.run(nightly_command("cargo", "install", f"cargo-{name}", "--version", f"={version}",
                                              "--locked"), capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise StageError(f"cargo install cargo-{name} failed:\n{proc.stderr[-2000:]}",
                         hint="check that crates.io is reachable")


def host_toolchain_problem() -> str | None:
    """None if the toolchain that can build wasmtime 50 is here; otherwise what is missing."""
    try:
        out = subprocess.run(nightly_command("rustc", "--version"), capture_output=True, text=True, timeout=60)
    except OSError:
        return "rustup is not installed; the wasm host needs rustc >= 1.97 (wasmtime 50)"
    if out.returncode != 0:
        return f"the rustup toolchain {HOST_TOOLCHAIN!r} is not installed: {out.stderr.strip()[-300:]}"
    if HOST_RUSTC_EXPECTED not in out.stdout:
        log.info(f"warning: the wasm host was pinned with rustc {HOST_RUSTC_EXPECTED}, found {out.stdout.strip()}")
    return None


def build_wasm_host(dist: DistLayout) -> Path:
    problem = host_toolchain_problem()
    if problem:
        raise StageError(problem, hint="install a nightly with rustup, or skip the Rust host (`invoke bench` then "
                                       "uses the Python host for wasm cold starts)")
    env = reproducible_cargo_env()
    env.update({"CARGO_TARGET_DIR": str(CACHE_DIR / "cargo-target" / "host"), "CARGO_TERM_PROGRESS_WHEN": "never",
                "RUSTFLAGS": " ".join(remap_path_flags())})
    started = time.perf_counter()
    with log.step("cargo build wasm-host (wasmtime 50)"):
        proc = subprocess.run(nightly_command("cargo", "build", "--release", "--locked", "--target", NATIVE_TARGET),
                              cwd=HOST_DIR, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise StageError(f"cargo build of the wasm host failed:\n{proc.stderr[-3000:]}")
    built = Path(env["CARGO_TARGET_DIR"]) / NATIVE_TARGET / "release" / "wasm-host"
    final = install(built, host_path(dist), executable=True)
    record_build_seconds(dist.root, final, time.perf_counter() - started)
    log.info(f"host: {final} ({final.stat().st_size:,} bytes)")
    return final


def host_command(dist: DistLayout, mode: str, module: Path, *args: str, baseline: bool = True) -> list[str]:
    """`wasm-host MODE MODULE ARGS... --simd [--cpu-flag ...]`: the engine settings the wasmtime-50 AOT
    target compiled with (a .wasm compiled here for this CPU passes ``baseline=False``)."""
    from toolchain.build.aot import aot_target

    target = aot_target("wasmtime-50")
    flags = [a for f in target.cpu_flags for a in ("--cpu-flag", f)] if baseline else []
    return [str(host_path(dist)), mode, str(module), *args, "--simd", *flags]


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    return [Artifact(host_path(dist), "wasm-host", model, target=NATIVE_TARGET, runtime="wasmtime",
                     runtime_version="50.0.1")]

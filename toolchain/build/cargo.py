"""What every cargo build shares: the Rust workspaces, the reproducible environment, the rustup nightly (the wasm
host, cargo fuzz, cargo-deny) and its pinned cargo subcommands, and installing a built file into dist/."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from toolchain.core import log
from toolchain.core.config import CACHE_DIR, REPO_ROOT
from toolchain.core.errors import StageError
from toolchain.core.fsutil import atomic_path
from toolchain.core.programs import RUSTUP
from toolchain.core.versions import CARGO_SOURCE_DATE_EPOCH, HOST_RUSTC_EXPECTED, HOST_TOOLCHAIN

GUEST_DIR = REPO_ROOT / "guest"  # the guest workspace (Debian's rustc): classifier + shims
HOST_DIR = GUEST_DIR / "host"  # the wasm host's own workspace (the rustup nightly: wasmtime 50 needs rustc >= 1.97)
FUZZ_DIR = GUEST_DIR / "fuzz"  # cargo fuzz targets (the nightly)


def remap_path_flags() -> list[str]:
    """Paths rustc embeds (panic locations, debug info) made independent of where the clone, the home (cargo's
    registry) and the cache (target dirs; MIB_CACHE may move it) are. The last matching prefix wins, so the
    most specific comes last."""
    return [
        f"--remap-path-prefix={Path.home()}=/home",
        f"--remap-path-prefix={REPO_ROOT}=/src",
        f"--remap-path-prefix={CACHE_DIR}=/cache",
    ]


def reproducible_cargo_env() -> dict[str, str]:
    """The environment for every cargo build: the caller's, with the constant SOURCE_DATE_EPOCH (versions.py)."""
    return {**os.environ, "SOURCE_DATE_EPOCH": CARGO_SOURCE_DATE_EPOCH}


# The cargo subcommands are tools the tests and `invoke audit`/`invoke fuzz` run, not something we ship: build them
# without the fat LTO and single codegen unit of their own release profiles (serial work that dominates a cold
# install on 2 cores; cargo-deny then installed in ~3 min here). Cargo's config profile overrides the manifest's.
TOOL_PROFILE = {"CARGO_PROFILE_RELEASE_LTO": "off", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16"}


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
        proc = subprocess.run(
            nightly_command("cargo", "install", f"cargo-{name}", "--version", f"={version}", "--locked"),
            env={**os.environ, **TOOL_PROFILE},
            capture_output=True,
            text=True,
            timeout=3600,
        )
    if proc.returncode != 0:
        raise StageError(
            f"cargo install cargo-{name} failed:\n{proc.stderr[-2000:]}", hint="check that crates.io is reachable"
        )


@functools.cache
def _nightly_rustc() -> subprocess.CompletedProcess[str] | None:
    """`rustc --version` of the rustup nightly, asked once per process (None: rustup cannot run)."""
    try:
        return subprocess.run(nightly_command("rustc", "--version"), capture_output=True, text=True, timeout=60)
    except OSError:
        return None


def nightly_rustc_version() -> str:
    """The nightly's `rustc --version` line ("" where it cannot run): part of what decides the host's bytes."""
    out = _nightly_rustc()
    return out.stdout.strip() if out is not None and out.returncode == 0 else ""


def nightly_problem() -> str | None:
    """None if the rustup nightly (which can build wasmtime 50) is here; otherwise what is missing."""
    out = _nightly_rustc()
    if out is None:
        return "rustup is not installed; the wasm host needs rustc >= 1.97 (wasmtime 50)"
    if out.returncode != 0:
        return f"the rustup toolchain {HOST_TOOLCHAIN!r} is not installed: {out.stderr.strip()[-300:]}"
    if HOST_RUSTC_EXPECTED not in out.stdout:
        log.info(f"warning: the wasm host was pinned with rustc {HOST_RUSTC_EXPECTED}, found {out.stdout.strip()}")
    return None


def install(built: Path, final: Path, executable: bool) -> Path:
    with atomic_path(final) as tmp:
        shutil.copyfile(built, tmp)
        os.chmod(tmp, 0o755 if executable else 0o644)
    return final

"""Every program and system file the toolchain calls or reads outside its venv, with where it comes from.

Callers take the path from here, so this list is complete by construction; `tests/test_programs.py` checks that
each Debian-provided one is owned (``dpkg -S``) by a package that requirements-debian.txt names or pulls in
without recommends. That is how a fresh machine fails in CI rather than 26 minutes into a user's build: rustc
calls `rust-lld` by name, and Debian's rustc-web only *recommends* the package that has it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from toolchain.core.errors import StageError

DEBIAN = "debian"  # owned by a Debian package: requirements-debian.txt must pull it in
BASE_IMAGE = "base-image"  # comes with every machine of this kind (rustup and its nightly); nothing installs it


@dataclass(frozen=True)
class External:
    name: str
    path: str  # absolute: what the toolchain runs or reads (as called, not a symlink's target)
    source: str  # DEBIAN or BASE_IMAGE
    why: str

    def present(self) -> bool:
        return Path(self.path).exists()

    def require(self) -> str:
        """The path, or a clear error naming how to get it."""
        if not self.present():
            how = (
                "run ./bootstrap.sh (it installs requirements-debian.txt)"
                if self.source == DEBIAN
                else "it comes with machines of this kind (rustup); install the rustup toolchain by hand elsewhere"
            )
            raise StageError(f"{self.name} is missing ({self.path}; {self.why})", hint=how)
        return self.path


def _rustup() -> str:
    return shutil.which("rustup") or str(Path.home() / ".cargo" / "bin" / "rustup")


RUSTC = External("rustc", "/usr/bin/rustc", DEBIAN, "Debian's compiler, native and wasm32-wasip1 guest builds")
CARGO = External("cargo", "/usr/bin/cargo", DEBIAN, "the guest builds")
RUST_LLD = External("rust-lld", "/usr/bin/rust-lld", DEBIAN, "the linker rustc runs for wasm32-wasip1")
RUST_STD_SOURCE = External("rust std source", "/usr/lib/rustlib/src/rust", DEBIAN, "-Zbuild-std for wasm32-wasip1")
WASI_LIBC = External("wasi-libc", "/usr/lib/wasm32-wasi/libc.a", DEBIAN, "the C library wasm guests link")
WASI_CRT1 = External("wasi crt1", "/usr/lib/wasm32-wasi/crt1-command.o", DEBIAN, "the wasm guests' _start")
WASM_OPT = External("wasm-opt", "/usr/bin/wasm-opt", DEBIAN, "binaryen: optimises the wasm guests")
WASM_STRIP = External("wasm-strip", "/usr/bin/wasm-strip", DEBIAN, "wabt: strips the wasm guests")
PODMAN = External("podman", "/usr/bin/podman", DEBIAN, "loads and runs the action images")
RUNC = External("runc", "/usr/bin/runc", DEBIAN, "the OCI runtime podman runs the images with")
LDD = External("ldd", "/usr/bin/ldd", DEBIAN, "finds the shared libraries the ONNX Runtime image needs")
GNU_TIME = External("GNU time", "/usr/bin/time", DEBIAN, "peak RSS of benchmarked processes")
GIT = External("git", "/usr/bin/git", DEBIAN, "the source revision in archives and the manifest; reproduce")
CHROMIUM = External("chromium", "/usr/bin/chromium", DEBIAN, "renders the benchmark report in the tests")
DOCKER_REGISTRY = External(
    "docker-registry", "/usr/bin/docker-registry", DEBIAN, "the registry on localhost the release tests push to"
)
GCC = External("gcc", "/usr/bin/gcc", DEBIAN, "compiles the bench's clock probe (rustc-web depends on it to link)")
CJPEG = External("cjpeg", "/usr/bin/cjpeg", DEBIAN, "golden JPEGs in chroma layouts Pillow cannot write (4:1:1, 4:4:0)")
RUSTUP = External(
    "rustup",
    _rustup(),
    BASE_IMAGE,
    "its nightly builds the wasm host and the fuzz targets, and installs cargo-fuzz and cargo-deny",
)

ALL: tuple[External, ...] = (
    RUSTC,
    CARGO,
    RUST_LLD,
    RUST_STD_SOURCE,
    WASI_LIBC,
    WASI_CRT1,
    WASM_OPT,
    WASM_STRIP,
    PODMAN,
    RUNC,
    LDD,
    GNU_TIME,
    GIT,
    CHROMIUM,
    DOCKER_REGISTRY,
    CJPEG,
    GCC,
    RUSTUP,
)


def debian_owner(path: str) -> str | None:
    """The Debian package that owns ``path`` itself (a symlink's owner, not its target's), or None."""
    proc = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    # "pkg: /path" or "pkg1, pkg2: /path" (diversions are not used here)
    return proc.stdout.splitlines()[0].split(":", 1)[0].split(",")[0].strip()


def requirement_names(requirements: Path) -> list[str]:
    """Package names in requirements-debian.txt (comments and blank lines dropped)."""
    names = []
    for line in requirements.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def debian_closure(packages: list[str]) -> set[str]:
    """``packages`` and everything they pull in through Depends/PreDepends, as apt installs them without
    recommends (bootstrap.sh's --no-install-recommends)."""
    if not packages:
        return set()
    out = subprocess.run(
        [
            "apt-cache",
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            *packages,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = set(packages)
    for line in out.splitlines():
        entry = line.strip()
        if not entry:
            continue
        if ":" in entry:
            field, entry = entry.split(":", 1)
            if field.lstrip("|") not in ("Depends", "PreDepends"):
                continue
        names.add(entry.strip().strip("<>").split(":")[0])
    return names


def not_installed_by(requirements: Path, externals: tuple[External, ...] = ALL) -> dict[str, str]:
    """The Debian-provided externals that a fresh machine would lack with this requirements file: name → why."""
    closure = debian_closure(requirement_names(requirements))
    problems = {}
    for ext in externals:
        if ext.source != DEBIAN:
            continue
        owner = debian_owner(ext.path)
        if owner is None:
            problems[ext.name] = f"{ext.path} is not owned by any installed Debian package"
        elif owner not in closure:
            problems[ext.name] = f"{ext.path} comes from {owner}, which {requirements.name} does not pull in"
    return problems

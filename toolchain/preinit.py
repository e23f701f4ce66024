"""Pre-initialise the SIMD guest with Wizer: run its `wizer-initialize` export (parse + optimise the embedded
model) once at build time and snapshot the initialised memory into a new module, so an instance starts with
the model ready. With a .cwasm and wasmtime's copy-on-write memory images the weights are mapped, not copied.

Wizer is the prebuilt binary from npm (pinned version and digest in versions.py), kept in the cache.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from toolchain import log
from toolchain.config import CACHE_DIR, DistLayout, ModelConfig
from toolchain.errors import StageError
from toolchain.fsutil import (atomic_path, digest_inputs, is_up_to_date, record_build_seconds, record_stamp,
                              sha256_file)
from toolchain.guest import optimized_wasm_path
from toolchain.manifest import Artifact
from toolchain.versions import WIZER_NPM, WIZER_SHA256

INIT_FUNC = "wizer-initialize"


def preinit_path(model: str, dist: DistLayout) -> Path:
    return dist.guest_dir(model) / "classify-simd.preinit.wasm"


def preinit_problem() -> str | None:
    """None if Wizer is installed or can be (npm is here); otherwise why not."""
    version = WIZER_NPM.rsplit("@", 1)[1]
    if (CACHE_DIR / "tools" / f"wizer-{version}" / "wizer").is_file() or shutil.which("npm"):
        return None
    return "npm is not installed (it fetches the pinned Wizer binary)"


def ensure_wizer() -> Path:
    """The pinned Wizer binary, installed from npm into the cache on first use and checked by digest."""
    version = WIZER_NPM.rsplit("@", 1)[1]
    binary = CACHE_DIR / "tools" / f"wizer-{version}" / "wizer"
    if binary.is_file() and sha256_file(binary) == WIZER_SHA256:
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise StageError("npm is not installed; it fetches the pinned Wizer binary",
                         hint="install Node.js/npm, or skip pre-initialisation")
    with tempfile.TemporaryDirectory(prefix="mib-wizer-") as tmp, log.step(f"installing {WIZER_NPM} from npm"):
        proc = subprocess.run([npm, "install", "--prefix", tmp, "--no-audit", "--no-fund", "--ignore-scripts",
                               "--no-save", WIZER_NPM], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise StageError(f"npm install {WIZER_NPM} failed: {proc.stderr.strip()[-800:]}",
                             hint="check that the npm registry is reachable")
        found = Path(tmp) / "node_modules" / "@bytecodealliance" / "wizer-linux-x64" / "wizer"
        digest = sha256_file(found) if found.is_file() else "missing"
        if digest != WIZER_SHA256:
            raise StageError(f"{WIZER_NPM} has digest {digest}, not the pinned {WIZER_SHA256}",
                             hint="the package changed upstream; review it and update versions.py")
        binary.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(binary) as dst:
            shutil.copyfile(found, dst)
            dst.chmod(0o755)
    return binary


def preinitialize_guest(cfg: ModelConfig, dist: DistLayout, force: bool = False) -> Path:
    src = optimized_wasm_path(cfg.name, "wasm-simd", dist)
    if not src.is_file():
        raise StageError(f"{src} missing", hint=f"run `invoke optimize --model {cfg.name}` first")
    dst = preinit_path(cfg.name, dist)
    inputs = digest_inputs([src], {"wizer": WIZER_NPM, "init": INIT_FUNC})
    stamp = dist.stamp("preinit", cfg.name)
    if not force and is_up_to_date(stamp, inputs, [dst]):
        log.info(f"preinit: {dst.name} is up to date")
        return dst
    wizer = ensure_wizer()
    started = time.perf_counter()
    with atomic_path(dst) as tmp, log.step(f"wizer {src.name} (model parsed and optimised at build time)"):
        # --allow-wasi: std seeds its hash maps from WASI random_get while the model loads; that seed is then
        # fixed per module rather than per instance, which is harmless here (no untrusted keys hashed).
        proc = subprocess.run([str(wizer), "--allow-wasi", "--wasm-simd", "true", "--init-func", INIT_FUNC,
                               "-o", str(tmp), str(src)], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise StageError(f"wizer failed on {src}: {proc.stderr.strip()[-1500:]}")
    record_stamp(stamp, inputs, [dst])
    record_build_seconds(dist.root, dst, time.perf_counter() - started)
    log.info(f"preinit: {dst} ({src.stat().st_size:,} → {dst.stat().st_size:,} bytes)")
    return dst


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    return [Artifact(preinit_path(model, dist), "wasm-preinit", model, target="wasm32-wasip1", features=("simd128",))]

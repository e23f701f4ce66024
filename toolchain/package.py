"""OpenWhisk packaging: the wasm:0.1 action zip (more artifacts follow the packaging issue).

The wasm:0.1 executor's /init takes base64(zip) and reads the zip's first entry as a module serialized
by the wasmtime it embeds (0.23.0). OpenWhisk refuses action code over 48 MB after base64, which is
checked here at build time.
"""

from __future__ import annotations

import base64
from pathlib import Path

from toolchain import log
from toolchain.aot import aot_targets, cwasm_path
from toolchain.archive import Entry, source_date_epoch, zip_bytes
from toolchain.config import DistLayout, ModelConfig
from toolchain.errors import StageError
from toolchain.fsutil import write_atomic
from toolchain.manifest import Artifact

OPENWHISK_CODE_LIMIT = 48 * 1024 * 1024  # bytes of base64 action code (OpenWhisk's default)
WASM01_TARGET = "wasmtime-0.23"


def wasm01_zip_path(model: str, dist: DistLayout) -> Path:
    return dist.openwhisk_dir() / f"{model}-wasmtime.zip"


def wasm01_zip_bytes(cwasm: bytes, epoch: int) -> tuple[bytes, bool]:
    """Stored uncompressed, as the executor's own precompiler writes it, unless only deflate fits the limit."""
    for compress in (False, True):
        data = zip_bytes([Entry("content", cwasm)], epoch, compress=compress)
        if len(base64.b64encode(data)) <= OPENWHISK_CODE_LIMIT:
            return data, compress
    raise StageError(f"the wasm:0.1 action is {len(base64.b64encode(data)):,} bytes after zip + base64, over "
                     f"OpenWhisk's {OPENWHISK_CODE_LIMIT:,}-byte code limit",
                     hint="use a smaller model, or raise the invoker's limits.actions.codeSize")


def package_wasm01_zip(cfg: ModelConfig, dist: DistLayout) -> Path:
    target = next(t for t in aot_targets() if t.name == WASM01_TARGET)
    cwasm = cwasm_path(cfg.name, target, dist)
    if not cwasm.is_file():
        raise StageError(f"{cwasm} missing", hint=f"run `invoke build --model {cfg.name}` first")
    data, deflated = wasm01_zip_bytes(cwasm.read_bytes(), source_date_epoch())
    out = wasm01_zip_path(cfg.name, dist)
    write_atomic(out, data)
    size_b64 = len(base64.b64encode(data))
    log.info(f"package: {out} ({len(data):,} bytes, {'deflated' if deflated else 'stored'}; "
             f"{size_b64:,} after base64 = {100 * size_b64 / OPENWHISK_CODE_LIMIT:.0f}% of the 48 MB limit)")
    return out


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    return [Artifact(wasm01_zip_path(model, dist), "openwhisk-wasm-zip", model, target="x86_64-unknown-linux-gnu",
                     runtime="openwhisk-wasm-0.1 (wasmtime)", runtime_version="0.23.0", cpu_baseline="build-host",
                     features=())]

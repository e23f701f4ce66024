"""OpenWhisk action zips: the wasm:0.1 zip and the actionloop exec zip.

The wasm:0.1 executor's /init takes base64(zip) and reads the zip's first entry as a module serialized
by the wasmtime it embeds (0.23.0). The actionloop proxy unzips its code and runs the top-level ``exec``
(here the static native binary, which speaks actionloop when named ``exec``). OpenWhisk refuses action
code over 48 MB after base64; both zips are checked here at build time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolchain.core import log
from toolchain.core.artifact import Artifact
from toolchain.core.catalog import (
    NATIVE_TARGET,
    VARIANTS,
    WASM01_TARGET,
    DistLayout,
    aot_target,
    exec_zip_path,
    native_cli_path,
    wasm01_cwasm_path,
    wasm01_zip_path,
)
from toolchain.core.config import ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import write_atomic
from toolchain.package.archive import Entry, source_date_epoch, zip_bytes

OPENWHISK_CODE_LIMIT = 48 * 1024 * 1024  # bytes of base64 action code (OpenWhisk's default)


@dataclass(frozen=True)
class ActionloopImage:
    """An actionloop runtime image the exec zip runs on unchanged: what its Dockerfile sets that decides whether
    the Go proxy (apache/openwhisk-runtime-go) starts our `exec` (actionProxy.go, StartLatestAction)."""

    deploy: str  # how `wsk` names it: `--kind go:1.23`, or `--docker IMAGE`
    execution_env: str = ""  # OW_EXECUTION_ENV: the proxy then requires exec.env with exactly this line
    wait_for_ack: bool = True  # OW_WAIT_FOR_ACK


# The golang images set OW_EXECUTION_ENV (golang1.23/Dockerfile: openwhisk/action-golang-v1.23); the plain
# actionloop base image sets nothing. One exec.env line fits one golang image: the newest released one (1.25.0).
ACTIONLOOP_IMAGES = (
    ActionloopImage("--kind go:1.23", execution_env="openwhisk/action-golang-v1.23"),
    ActionloopImage("--docker openwhisk/actionloop-base", wait_for_ack=False),
)
EXEC_ENV = next(i.execution_env for i in ACTIONLOOP_IMAGES if i.execution_env)

# Above this share of the limit the build warns: a slightly larger model, or any guest growth, fails to deploy.
CODE_LIMIT_WARN_SHARE = 0.90


def base64_size(zip_size: int) -> int:
    """Bytes of a ``zip_size``-byte zip once base64-encoded, as /init sends it (and as the limit counts)."""
    return 4 * -(-zip_size // 3)


def code_limit_share(zip_size: int) -> float:
    """What a zip of ``zip_size`` bytes takes of OpenWhisk's code limit."""
    return base64_size(zip_size) / OPENWHISK_CODE_LIMIT


def zip_within_code_limit(
    entries: list[Entry], epoch: int, what: str, prefer_stored: bool = True
) -> tuple[bytes, bool]:
    """The zip (stored if preferred and it fits, else deflated) and whether it is deflated; a StageError
    if even the deflated zip is over OpenWhisk's code limit after base64."""
    for compress in (False, True) if prefer_stored else (True,):
        data = zip_bytes(entries, epoch, compress=compress)
        if base64_size(len(data)) <= OPENWHISK_CODE_LIMIT:
            return data, compress
    raise StageError(
        f"the {what} is {base64_size(len(data)):,} bytes after zip + base64, over "
        f"OpenWhisk's {OPENWHISK_CODE_LIMIT:,}-byte code limit",
        hint="use a smaller model, or raise the invoker's limits.actions.codeSize",
    )


def wasm01_zip_bytes(cwasm: bytes, epoch: int) -> tuple[bytes, bool]:
    """Stored uncompressed, as the executor's own precompiler writes it, unless only deflate fits the limit."""
    return zip_within_code_limit([Entry("content", cwasm)], epoch, "wasm:0.1 action")


def _report(out: Path, data: bytes, deflated: bool) -> None:
    share = code_limit_share(len(data))
    log.info(
        f"package: {out} ({len(data):,} bytes, {'deflated' if deflated else 'stored'}; "
        f"{base64_size(len(data)):,} after base64 = {100 * share:.1f}% of OpenWhisk's 48 MB code limit)"
    )
    if share > CODE_LIMIT_WARN_SHARE:
        log.info(
            f"warning: {out.name} takes {100 * share:.1f}% of OpenWhisk's action-code limit (warning above "
            f"{100 * CODE_LIMIT_WARN_SHARE:.0f}%): a slightly larger model or guest will not deploy"
        )


def package_wasm01_zip(cfg: ModelConfig, dist: DistLayout) -> Path:
    cwasm = wasm01_cwasm_path(cfg.name, dist)
    if not cwasm.is_file():
        raise StageError(f"{cwasm} missing", hint=f"run `invoke build --model {cfg.name}` first")
    data, deflated = wasm01_zip_bytes(cwasm.read_bytes(), source_date_epoch())
    out = wasm01_zip_path(cfg.name, dist)
    write_atomic(out, data)
    _report(out, data, deflated)
    return out


def package_exec_zip(cfg: ModelConfig, dist: DistLayout) -> Path:
    """The actionloop zip: the static native binary as a top-level, executable ``exec``, and the ``exec.env`` a
    golang runtime image checks (ignored elsewhere). Deflated: the proxy unzips it anyway, and stored it would not
    fit the code limit."""
    binary = native_cli_path(cfg.name, dist)
    if not binary.is_file():
        raise StageError(f"{binary} missing", hint=f"run `invoke build --model {cfg.name}` first")
    data, deflated = zip_within_code_limit(
        [Entry("exec", binary.read_bytes(), 0o755), Entry("exec.env", f"{EXEC_ENV}\n".encode())],
        source_date_epoch(),
        "actionloop exec zip",
        prefer_stored=False,
    )
    out = exec_zip_path(cfg.name, dist)
    write_atomic(out, data)
    _report(out, data, deflated)
    return out


def _share_of(path: Path) -> float | None:
    return round(code_limit_share(path.stat().st_size), 4) if path.is_file() else None


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    return [
        Artifact(
            wasm01_zip_path(model, dist),
            "openwhisk-wasm-zip",
            model,
            target=NATIVE_TARGET,
            runtime="openwhisk-wasm-0.1 (wasmtime)",
            runtime_version=aot_target(WASM01_TARGET).version,
            cpu_baseline="build-host",
            features=(),
            code_limit_share=_share_of(wasm01_zip_path(model, dist)),
        ),
        Artifact(
            exec_zip_path(model, dist),
            "openwhisk-exec-zip",
            model,
            target=NATIVE_TARGET,
            runtime="openwhisk-actionloop",
            cpu_baseline=VARIANTS["native"].cpu_baseline,
            features=(),
            code_limit_share=_share_of(exec_zip_path(model, dist)),
        ),
    ]

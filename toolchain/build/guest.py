"""Cargo builds of the guest classifier, native and wasm32-wasip1. Every compiler flag lives here.

Both targets use Debian's rustc/cargo pair (rustup cannot add targets here); wasm builds std from
Debian's std source with -Zbuild-std and links against Debian's wasi-libc. Each variant has its own
cargo target dir (under the cache, outside the clone) so switching variants never rebuilds the others.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from toolchain.build.cargo import GUEST_DIR, install, remap_path_flags, reproducible_cargo_env
from toolchain.core import log
from toolchain.core.artifact import Artifact
from toolchain.core.catalog import (
    NATIVE_TARGET,
    VARIANTS,
    WASM_TARGET,
    DistLayout,
    Variant,
    native_cli_path,
    onnxruntime_library_path,
    optimized_wasm_path,
    shipped_variants,
    wasm_path,
)
from toolchain.core.config import CACHE_DIR, ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import record_build_seconds, sha256_file, write_atomic
from toolchain.core.programs import CARGO, RUST_LLD, RUST_STD_SOURCE, RUSTC, WASI_CRT1, WASI_LIBC
from toolchain.core.versions import RUSTC_EXPECTED


def onnxruntime_wheel_library() -> Path:
    """The shared library inside the pinned onnxruntime wheel (requirements.lock), without importing it."""
    from importlib import metadata

    files = metadata.files("onnxruntime") or []
    found = [f for f in files if f.name.startswith("libonnxruntime.so.")]
    if not found:
        raise StageError(
            "the onnxruntime wheel in this venv has no libonnxruntime.so.*",
            hint="run ./bootstrap.sh to install requirements.lock",
        )
    return Path(found[0].locate())


def stable_model_copy(model_file: Path) -> Path:
    """The model at a path that depends only on its digest: build.rs reruns when GUEST_MODEL_FILE changes,
    so builds from different dist/ directories (the main job, the tests) share one compiled guest."""

    dst = CACHE_DIR / "embed" / f"{sha256_file(model_file)}{model_file.suffix}"
    if not dst.is_file():
        write_atomic(dst, model_file.read_bytes())
    return dst


def cargo_env(cfg: ModelConfig, variant: Variant, model_file: Path) -> dict[str, str]:
    env = reproducible_cargo_env()
    remap = " ".join(remap_path_flags())
    env.update(
        {
            "RUSTC": RUSTC.path,
            "CARGO_TARGET_DIR": str(CACHE_DIR / "cargo-target" / variant.name),
            "GUEST_MODEL_CONFIG": str(cfg.config_path),
            "GUEST_MODEL_FILE": str(stable_model_copy(model_file)),
            "CARGO_TERM_PROGRESS_WHEN": "never",
            "CARGO_PROFILE_RELEASE_OPT_LEVEL": variant.opt_level,
        }
    )
    if variant.is_wasm:
        flags = [
            "-C",
            "panic=abort",
            "-C",
            "link-self-contained=no",
            "-L",
            str(Path(WASI_LIBC.path).parent),
            "-C",
            f"link-arg={WASI_CRT1.path}",
        ]
        if variant.features:
            flags += ["-C", "target-feature=" + ",".join(f"+{f}" for f in variant.features)]
        env["RUSTC_BOOTSTRAP"] = "1"  # -Zbuild-std on Debian's stable rustc
        env["CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS"] = " ".join(flags + remap.split())
    else:
        static = ["-C", "target-feature=+crt-static"] if variant.static else []
        env["CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS"] = " ".join(
            ["-C", f"target-cpu={variant.cpu_baseline}", *static] + remap.split()
        )
    return env


def warn_on_unpinned_rustc() -> None:
    found = subprocess.run([RUSTC.require(), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    if not found.startswith(RUSTC_EXPECTED + " "):
        log.info(
            f"warning: {found} is not the {RUSTC_EXPECTED} this project was locked and measured with "
            f"(Debian updates rustc-web); the build may differ from the recorded digests"
        )


def cargo_build(cfg: ModelConfig, variant: Variant, model_file: Path, binary: str = "classify") -> Path:
    """Build one binary of the guest workspace for ``variant``; return the built file in the target dir."""
    warn_on_unpinned_rustc()
    cmd = [CARGO.require(), "build", "--release", "--locked", "--bin", binary, "--target", variant.target]
    if variant.is_wasm:
        for needed in (RUST_LLD, RUST_STD_SOURCE, WASI_LIBC, WASI_CRT1):
            needed.require()
        cmd += ["-Zbuild-std=std,panic_abort"]
    if variant.cargo_features:
        cmd += ["--no-default-features", "--features", ",".join(variant.cargo_features)]
    for crate, level in variant.crate_opt_levels:
        value = level if level.isdigit() else f'"{level}"'
        cmd += ["--config", f'profile.release.package."{crate}".opt-level={value}']
    env = cargo_env(cfg, variant, model_file)
    with log.step(f"cargo build {binary} ({variant.name})"):
        proc = subprocess.run(cmd, cwd=GUEST_DIR, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise StageError(
            f"cargo build of {binary} for {variant.name} failed:\n{proc.stderr[-3000:]}",
            hint="run the command again with the environment above to see the full log",
        )
    suffix = ".wasm" if variant.is_wasm else ""
    return Path(env["CARGO_TARGET_DIR"]) / variant.target / "release" / f"{binary}{suffix}"


def build_guest(cfg: ModelConfig, dist: DistLayout, variants: list[str] | None = None) -> list[Path]:
    """Build the guest for every shipped variant (or the named ones) into dist/guest/<model>/."""
    model_file = dist.onnx(cfg.name)
    if not model_file.is_file():
        raise StageError(f"{model_file} missing", hint=f"run `invoke convert --model {cfg.name}` first")
    chosen = [VARIANTS[v] for v in variants] if variants else shipped_variants()
    outputs = []
    for variant in chosen:
        started = time.perf_counter()
        built = cargo_build(cfg, variant, model_file)
        final = (
            wasm_path(cfg.name, variant.name, dist)
            if variant.is_wasm
            else native_cli_path(cfg.name, dist, variant.name)
        )
        outputs.append(install(built, final, executable=not variant.is_wasm))
        if "ort-engine" in variant.cargo_features:
            install(onnxruntime_wheel_library(), onnxruntime_library_path(cfg.name, dist), executable=False)
        record_build_seconds(dist.root, final, time.perf_counter() - started)
        log.info(f"guest: {final} ({final.stat().st_size:,} bytes)")
    return outputs


def _onnxruntime_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return None


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    found = [
        Artifact(
            native_cli_path(model, dist),
            "native-cli",
            model,
            target=NATIVE_TARGET,
            cpu_baseline=VARIANTS["native"].cpu_baseline,
            features=(),
        ),
        Artifact(
            native_cli_path(model, dist, "native-ort"),
            "native-cli",
            model,
            target=NATIVE_TARGET,
            runtime="onnxruntime",
            cpu_baseline=VARIANTS["native-ort"].cpu_baseline,
            features=(),
        ),
        Artifact(
            onnxruntime_library_path(model, dist),
            "shared-library",
            model,
            target=NATIVE_TARGET,
            runtime="onnxruntime",
            runtime_version=_onnxruntime_version(),
        ),
    ]
    for v in VARIANTS.values():
        if v.is_wasm:
            found.append(
                Artifact(wasm_path(model, v.name, dist), "wasm-cli", model, target=WASM_TARGET, features=v.features)
            )
            found.append(
                Artifact(
                    optimized_wasm_path(model, v.name, dist), "wasm-opt", model, target=WASM_TARGET, features=v.features
                )
            )
    return found

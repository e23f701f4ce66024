"""Cargo builds of the guest classifier, native and wasm32-wasip1: the model-independent bases in dist/guest-base/
(a model is attached afterwards, build/payload.py). Every compiler flag lives here.

Both targets use Debian's rustc/cargo pair (rustup cannot add targets here); wasm builds std from
Debian's std source with -Zbuild-std and links against Debian's wasi-libc. Each variant has its own
cargo target dir (under the cache, outside the clone) so switching variants never rebuilds the others.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from toolchain.build.cargo import GUEST_DIR, install, remap_path_flags, reproducible_cargo_env
from toolchain.core import log
from toolchain.core.artifact import Artifact
from toolchain.core.catalog import (
    NATIVE_TARGET,
    VARIANTS,
    DistLayout,
    Variant,
    base_native_path,
    base_optimized_wasm_path,
    base_wasm_path,
    native_cli_path,
    onnxruntime_library_path,
    payload_path,
    shipped_variants,
)
from toolchain.core.config import CACHE_DIR
from toolchain.core.errors import StageError
from toolchain.core.fsutil import Incremental, digest_inputs
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


def cargo_env(variant: Variant) -> dict[str, str]:
    env = reproducible_cargo_env()
    remap = " ".join(remap_path_flags())
    env.update(
        {
            "RUSTC": RUSTC.path,
            "CARGO_TARGET_DIR": str(CACHE_DIR / "cargo-target" / variant.name),
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


def rustc_version() -> str:
    return subprocess.run([RUSTC.require(), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()


def warn_on_unpinned_rustc() -> None:
    found = rustc_version()
    if not found.startswith(RUSTC_EXPECTED + " "):
        log.info(
            f"warning: {found} is not the {RUSTC_EXPECTED} this project was locked and measured with "
            f"(Debian updates rustc-web); the build may differ from the recorded digests"
        )


def cargo_command(variant: Variant, binary: str = "classify") -> list[str]:
    """The cargo command line of one binary of the guest workspace for ``variant``."""
    return _cargo_command(variant, ["build", "--release", "--locked", "--bin", binary])


def _cargo_command(variant: Variant, what: list[str]) -> list[str]:
    """``cargo WHAT...`` for ``variant``: its target, std build, features and per-crate opt-levels."""
    warn_on_unpinned_rustc()
    cmd = [CARGO.require(), *what, "--target", variant.target]
    if variant.is_wasm:
        for needed in (RUST_LLD, RUST_STD_SOURCE, WASI_LIBC, WASI_CRT1):
            needed.require()
        cmd += ["-Zbuild-std=std,panic_abort"]
    if variant.cargo_features:
        cmd += ["--no-default-features", "--features", ",".join(variant.cargo_features)]
    for crate, level in variant.crate_opt_levels:
        value = level if level.isdigit() else f'"{level}"'
        cmd += ["--config", f'profile.release.package."{crate}".opt-level={value}']
    return cmd


def cargo_build(variant: Variant, binary: str = "classify") -> Path:
    """Build one binary of the guest workspace for ``variant``; return the built file in the target dir."""
    cmd = cargo_command(variant, binary)
    env = cargo_env(variant)
    with log.step(f"cargo build {binary} ({variant.name})"):
        proc = subprocess.run(cmd, cwd=GUEST_DIR, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise StageError(
            f"cargo build of {binary} for {variant.name} failed:\n{proc.stderr[-3000:]}",
            hint="run the command again with the environment above to see the full log",
        )
    suffix = ".wasm" if variant.is_wasm else ""
    return Path(env["CARGO_TARGET_DIR"]) / variant.target / "release" / f"{binary}{suffix}"


def build_wasm_unit_tests(variant: Variant) -> Path:
    """Build the guest library's unit tests for a wasm ``variant`` (the simd128 kernels' tests exist only
    there) in a target dir of their own; return the test module, which a wasm host runs with
    ``--test-threads=1``. A test's panic aborts the module (panic=abort, no unwinding on wasm32-wasip1).
    Slow: libtest makes cargo rebuild std and every dependency for this build (~6 min on 2 cores)."""
    tests = ["-p", "classifier", "--lib", "--no-run", "-Zpanic-abort-tests", "--message-format=json"]
    cmd = _cargo_command(variant, ["test", "--release", "--locked", *tests])
    env = {**cargo_env(variant), "CARGO_TARGET_DIR": str(CACHE_DIR / "cargo-target" / f"{variant.name}-unit-tests")}
    with log.step(f"cargo test --no-run ({variant.name})"):
        proc = subprocess.run(cmd, cwd=GUEST_DIR, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise StageError(f"cargo test build for {variant.name} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            return Path(message["executable"])
    raise StageError(f"cargo test build for {variant.name} named no test module")


def build_settings(variant: Variant) -> dict:
    """Everything besides the sources that decides a base's bytes: the command, the compiler, and the environment
    cargo_env sets or the caller's shell passes on to cargo (flags, profile overrides, SOURCE_DATE_EPOCH)."""
    env = cargo_env(variant)
    passed = {
        k: v
        for k, v in env.items()
        if k.startswith(("CARGO_", "RUSTC", "RUSTFLAGS", "SOURCE_DATE_EPOCH"))
        and not k.startswith(("CARGO_TARGET_DIR", "CARGO_TERM_", "CARGO_HOME"))  # where and how, not what
    }
    return {"variant": repr(variant), "cargo": cargo_command(variant), "rustc": rustc_version(), "env": passed}


def guest_sources() -> list[Path]:
    """Every file a guest base is built from (the workspace manifests, the classifier and the shims): the base
    is rebuilt when one of them changes, and only then (no cargo run at all otherwise)."""
    files = [GUEST_DIR / "Cargo.toml", GUEST_DIR / "Cargo.lock"]
    for tree in (GUEST_DIR / "classifier", GUEST_DIR / "shims"):
        files += sorted(p for p in tree.rglob("*") if p.is_file() and "target" not in p.relative_to(tree).parts)
    return files


def build_guest(dist: DistLayout, variants: list[str] | None = None) -> list[Path]:
    """Build the model-independent guest base of every shipped variant (or the named ones) into dist/guest-base/."""
    chosen = [VARIANTS[v] for v in variants] if variants else shipped_variants()
    sources = guest_sources()
    outputs = []
    for variant in chosen:
        final = base_wasm_path(variant.name, dist) if variant.is_wasm else base_native_path(variant.name, dist)
        job = Incremental(
            "guest",
            dist.stamp(f"guest-{variant.name}", "base"),
            digest_inputs(sources, build_settings(variant)),
            (final,),
        )
        if not job.up_to_date():
            started = time.perf_counter()
            install(cargo_build(variant), final, executable=not variant.is_wasm)
            job.record(dist.root, started)
            log.info(f"guest base: {final} ({final.stat().st_size:,} bytes)")
        outputs.append(final)
    return outputs


def install_onnxruntime_library(model: str, dist: DistLayout) -> Path:
    """The ONNX Runtime library next to a model's native-ort guest, where it looks first."""
    return install(onnxruntime_wheel_library(), onnxruntime_library_path(model, dist), executable=False)


def _onnxruntime_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return None


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    """A model's native guests (a base with the model's payload appended) and the ONNX Runtime library."""
    payload = payload_path(model, dist)
    return [
        Artifact(
            native_cli_path(model, dist, v.name),
            "native-cli",
            model,
            target=NATIVE_TARGET,
            runtime="onnxruntime" if "ort-engine" in v.cargo_features else None,
            cpu_baseline=v.cpu_baseline,
            features=(),
            base=base_native_path(v.name, dist),
            payload=payload,
        )
        for v in VARIANTS.values()
        if not v.is_wasm
    ] + [
        Artifact(
            onnxruntime_library_path(model, dist),
            "shared-library",
            model,
            target=NATIVE_TARGET,
            runtime="onnxruntime",
            runtime_version=_onnxruntime_version(),
        )
    ]


def base_artifacts(dist: DistLayout) -> list[Artifact]:
    """The model-independent builds (model ""): native executables, wasm modules as cargo and wasm-opt left them."""
    found = []
    for v in VARIANTS.values():
        paths = (
            [base_wasm_path(v.name, dist), base_optimized_wasm_path(v.name, dist)]
            if v.is_wasm
            else [base_native_path(v.name, dist)]
        )
        found += [
            Artifact(p, "guest-base", "", target=v.target, cpu_baseline=v.cpu_baseline, features=v.features)
            for p in paths
        ]
    return found

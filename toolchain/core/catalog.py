"""The artifact catalog: what is built (variants, AOT targets, image engines), for which target triple, and
where each artifact lies in dist/. Every stage, runtime and measurement asks here; nothing else spells a path.

To add an artifact: its path here, its stage in toolchain/build or toolchain/package, its kind in
schemas/manifest.schema.json and an entry in that stage's ``artifacts()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from toolchain.core.config import REPO_ROOT, ModelConfig, project_version
from toolchain.core.versions import WASMTIME_TARGETS

NATIVE_TARGET = "x86_64-unknown-linux-gnu"
WASM_TARGET = "wasm32-wasip1"
WASM01_TARGET = "wasmtime-0.23"  # the AOT target of OpenWhisk's wasm:0.1 executor (versions.WASMTIME_TARGETS)
PYTHON_AOT_TARGET = "wasmtime-50"  # the toolchain's own wasmtime-py runtimes (epoch deadline: long-lived)
HOST_AOT_TARGET = "wasmtime-50-host"  # the Rust wasm host (guest/host): one request per instance, a watchdog


@dataclass(frozen=True)
class DistLayout:
    """Every output path, in one place. ``root`` is ``dist/`` unless overridden (tests use a temp dir)."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def default(cls) -> DistLayout:
        return cls(Path(os.environ.get("MIB_DIST", REPO_ROOT / "dist")))

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def model_dir(self) -> Path:
        return self.root / "model"

    def frozen_pb(self, model: str) -> Path:
        return self.model_dir() / f"{model}.pb"

    def onnx(self, model: str) -> Path:
        return self.model_dir() / f"{model}.onnx"

    def model_report(self, model: str) -> Path:
        return self.model_dir() / f"{model}.json"

    def golden_dir(self, model: str) -> Path:
        return self.root / "golden" / model

    def guest_dir(self, model: str) -> Path:
        return self.root / "guest" / model

    def guest_base_dir(self) -> Path:
        """The model-independent guest builds, one per variant, that every model's guest is attached to."""
        return self.root / "guest-base"

    def aot_dir(self, model: str) -> Path:
        return self.root / "aot" / model

    def openwhisk_dir(self) -> Path:
        return self.root / "openwhisk"

    def release_dir(self) -> Path:
        """What `invoke release` writes unless told another directory."""
        return self.root / "release"

    def bench_dir(self) -> Path:
        return self.root / "bench"

    def stamp(self, stage: str, model: str) -> Path:
        return self.root / ".stamps" / f"{stage}-{model}.json"


@dataclass(frozen=True)
class Variant:
    name: str
    target: str
    features: tuple[str, ...]  # wasm target features (+simd128 …); native: CPU baseline flags
    cpu_baseline: str | None
    opt_level: str  # cargo's release opt-level for this variant
    ships: bool  # built by `invoke build` (and CI); otherwise opt-in with --variant
    why: str
    cargo_features: tuple[str, ...] = ()  # with these, the default engine (tract) is left out
    static: bool = True  # native: a static-pie binary (no libc needed in the image)
    binary_name: str = "classify"  # the installed file name in dist/guest/<model>/ (native variants)
    # wasm variants: -O3 where speed is the point; -Oz for the wasm:0.1 module, whose wasmtime-0.23 .cwasm must
    # fit OpenWhisk's 48 MB action-code limit after zip + base64 (README, "wasm-opt levels")
    wasm_opt_level: str | None = None
    # crates built at another opt-level than ``opt_level`` (crate, level): where a size-optimised variant spends
    # its time
    crate_opt_levels: tuple[tuple[str, str], ...] = ()
    # the model's ONNX file travels in the payload (False: the engine gets the model elsewhere, the payload
    # carries the facts and labels only)
    payload_holds_model: bool = True

    @property
    def is_wasm(self) -> bool:
        return self.target == WASM_TARGET


VARIANTS = {
    v.name: v
    for v in (
        Variant(
            "native",
            NATIVE_TARGET,
            (),
            "x86-64",
            "3",
            True,
            "the native CLI: the seed's mobilenet-oc-l, and the native denominator of the benchmark",
        ),
        Variant(
            "native-ort",
            NATIVE_TARGET,
            (),
            "x86-64",
            "3",
            True,
            "ONNX Runtime as the native action image's engine (the wheel's shared library, loaded at start-up): "
            "tract is 1.8x ONNX Runtime natively; dynamically linked, so image only",
            cargo_features=("ort-engine",),
            static=False,
            binary_name="classify-ort",
        ),
        Variant(
            "wasm-simd",
            WASM_TARGET,
            ("simd128",),
            None,
            "3",
            True,
            "tract's wasm kernels exist only under simd128; the fast wasm guest",
            wasm_opt_level="-O3",
        ),
        Variant(
            "wasm-nosimd",
            WASM_TARGET,
            (),
            None,
            "z",
            True,
            "OpenWhisk's wasm:0.1 executor embeds wasmtime 0.23, which rejects today's SIMD encoding; "
            "opt-level z because its .cwasm must fit OpenWhisk's 48 MB code limit after zip + base64, "
            "except tract's kernels (3), where an activation's time goes (tract-core at s only sped up the "
            "model load, which the snapshot now does at build time)",
            wasm_opt_level="-Oz",
            crate_opt_levels=(("tract-linalg", "3"),),
        ),
        Variant(
            "wasm-wasinn",  # WASINN_VARIANT
            WASM_TARGET,
            ("simd128",),
            None,
            "3",
            True,
            "inference through wasi-nn: the sandbox keeps the request parsing, decoding and preprocessing, the host's "
            "ONNX Runtime runs the model (the module carries no model and no tract)",
            wasm_opt_level="-O3",
            cargo_features=("wasinn-engine",),
            payload_holds_model=False,
        ),
        Variant(
            "wasm-relaxed",
            WASM_TARGET,
            ("simd128", "relaxed-simd"),
            None,
            "3",
            False,
            "measured, not shipped: relaxed-simd needs a wasmtime configured for it",
            wasm_opt_level="-O3",
        ),
    )
}


def shipped_variants() -> list[Variant]:
    return [v for v in VARIANTS.values() if v.ships]


# ---- paths of the guest builds: the model-independent bases (dist/guest-base/), the model payload and the guests
# that carry it (dist/guest/<model>/)


def base_native_path(variant: str, dist: DistLayout) -> Path:
    return dist.guest_base_dir() / VARIANTS[variant].binary_name


def base_wasm_path(variant: str, dist: DistLayout) -> Path:
    return dist.guest_base_dir() / f"classify-{variant.removeprefix('wasm-')}.wasm"


def base_optimized_wasm_path(variant: str, dist: DistLayout) -> Path:
    return dist.guest_base_dir() / f"classify-{variant.removeprefix('wasm-')}.opt.wasm"


WASINN_VARIANT = "wasm-wasinn"  # its module imports wasi-nn: compiled for the Rust host only, never pre-initialised


def facts_payload_path(model: str, dist: DistLayout) -> Path:
    """The payload without the ONNX file, for variants whose engine gets the model elsewhere (wasm-wasinn)."""
    return dist.guest_dir(model) / "facts.payload"


def wasinn_cwasm_path(model: str, dist: DistLayout) -> Path:
    """The wasi-nn module compiled for the Rust host (the only host that offers wasi-nn)."""
    return dist.aot_dir(model) / f"classify-wasinn.{HOST_AOT_TARGET}.cwasm"


def payload_path(model: str, dist: DistLayout) -> Path:
    """The model, its labels and facts in the one file a guest carries (guest/classifier/src/model.rs)."""
    return dist.guest_dir(model) / "model.payload"


def native_cli_path(model: str, dist: DistLayout, variant: str = "native") -> Path:
    return dist.guest_dir(model) / VARIANTS[variant].binary_name


def onnxruntime_library_path(model: str, dist: DistLayout) -> Path:
    """Next to the native-ort binary, where it looks first (guest/classifier/src/engine_ort.rs)."""
    return dist.guest_dir(model) / "libonnxruntime.so"


def optimized_wasm_path(model: str, variant: str, dist: DistLayout) -> Path:
    """The optimised wasm base with the model attached."""
    return dist.guest_dir(model) / f"classify-{variant.removeprefix('wasm-')}.opt.wasm"


# The wasm variants that are pre-initialised: the SIMD one for today's wasmtime, and the no-SIMD one, whose
# snapshot is what the wasm:0.1 zip carries (its executor makes an instance per activation, so without it every
# activation parsed and optimised the model). The snapshot holds the loaded model (packed weights, about the
# ONNX file's size), not the file: the guest zeroes what it frees while loading (snapshot_alloc.rs).
PREINIT_VARIANTS: tuple[str, ...] = ("wasm-simd", "wasm-nosimd")


def preinit_path(model: str, variant: str, dist: DistLayout) -> Path:
    return dist.guest_dir(model) / f"classify-{variant.removeprefix('wasm-')}.preinit.wasm"


def host_path(dist: DistLayout) -> Path:
    return dist.root / "hosts" / "wasm-host"


# ---- AOT targets and their .cwasm (dist/aot/<model>/)

# Cranelift's names for the x86-64 micro-architecture levels (psABI): v2 ⊂ v3.
CPU_BASELINES = {
    "x86-64-v2": ("has_sse3", "has_ssse3", "has_sse41", "has_sse42", "has_popcnt"),
    "x86-64-v3": (
        "has_sse3",
        "has_ssse3",
        "has_sse41",
        "has_sse42",
        "has_popcnt",
        "has_avx",
        "has_avx2",
        "has_fma",
        "has_bmi1",
        "has_bmi2",
        "has_lzcnt",
    ),
}


@dataclass(frozen=True)
class AotTarget:
    name: str  # key of WASMTIME_TARGETS, e.g. "wasmtime-50"
    version: str
    simd: bool
    cpu_baseline: str  # a key of CPU_BASELINES, or "build-host"
    epoch: bool = False  # compiled with epoch interruption (the deadline of long-lived hosts); else no checks
    rewritten: bool = False  # after compiling, toolchain/build/cwasm023.rewrite (wasmtime 0.23 only)

    @property
    def variant(self) -> str:
        return "wasm-simd" if self.simd else "wasm-nosimd"

    @property
    def cpu_flags(self) -> tuple[str, ...]:
        return CPU_BASELINES.get(self.cpu_baseline, ())

    def worker_args(self) -> list[str]:
        args = ["--simd"] if self.simd else []
        if self.epoch:
            args.append("--epoch")
        if self.cpu_flags:
            args += ["--target", NATIVE_TARGET]
        for flag in self.cpu_flags:
            args += ["--cpu-flag", flag]
        return args


def aot_targets() -> list[AotTarget]:
    out = []
    for name, spec in WASMTIME_TARGETS.items():
        version = str(spec["pip"]).split("==")[1]
        baseline = "x86-64-v3" if int(version.split(".")[0]) >= 1 else "build-host"
        out.append(
            AotTarget(
                name, version, bool(spec["simd"]), baseline, bool(spec["epoch"]), bool(spec.get("rewritten", False))
            )
        )
    return out


def aot_target(name: str) -> AotTarget:
    return next(t for t in aot_targets() if t.name == name)


def cwasm_path(model: str, target: AotTarget, dist: DistLayout) -> Path:
    return dist.aot_dir(model) / f"classify-{target.variant.removeprefix('wasm-')}.{target.name}.cwasm"


def preinit_cwasm_path(model: str, target: AotTarget, dist: DistLayout) -> Path:
    return dist.aot_dir(model) / f"classify-{target.variant.removeprefix('wasm-')}.preinit.{target.name}.cwasm"


def wasm01_cwasm_path(model: str, dist: DistLayout) -> Path:
    """What the wasm:0.1 zip carries: the no-SIMD snapshot (model loaded) compiled by wasmtime 0.23."""
    return preinit_cwasm_path(model, aot_target(WASM01_TARGET), dist)


# ---- OpenWhisk packages (dist/openwhisk/)


def wasm01_zip_path(model: str, dist: DistLayout) -> Path:
    return dist.openwhisk_dir() / f"{model}-wasmtime.zip"


def exec_zip_path(model: str, dist: DistLayout) -> Path:
    return dist.openwhisk_dir() / f"{model}-exec.zip"


@dataclass(frozen=True)
class Engine:
    name: str
    variant: str  # the guest variant whose binary serves
    suffix: str  # of the file and repository names
    description: str


ENGINES = {
    e.name: e
    for e in (
        Engine("tract", "native", "", "tract engine, static binary, model built in"),
        Engine(
            "onnxruntime",
            "native-ort",
            "-onnxruntime",
            "ONNX Runtime engine (the onnxruntime wheel's shared library), model built in",
        ),
    )
}


def image_path(model: str, dist: DistLayout, engine: str = "tract") -> Path:
    return dist.openwhisk_dir() / f"{model}{ENGINES[engine].suffix}-image.tar"


def image_reference(cfg: ModelConfig, engine: str = "tract") -> str:
    return f"mobilenet-infer-benchmark/{cfg.name.lower()}{ENGINES[engine].suffix}:{project_version()}"


def deploy_paths(model: str, dist: DistLayout) -> dict[str, Path]:
    d = dist.openwhisk_dir()
    return {
        "wskdeploy": d / f"{model}-manifest.yaml",
        "commands": d / f"{model}-deploy.sh",
        "plan": d / f"{model}-actions.json",
    }

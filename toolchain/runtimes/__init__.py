"""The runtime registry: verify, bench, classify and the memory measurement iterate over it.

A new runtime is an adapter module here (name, artifact, start-up; the ``Runtime`` interface in base.py) and its
class in REGISTRY; the bench measures it once toolchain/measure/bench/probes.PROBE_OF names its probe, and the
results schema lists its name (tests/test_architecture.py checks that the two lists agree).
"""

from __future__ import annotations

from toolchain.core.catalog import DistLayout
from toolchain.core.config import ModelConfig
from toolchain.core.errors import ConfigError
from toolchain.runtimes.base import Runtime
from toolchain.runtimes.native_cli import NativeCli
from toolchain.runtimes.onnxruntime import OnnxRuntime1T, OnnxRuntimeDefault
from toolchain.runtimes.openwhisk import ActionloopExec, Container, NativeOrtContainer
from toolchain.runtimes.tf import TensorFlowRuntime
from toolchain.runtimes.tract_py import TractPython
from toolchain.runtimes.wasm import WasmAot, WasmJit, WasmPreinitAot, WasmWasinn
from toolchain.runtimes.wasm01 import Wasm01Aot

REGISTRY: list[type[Runtime]] = [
    TensorFlowRuntime,
    OnnxRuntime1T,
    OnnxRuntimeDefault,
    TractPython,
    NativeCli,
    WasmJit,
    WasmAot,
    WasmPreinitAot,
    WasmWasinn,
    Wasm01Aot,
    ActionloopExec,
    Container,
    NativeOrtContainer,
]


def runtime_names() -> list[str]:
    return [r.name for r in REGISTRY]


def make_runtime(name: str, cfg: ModelConfig, dist: DistLayout) -> Runtime:
    for cls in REGISTRY:
        if cls.name == name:
            return cls(cfg, dist)
    raise ConfigError(f"unknown runtime {name!r}", hint=f"choose one of: {', '.join(runtime_names())}")


def select_runtimes(
    cfg: ModelConfig, dist: DistLayout, names: list[str] | None = None
) -> tuple[list[Runtime], dict[str, str]]:
    """The runtimes to use (all by default) and, separately, those unavailable here with the reason."""
    chosen = [make_runtime(n, cfg, dist) for n in names] if names else [cls(cfg, dist) for cls in REGISTRY]
    ready, missing = [], {}
    for rt in chosen:
        reason = rt.unavailable_reason()
        if reason:
            missing[rt.name] = reason
        else:
            ready.append(rt)
    return ready, missing

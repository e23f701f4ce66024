"""Peak memory of each packaged action on this machine, on the costliest request the model config accepts:
the numbers the deploy files' memory limits come from (toolchain/package/deploy.py)."""

from __future__ import annotations

import base64
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from toolchain.core import log
from toolchain.core.catalog import (
    ENGINES,
    DistLayout,
    exec_zip_path,
    image_path,
    image_reference,
    native_cli_path,
    wasm01_zip_path,
)
from toolchain.core.config import ModelConfig
from toolchain.core.errors import StageError
from toolchain.package.deploy import PAYLOAD_LIMIT, ActionPlan, largest_accepted_image, memory_limit_mb
from toolchain.runtimes.actions import ExecAction, ServerAction, extract_exec, vm_hwm_kib
from toolchain.runtimes.wasm01 import Wasm01Aot


def peak_kib(pid: int) -> int:
    kib = vm_hwm_kib(pid)
    if kib is None:
        raise StageError(f"cannot read the peak memory of process {pid} (it exited early?)")
    return kib


def measure_exec_peak_mb(zip_path: Path, request: dict) -> float:
    with tempfile.TemporaryDirectory(prefix="mib-exec-") as tmp:
        action = ExecAction(extract_exec(zip_path, Path(tmp)))
        try:
            answer = action.activate(request)
            if "error" in answer:
                raise StageError(f"the exec refused the measurement image: {answer['error']}")
            return peak_kib(action.proc.pid) / 1024
        finally:
            action.close()


def measure_server_peak_mb(binary: Path, request: dict, concurrent: int = 2) -> float:
    """The action server with ``concurrent`` simultaneous worst-case requests (its inference slots)."""
    server = ServerAction.bare(binary)
    try:
        server.wait_ready()
        with ThreadPoolExecutor(concurrent) as pool:
            answers = list(pool.map(lambda _: server.run(request), range(concurrent)))
        bad = [a for a in answers if a.status != 200 or "error" in a.body]
        if bad:
            raise StageError(f"the action server refused the measurement image: {bad[0]}")
        return peak_kib(server.server_pid()) / 1024
    finally:
        server.close()


def measure_wasm01_peak_mb(cfg: ModelConfig, dist: DistLayout, request: dict) -> float:
    """Peak RSS of the wasmtime-0.23 host (a Python worker: an upper bound for OpenWhisk's Rust executor)."""
    rt = Wasm01Aot(cfg, dist)
    try:
        answer = rt.call(json.dumps(request).encode())
        if "error" in answer:
            raise StageError(f"the wasm:0.1 action refused the measurement image: {answer['error']}")
        return peak_kib(rt.process_id()) / 1024
    finally:
        rt.close()


def plan_actions(cfg: ModelConfig, dist: DistLayout) -> list[ActionPlan]:
    image = largest_accepted_image(cfg)
    request = {"image": base64.b64encode(image).decode()}
    if len(json.dumps(request)) > PAYLOAD_LIMIT:
        raise StageError(
            f"the largest image the config accepts is {len(json.dumps(request)):,} bytes as a "
            f"request, over OpenWhisk's {PAYLOAD_LIMIT:,}-byte payload limit",
            hint="lower limits.max_image_bytes in the model config",
        )
    what = f"{len(image):,}-byte JPEG at {cfg.max_pixels:,} pixels"
    base = cfg.name.replace(".", "_")
    plans = []
    with log.step("peak memory of each action"):
        for name, artifact, how, measure, reference in (
            (
                f"{base}-wasm",
                wasm01_zip_path(cfg.name, dist),
                "wasm:0.1",
                lambda: measure_wasm01_peak_mb(cfg, dist, request),
                None,
            ),
            (
                f"{base}-exec",
                exec_zip_path(cfg.name, dist),
                "native",
                lambda: measure_exec_peak_mb(exec_zip_path(cfg.name, dist), request),
                None,
            ),
            (
                f"{base}-container",
                image_path(cfg.name, dist),
                "docker",
                lambda: measure_server_peak_mb(native_cli_path(cfg.name, dist), request),
                image_reference(cfg),
            ),
            (
                f"{base}-onnxruntime",
                image_path(cfg.name, dist, "onnxruntime"),
                "docker",
                lambda: measure_server_peak_mb(
                    native_cli_path(cfg.name, dist, ENGINES["onnxruntime"].variant), request
                ),
                image_reference(cfg, "onnxruntime"),
            ),
        ):
            if not artifact.is_file():
                raise StageError(f"{artifact} missing", hint=f"run `invoke package --model {cfg.name}`")
            peak = measure()
            plans.append(
                ActionPlan(name, artifact.name, how, round(peak, 1), memory_limit_mb(peak, name), what, reference)
            )
            log.info(f"deploy: {name} peaks at {peak:.0f} MB -> memory limit {plans[-1].memory_mb} MB")
    return plans

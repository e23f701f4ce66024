"""Deploy description for OpenWhisk: measured memory limits, a wskdeploy manifest.yaml and the wsk commands.

Memory limits come from the peak RSS of each action on this machine, measured on the largest image the
model config accepts (a classification at the pixel limit), with headroom, rounded up to 32 MB and kept
within OpenWhisk's 128–512 MB. A peak that does not fit 512 MB with headroom is a build error.
"""

from __future__ import annotations

import base64
import io
import json
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from toolchain.core import log
from toolchain.core.config import DistLayout, ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import canonical_json, write_atomic
from toolchain.package.manifest import Artifact

MEMORY_MIN_MB, MEMORY_MAX_MB = 128, 512  # OpenWhisk's default action memory range
MEMORY_HEADROOM = 1.25  # allocator slack and concurrent requests beyond the measured case
TIMEOUT_MS = 60_000
PAYLOAD_LIMIT = 1024 * 1024  # OpenWhisk's default max activation payload


@dataclass(frozen=True)
class ActionPlan:
    name: str  # OpenWhisk action name
    artifact: str  # file name in dist/openwhisk/
    how: str  # what `wsk` needs to know: "wasm:0.1", "native" (zip), "docker"
    peak_rss_mb: float
    memory_mb: int
    measured_with: str
    image: str | None = None  # docker actions: the image reference


def largest_accepted_image(cfg: ModelConfig) -> bytes:
    """A JPEG at the config's pixel limit (within the side limit) and under the byte limit: the costliest
    request a caller can make."""
    import numpy as np
    from PIL import Image

    w = min(cfg.max_side, math.isqrt(cfg.max_pixels) * 2)
    h = min(cfg.max_side, cfg.max_pixels // w)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) % 256)], -1).astype(np.uint8)
    for quality in (85, 60, 30, 10):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
        if buf.tell() <= cfg.max_image_bytes:
            return buf.getvalue()
    raise StageError(f"cannot make a {w}x{h} JPEG under {cfg.max_image_bytes} bytes to measure peak memory")


def memory_limit_mb(peak_mb: float, what: str) -> int:
    wanted = math.ceil(peak_mb * MEMORY_HEADROOM / 32) * 32
    if wanted > MEMORY_MAX_MB:
        raise StageError(f"the {what} peaks at {peak_mb:.0f} MB; with {MEMORY_HEADROOM}x headroom it needs "
                         f"{wanted} MB, over OpenWhisk's {MEMORY_MAX_MB} MB action limit",
                         hint="lower limits.max_pixels in the model config, or raise the invoker's memory limit")
    return max(MEMORY_MIN_MB, wanted)


def _status_kib(pid: int) -> int:
    from toolchain.runtimes.actions import vm_hwm_kib

    kib = vm_hwm_kib(pid)
    if kib is None:
        raise StageError(f"cannot read the peak memory of process {pid} (it exited early?)")
    return kib


def measure_exec_peak_mb(zip_path: Path, request: dict) -> float:
    from toolchain.runtimes.actions import ExecAction, extract_exec

    with tempfile.TemporaryDirectory(prefix="mib-exec-") as tmp:
        action = ExecAction(extract_exec(zip_path, Path(tmp)))
        try:
            answer = action.activate(request)
            if "error" in answer:
                raise StageError(f"the exec refused the measurement image: {answer['error']}")
            return _status_kib(action.proc.pid) / 1024
        finally:
            action.close()


def measure_server_peak_mb(binary: Path, request: dict, concurrent: int = 2) -> float:
    """The action server with ``concurrent`` simultaneous worst-case requests (its inference slots)."""
    from concurrent.futures import ThreadPoolExecutor

    from toolchain.runtimes.actions import ServerAction

    server = ServerAction.bare(binary)
    try:
        server.wait_ready()
        with ThreadPoolExecutor(concurrent) as pool:
            answers = list(pool.map(lambda _: server.run(request), range(concurrent)))
        bad = [a for a in answers if a.status != 200 or "error" in a.body]
        if bad:
            raise StageError(f"the action server refused the measurement image: {bad[0]}")
        return _status_kib(server.proc.pid) / 1024
    finally:
        server.close()


def measure_wasm01_peak_mb(cfg: ModelConfig, dist: DistLayout, request: dict) -> float:
    """Peak RSS of the wasmtime-0.23 host (a Python worker: an upper bound for OpenWhisk's Rust executor)."""
    from toolchain.runtimes import make_runtime

    rt = make_runtime("wasm01-aot", cfg, dist)
    try:
        answer = rt.call(json.dumps(request).encode())
        if "error" in answer:
            raise StageError(f"the wasm:0.1 action refused the measurement image: {answer['error']}")
        return _status_kib(rt._proc.pid) / 1024
    finally:
        rt.close()


def plan_actions(cfg: ModelConfig, dist: DistLayout) -> list[ActionPlan]:
    from toolchain.build.guest import native_cli_path
    from toolchain.package.image import image_path, image_reference
    from toolchain.package.zips import exec_zip_path, wasm01_zip_path

    image = largest_accepted_image(cfg)
    request = {"image": base64.b64encode(image).decode()}
    if len(json.dumps(request)) > PAYLOAD_LIMIT:
        raise StageError(f"the largest image the config accepts is {len(json.dumps(request)):,} bytes as a "
                         f"request, over OpenWhisk's {PAYLOAD_LIMIT:,}-byte payload limit",
                         hint="lower limits.max_image_bytes in the model config")
    what = f"{len(image):,}-byte JPEG at {cfg.max_pixels:,} pixels"
    base = cfg.name.replace(".", "_")
    plans = []
    with log.step("peak memory of each action"):
        for name, artifact, how, measure, image in (
            (f"{base}-wasm", wasm01_zip_path(cfg.name, dist), "wasm:0.1",
             lambda: measure_wasm01_peak_mb(cfg, dist, request), None),
            (f"{base}-exec", exec_zip_path(cfg.name, dist), "native",
             lambda: measure_exec_peak_mb(exec_zip_path(cfg.name, dist), request), None),
            (f"{base}-container", image_path(cfg.name, dist), "docker",
             lambda: measure_server_peak_mb(native_cli_path(cfg.name, dist), request), image_reference(cfg)),
            (f"{base}-onnxruntime", image_path(cfg.name, dist, "onnxruntime"), "docker",
             lambda: measure_server_peak_mb(native_cli_path(cfg.name, dist, "native-ort"), request),
             image_reference(cfg, "onnxruntime")),
        ):
            if not artifact.is_file():
                raise StageError(f"{artifact} missing", hint=f"run `invoke package --model {cfg.name}`")
            peak = measure()
            plans.append(ActionPlan(name, artifact.name, how, round(peak, 1), memory_limit_mb(peak, name), what,
                                    image))
            log.info(f"deploy: {name} peaks at {peak:.0f} MB -> memory limit {plans[-1].memory_mb} MB")
    return plans


def wskdeploy_yaml(cfg: ModelConfig, plans: list[ActionPlan]) -> str:
    lines = [f"# wskdeploy manifest for {cfg.name}, written by `invoke package`.",
             "# Memory limits: measured peak RSS on the largest accepted image x "
             f"{MEMORY_HEADROOM}, rounded up to 32 MB.",
             "# The container actions need their images in a registry the invokers can pull from:"]
    lines += [f"#   podman load -i {p.artifact} && podman push {p.image} <registry>/{p.image}"
              for p in plans if p.how == "docker"]
    lines += ["packages:", "  mobilenet:", "    actions:"]
    for p in plans:
        lines += [f"      {p.name}:  # peak {p.peak_rss_mb} MB"]
        if p.how == "docker":
            lines += [f"        docker: {p.image}"]
        elif p.how == "native":
            lines += [f"        function: {p.artifact}", "        native: true"]
        else:
            lines += [f"        function: {p.artifact}", f"        runtime: {p.how}"]
        lines += ["        limits:", f"          memorySize: {p.memory_mb}", f"          timeout: {TIMEOUT_MS}"]
    return "\n".join(lines) + "\n"


def wsk_commands(plans: list[ActionPlan]) -> str:
    out = ["#!/bin/sh", "# The wsk commands for these actions (written by `invoke package`). Run from this directory.",
           "set -eu"]
    for p in plans:
        flags = {"wasm:0.1": f"{p.artifact} --kind wasm:0.1", "native": f"{p.artifact} --native",
                 "docker": f"--docker {p.image}"}[p.how]
        out.append(f"wsk action update {p.name} {flags} --memory {p.memory_mb} --timeout {TIMEOUT_MS}")
    return "\n".join(out) + "\n"


def deploy_paths(model: str, dist: DistLayout) -> dict[str, Path]:
    d = dist.openwhisk_dir()
    return {"wskdeploy": d / f"{model}-manifest.yaml", "commands": d / f"{model}-deploy.sh",
            "plan": d / f"{model}-actions.json"}


def write_deploy_files(cfg: ModelConfig, dist: DistLayout) -> list[Path]:
    plans = plan_actions(cfg, dist)
    paths = deploy_paths(cfg.name, dist)
    write_atomic(paths["wskdeploy"], wskdeploy_yaml(cfg, plans).encode())
    write_atomic(paths["commands"], wsk_commands(plans).encode())
    paths["commands"].chmod(0o755)
    write_atomic(paths["plan"], canonical_json({"model": cfg.name, "actions": [asdict(p) for p in plans]}))
    return list(paths.values())


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    paths = deploy_paths(model, dist)
    return [Artifact(paths["wskdeploy"], "wskdeploy-manifest", model),
            Artifact(paths["commands"], "wsk-commands", model),
            Artifact(paths["plan"], "openwhisk-actions", model)]

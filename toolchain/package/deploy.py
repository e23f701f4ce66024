"""Deploy description for OpenWhisk: memory limits, a wskdeploy manifest.yaml and the wsk commands, as pure
functions of action plans.

Memory limits come from the peak RSS of each action on this machine (toolchain/measure/peaks.py), measured on
the largest image the model config accepts (a classification at the pixel limit), with headroom, rounded up to
32 MB and kept within OpenWhisk's 128–512 MB. A peak that does not fit 512 MB with headroom is a build error.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from toolchain.core.artifact import Artifact
from toolchain.core.catalog import DistLayout, deploy_paths
from toolchain.core.config import ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import canonical_json, write_atomic
from toolchain.package.zips import ACTIONLOOP_IMAGES

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
        raise StageError(
            f"the {what} peaks at {peak_mb:.0f} MB; with {MEMORY_HEADROOM}x headroom it needs "
            f"{wanted} MB, over OpenWhisk's {MEMORY_MAX_MB} MB action limit",
            hint="lower limits.max_pixels in the model config, or raise the invoker's memory limit",
        )
    return max(MEMORY_MIN_MB, wanted)


def wskdeploy_yaml(cfg: ModelConfig, plans: list[ActionPlan]) -> str:
    lines = [
        f"# wskdeploy manifest for {cfg.name}, written by `invoke package`.",
        f"# Memory limits: measured peak RSS on the largest accepted image x {MEMORY_HEADROOM}, rounded up to 32 MB.",
        "# The container actions need their images in a registry the invokers can pull from:",
    ]
    lines += [
        f"#   podman load -i {p.artifact} && podman push {p.image} <registry>/{p.image}"
        for p in plans
        if p.how == "docker"
    ]
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
    out = [
        "#!/bin/sh",
        "# The wsk commands for these actions (written by `invoke package`). Run from this directory.",
        "set -eu",
    ]
    for p in plans:
        flags = {
            "wasm:0.1": f"{p.artifact} --kind wasm:0.1",
            "native": f"{p.artifact} --native",
            "docker": f"--docker {p.image}",
        }[p.how]
        out.append(f"wsk action update {p.name} {flags} --memory {p.memory_mb} --timeout {TIMEOUT_MS}")
        if p.how == "native":
            out += actionloop_alternatives(p)
    return "\n".join(out) + "\n"


def actionloop_alternatives(p: ActionPlan) -> list[str]:
    """The exec zip also runs unchanged on these actionloop runtimes, where the model stays loaded between
    activations (tests/test_openwhisk.py replays each one's /init): commented, so the script makes one action."""
    return ["#   or, on an actionloop runtime (the model stays loaded between activations):"] + [
        f"#   wsk action update {p.name} {p.artifact} {image.deploy} --memory {p.memory_mb} --timeout {TIMEOUT_MS}"
        for image in ACTIONLOOP_IMAGES
    ]


def write_deploy_files(cfg: ModelConfig, dist: DistLayout, plans: list[ActionPlan]) -> list[Path]:
    """The wskdeploy manifest, the wsk commands and the plan, from plans with measured memory (measure/peaks.py)."""
    paths = deploy_paths(cfg.name, dist)
    write_atomic(paths["wskdeploy"], wskdeploy_yaml(cfg, plans).encode())
    write_atomic(paths["commands"], wsk_commands(plans).encode())
    paths["commands"].chmod(0o755)
    write_atomic(paths["plan"], canonical_json({"model": cfg.name, "actions": [asdict(p) for p in plans]}))
    return list(paths.values())


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    paths = deploy_paths(model, dist)
    return [
        Artifact(paths["wskdeploy"], "wskdeploy-manifest", model),
        Artifact(paths["commands"], "wsk-commands", model),
        Artifact(paths["plan"], "openwhisk-actions", model),
    ]

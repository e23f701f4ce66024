"""``dist/manifest.json``: one entry per artifact, with digests and tool versions. Release pipelines read it.

The file is deterministic for the same inputs (sorted keys, no timestamps) and valid against
``schemas/manifest.schema.json``. Kinds are never renamed; new kinds may be added.
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from toolchain.build import aot, guest, host, payload, preinit
from toolchain.build.model_cost import count_macs
from toolchain.core import programs
from toolchain.core.artifact import SCHEMA_PATH, Artifact
from toolchain.core.catalog import DistLayout
from toolchain.core.config import REPO_ROOT, load_model_config
from toolchain.core.fsutil import canonical_json, sha256_file, write_atomic
from toolchain.core.versions import HOST_TOOLCHAIN
from toolchain.package import deploy, image, zips
from toolchain.package.archive import source_revision

SCHEMA_VERSION = 1

# The stages that write artifacts, each answering ``artifacts(model, dist)`` from the catalog's paths.
ARTIFACT_STAGES = (payload, guest, aot, zips, image, deploy, preinit, host)

PYTHON_TOOLS = ("tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime", "tract", "wasmtime", "numpy", "pillow")
COMMAND_TOOLS = {
    "rustc": [programs.RUSTC.path, "--version"],
    "cargo": [programs.CARGO.path, "--version"],
    "wasm-opt": [programs.WASM_OPT.path, "--version"],
    "wasm-strip": [programs.WASM_STRIP.path, "--version"],
    "podman": [programs.PODMAN.path, "--version"],
    "rustc-host": [programs.RUSTUP.path, "run", HOST_TOOLCHAIN, "rustc", "--version"],
    "chromium": [programs.CHROMIUM.path, "--version"],
}


def tool_versions() -> dict:
    versions = {"python": platform.python_version()}
    for dist_name in PYTHON_TOOLS:
        try:
            versions[dist_name] = metadata.version(dist_name)
        except metadata.PackageNotFoundError:
            pass
    for name, cmd in COMMAND_TOOLS.items():
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
            versions[name] = out.splitlines()[0] if out else "unknown"
        except (OSError, subprocess.SubprocessError):
            pass
    return versions


def artifacts_for_model(model: str, dist: DistLayout) -> list[Artifact]:
    """Every artifact of ``model`` that exists in dist/, as each stage lays it out."""
    found = [
        Artifact(dist.frozen_pb(model), "frozen-pb", model),
        Artifact(dist.onnx(model), "onnx", model),
        Artifact(dist.golden_dir(model) / "index.json", "golden-set", model),
    ]
    for stage in ARTIFACT_STAGES:
        found += stage.artifacts(model, dist)
    return [a for a in found if a.path.is_file()]


def models_in_dist(dist: DistLayout) -> list[str]:
    return sorted(p.stem for p in dist.model_dir().glob("*.pb")) if dist.model_dir().is_dir() else []


def build_manifest(dist: DistLayout) -> dict:
    models, artifacts = {}, []
    for name in models_in_dist(dist):
        report_path = dist.model_report(name)
        facts = json.loads(report_path.read_text()) if report_path.is_file() else {}
        try:
            cfg_path = str(load_model_config(name).config_path.relative_to(REPO_ROOT))
        except Exception:
            cfg_path = None
        models[name] = {
            "config": cfg_path,
            "pb_sha256": sha256_file(dist.frozen_pb(name)),
            **{k: facts[k] for k in ("parameters",) if k in facts},
        }
        if dist.onnx(name).is_file():
            models[name]["onnx_sha256"] = sha256_file(dist.onnx(name))
            models[name]["macs"] = count_macs(dist.onnx(name))
        artifacts += [a.entry(dist) for a in artifacts_for_model(name, dist)]
    artifacts += [a.entry(dist) for a in guest.base_artifacts(dist) if a.path.is_file()]
    # Shared files (the wasm host) are listed once.
    artifacts = list({e["path"]: e for e in reversed(artifacts)}.values())
    artifacts.sort(key=lambda e: e["path"])
    return {
        "schema_version": SCHEMA_VERSION,
        "source_revision": source_revision(),
        "models": models,
        "tools": tool_versions(),
        "artifacts": artifacts,
    }


def write_manifest(dist: DistLayout) -> Path:
    manifest = build_manifest(dist)
    validate_manifest(manifest)
    write_atomic(dist.manifest, canonical_json(manifest))
    return dist.manifest


def validate_manifest(manifest: dict) -> None:
    import jsonschema

    jsonschema.validate(manifest, json.loads(SCHEMA_PATH.read_text()))

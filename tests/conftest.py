"""Shared fixtures: a session-wide dist/ in a temp dir, built once per model by the real stages."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from toolchain.core.catalog import DistLayout
from toolchain.core.config import DEFAULT_MODEL, load_model_config

TESTS = Path(__file__).resolve().parent
SMALL_MODEL = TESTS / "models" / "small_mobilenet_v2_0.35_128.toml"


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> DistLayout:
    return DistLayout(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def default_cfg():
    return load_model_config(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def small_cfg():
    return load_model_config(SMALL_MODEL)


def _prepared(cfg, dist):
    from toolchain.build.convert import convert_pb_to_onnx
    from toolchain.build.golden import make_goldens
    from toolchain.build.model import ensure_frozen_model

    ensure_frozen_model(cfg, dist)
    convert_pb_to_onnx(cfg, dist)
    make_goldens(cfg, dist)
    return cfg


@pytest.fixture(scope="session")
def default_model(default_cfg, dist):
    """The embedded default model taken through model → convert → golden."""
    return _prepared(default_cfg, dist)


@pytest.fixture(scope="session")
def small_model(small_cfg, dist):
    return _prepared(small_cfg, dist)


@pytest.fixture(scope="session")
def built(default_model, dist):
    """Every build stage of the default model (guest variants, wasm-opt, Wizer, .cwasm, the Rust host), as
    `invoke build` runs them; cargo's target dirs and the stages' stamps make repeats cheap."""
    from toolchain.pipeline import build_all

    build_all(default_model, dist)
    return default_model


@pytest.fixture(scope="module")
def guest_debug(built, dist, tmp_path_factory):
    """Run the native base guest with `--debug` on one image: ``run(image_bytes, **changes)`` attaches the default
    model's payload with those config fields replaced (``resize``, ``central_crop``, ``jpeg_decoder``, ...) and
    returns the answer (the decoded pixels and input tensor a preprocessing choice gives), building nothing."""
    from toolchain.build.payload import encode_payload, payload_header
    from toolchain.core.catalog import base_native_path

    onnx = dist.onnx(built.name).read_bytes()
    folder = tmp_path_factory.mktemp("payloads")

    def run(image: bytes, **changes) -> dict:
        payload = folder / ("-".join(f"{k}={v}" for k, v in sorted(changes.items())) + ".payload")
        if not payload.exists():
            cfg = dataclasses.replace(built, **changes)
            payload.write_bytes(encode_payload(payload_header(cfg, len(onnx)), onnx))
        proc = subprocess.run(
            [str(base_native_path("native", dist)), "--debug"],
            input=json.dumps({"image": base64.b64encode(image).decode()}).encode(),
            capture_output=True,
            timeout=120,
            env={**os.environ, "CLASSIFIER_PAYLOAD": str(payload)},
        )
        # an answer (a result or the error contract), never a panic
        assert proc.returncode in (0, 1) and not proc.stderr.strip().startswith(b"thread"), proc.stderr
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])

    return run


@pytest.fixture(scope="session")
def docker_api(tmp_path_factory):
    """A Docker Engine API on a socket this test session owns: podman's Docker-compatible service, with its own
    storage (so it shares no images with the podman CLI's), runc and cgroupfs as the CLI runs here. The Docker
    SDK path (toolchain/runtimes/containers.py) is tested against it for real."""
    from toolchain.core.programs import PODMAN, RUNC
    from toolchain.runtimes.containers import DockerEngine

    home = tmp_path_factory.mktemp("docker-api")
    socket = home / "docker.sock"
    command = [
        PODMAN.require(),
        f"--root={home / 'root'}",
        f"--runroot={home / 'run'}",
        "--storage-driver=vfs",
        f"--runtime={RUNC.require()}",
        "--cgroup-manager=cgroupfs",
        "system",
        "service",
        "--time=0",
        f"unix://{socket}",
    ]
    service = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    engine = DockerEngine(f"unix://{socket}")
    try:
        deadline = time.monotonic() + 60
        while engine.unavailable_reason() is not None:
            assert service.poll() is None, service.stderr.read().decode() if service.stderr else ""
            assert time.monotonic() < deadline, "podman system service did not answer within 60 s"
            time.sleep(0.2)
        yield engine
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
        # the service's vfs layers are root-owned copies; podman removes them cleanly
        subprocess.run(
            [
                PODMAN.path,
                f"--root={home / 'root'}",
                f"--runroot={home / 'run'}",
                "--storage-driver=vfs",
                "system",
                "reset",
                "--force",
            ],
            capture_output=True,
            timeout=300,
        )

"""Fast tests of the container engine choice (toolchain/runtimes/containers.py): which engine a machine gets, and
the clear error when the Docker Engine it names is not there. No image is loaded."""

from __future__ import annotations

import pytest

from toolchain.core.errors import InputError, StageError
from toolchain.runtimes.containers import DockerEngine, PodmanEngine, container_engine


@pytest.fixture
def no_socket(tmp_path):
    return tmp_path / "docker.sock"


@pytest.fixture
def socket(tmp_path):
    path = tmp_path / "docker.sock"
    path.touch()
    return path


def test_without_docker_the_images_run_under_podman(no_socket):
    assert container_engine({}, no_socket) == PodmanEngine()


def test_docker_host_selects_the_docker_sdk(no_socket):
    assert container_engine({"DOCKER_HOST": "tcp://10.0.0.5:2375"}, no_socket) == DockerEngine("tcp://10.0.0.5:2375")


def test_a_docker_socket_selects_the_docker_sdk(socket):
    assert container_engine({}, socket) == DockerEngine(f"unix://{socket}")


def test_the_engine_variable_overrides_the_choice(socket, no_socket):
    assert container_engine({"MIB_CONTAINER_ENGINE": "podman"}, socket) == PodmanEngine()
    assert container_engine({"MIB_CONTAINER_ENGINE": "docker", "DOCKER_HOST": "unix:///d.sock"}, no_socket).name == (
        "docker"
    )


def test_docker_asked_for_but_absent_is_a_clear_error(no_socket):
    with pytest.raises(InputError, match="no Docker Engine is configured"):
        container_engine({"MIB_CONTAINER_ENGINE": "docker"}, no_socket)
    with pytest.raises(InputError, match="use docker or podman"):
        container_engine({"MIB_CONTAINER_ENGINE": "containerd"}, no_socket)


def test_an_unreachable_docker_engine_is_named_with_the_way_out(no_socket, tmp_path):
    engine = DockerEngine(f"unix://{no_socket}")
    reason = engine.unavailable_reason()
    assert reason is not None and "cannot be reached" in reason and "MIB_CONTAINER_ENGINE=podman" in reason
    with pytest.raises(StageError, match="cannot be reached"):
        engine.run_server("sha256:0")
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"")
    with pytest.raises(StageError):
        engine.load(archive)

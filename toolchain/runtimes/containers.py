"""The container engine that loads and runs the action images: Docker Engine through its API (the ``docker`` SDK)
where a Docker daemon is there, else the podman CLI (daemonless, runc).

``container_engine()`` chooses: ``MIB_CONTAINER_ENGINE`` (``docker`` or ``podman``) if set; else Docker at
``DOCKER_HOST`` or ``/var/run/docker.sock`` if either is there; else podman. Both engines run an image the same
way (host network, ``ACTION_PORT``, nofile/nproc 1024, an optional memory limit), so the conformance tests, verify
and the benchmarks drive either. The tests run the Docker path against podman's Docker-compatible API service.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import docker
import docker.errors
from docker.types import Ulimit

from toolchain.core.errors import InputError, StageError
from toolchain.package.oci import archive_image_id
from toolchain.runtimes.actions import (
    ACTION_ULIMITS,
    ServerAction,
    StreamLog,
    action_container_name,
    free_port,
    image_exists,
    load_image,
    podman_available,
    remove_image,
)

DOCKER_SOCKET = Path("/var/run/docker.sock")
ENGINE_VARIABLE = "MIB_CONTAINER_ENGINE"


class ContainerEngine(Protocol):
    @property
    def name(self) -> str:
        """docker or podman"""
        ...

    def unavailable_reason(self) -> str | None:
        """None if images can be loaded and run, else why not (and how to fix it)."""
        ...

    def load(self, image_tar: Path) -> str:
        """Load a docker-archive; return the image ID (its config digest)."""
        ...

    def exists(self, image_id: str) -> bool: ...

    def remove(self, image_id: str) -> None: ...

    def run_server(self, image_id: str, port: int | None = None, memory_mb: int | None = None) -> ServerAction:
        """Start the image's action server on 127.0.0.1:``port`` (wait_ready() before talking to it)."""
        ...


@dataclass(frozen=True)
class PodmanEngine:
    """The podman CLI with runc and vfs storage: no daemon (toolchain/runtimes/actions.py)."""

    name: str = "podman"

    def unavailable_reason(self) -> str | None:
        return podman_available()

    def load(self, image_tar: Path) -> str:
        return load_image(image_tar)

    def exists(self, image_id: str) -> bool:
        return image_exists(image_id)

    def remove(self, image_id: str) -> None:
        remove_image(image_id)

    def run_server(self, image_id: str, port: int | None = None, memory_mb: int | None = None) -> ServerAction:
        return ServerAction.in_podman(image_id, port, memory_mb)


class _DockerContainer:
    """An action server container started through the Docker API (a ``ServerProcess``)."""

    def __init__(self, container):
        self.container = container
        self.stdout = StreamLog(self._log(stdout=True))
        self.stderr = StreamLog(self._log(stdout=False))

    def _log(self, stdout: bool) -> Iterator[bytes]:
        try:
            yield from self.container.logs(stream=True, follow=True, stdout=stdout, stderr=not stdout)
        except docker.errors.DockerException:
            return  # the container is gone: its log ends here

    def _state(self) -> dict:
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return {"Status": "removed", "ExitCode": -1, "Pid": 0}
        return self.container.attrs.get("State", {})

    def exit_code(self) -> int | None:
        state = self._state()
        return int(state.get("ExitCode", -1)) if state.get("Status") in ("exited", "dead", "removed") else None

    def pid(self) -> int:
        return int(self._state().get("Pid") or 0)

    def stop(self) -> None:
        try:
            self.container.remove(force=True)
        except docker.errors.NotFound:
            pass


@dataclass(frozen=True)
class DockerEngine:
    """Docker Engine (or anything speaking its API) at ``base_url``, through the ``docker`` SDK."""

    base_url: str
    name: str = "docker"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.base_url, timeout=600)

    def unavailable_reason(self) -> str | None:
        try:
            self.client().ping()
        except docker.errors.DockerException as exc:
            return (
                f"the Docker Engine at {self.base_url} cannot be reached ({exc}); start it, or set "
                f"{ENGINE_VARIABLE}=podman to use podman"
            )
        return None

    def _require(self) -> docker.DockerClient:
        why_not = self.unavailable_reason()
        if why_not:
            raise StageError(why_not)
        return self.client()

    def load(self, image_tar: Path) -> str:
        client = self._require()
        image_id = archive_image_id(image_tar)
        try:
            with image_tar.open("rb") as data:
                loaded = client.images.load(data)
        except docker.errors.DockerException as exc:
            raise StageError(f"docker load {image_tar} failed: {exc}") from exc
        if image_id not in {image.id for image in loaded}:
            raise StageError(f"docker load {image_tar} gave {[i.id for i in loaded]}, not the archive's {image_id}")
        return image_id

    def exists(self, image_id: str) -> bool:
        try:
            self.client().images.get(image_id)
        except docker.errors.ImageNotFound:
            return False
        return True

    def remove(self, image_id: str) -> None:
        try:
            self.client().images.remove(image_id, force=True)
        except docker.errors.ImageNotFound:
            pass

    def run_server(self, image_id: str, port: int | None = None, memory_mb: int | None = None) -> ServerAction:
        port = port or free_port()
        started = time.monotonic()
        options: dict = {
            "detach": True,
            "name": action_container_name(),
            "network_mode": "host",
            "environment": {"ACTION_PORT": str(port)},
            "ulimits": [Ulimit(name=name, soft=n, hard=n) for name, n in ACTION_ULIMITS.items()],
        }
        if memory_mb:
            options["mem_limit"] = f"{memory_mb}m"
        try:
            container = self._require().containers.run(image_id, **options)
        except docker.errors.DockerException as exc:
            raise StageError(f"docker run {image_id} failed: {exc}") from exc
        return ServerAction(_DockerContainer(container), port, started)


def container_engine(environ: Mapping[str, str] = os.environ, docker_socket: Path = DOCKER_SOCKET) -> ContainerEngine:
    """The engine this machine runs images with (module docstring)."""
    chosen = environ.get(ENGINE_VARIABLE, "")
    if chosen not in ("", "docker", "podman"):
        raise InputError(f"{ENGINE_VARIABLE}={chosen!r}: use docker or podman")
    docker_host = environ.get("DOCKER_HOST") or (f"unix://{docker_socket}" if docker_socket.exists() else "")
    if chosen == "podman" or (chosen == "" and not docker_host):
        return PodmanEngine()
    if not docker_host:
        raise InputError(
            f"{ENGINE_VARIABLE}=docker but no Docker Engine is configured",
            hint=f"set DOCKER_HOST, or start Docker so that {docker_socket} exists",
        )
    return DockerEngine(docker_host)

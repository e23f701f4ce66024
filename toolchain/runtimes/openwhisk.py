"""The packaged native OpenWhisk actions as runtimes: the actionloop exec (from its zip, over pipes) and the
action image (under the container engine, podman or Docker, over HTTP). Each is started once and answers
every request, as a warm
OpenWhisk container does; the request goes in as the activation's ``value``."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from toolchain.core.catalog import ENGINES, base_native_path, exec_zip_path, image_path, native_cli_path
from toolchain.package.oci import archive_image_id
from toolchain.runtimes.actions import ExecAction, ServerAction, envelope, extract_exec
from toolchain.runtimes.containers import ContainerEngine, container_engine
from toolchain.runtimes.guest_base import GuestRuntime


def activation_value(request: bytes, debug: bool):
    """The request as an activation value; bytes that are not JSON stay raw (the actions must refuse them)."""
    try:
        value = json.loads(request)
    except (ValueError, RecursionError):
        return None
    if debug and isinstance(value, dict):
        value = {**value, "debug": True}
    return value


class ActionloopExec(GuestRuntime):
    name = "actionloop-exec"
    description = "actionloop exec zip (tract, static), one process, a stdin line per activation"
    _action: ExecAction | None = None

    def artifact(self) -> Path:
        return exec_zip_path(self.cfg.name, self.dist)

    def built_from(self) -> list[Path]:
        return [base_native_path("native", self.dist), native_cli_path(self.cfg.name, self.dist)]

    def unavailable_reason(self):
        return None if self.artifact().is_file() else f"{self.artifact()} missing: run `invoke package`"

    def load(self) -> None:
        self._started()

    def _started(self) -> ExecAction:
        if self._action is None:
            self._tmp = tempfile.mkdtemp(prefix="mib-exec-")
            self._action = ExecAction(extract_exec(self.artifact(), Path(self._tmp)))
        return self._action

    def call(self, request: bytes, debug: bool = False) -> dict:
        action = self._started()
        value = activation_value(request, debug)
        if value is None:
            line = b'{"value": ' + request.replace(b"\n", b" ") + b"}"
            return action.activate_raw(line)
        return action.activate_raw(json.dumps(envelope(value)).encode())

    def close(self) -> None:
        if self._action is not None:
            self._action.close()
            self._action = None
            shutil.rmtree(self._tmp, ignore_errors=True)


class Container(GuestRuntime):
    name = "container"
    description = "action image under the container engine (podman with runc, or Docker), HTTP /init + /run"
    engine = "tract"
    _server: ServerAction | None = None
    _runner: ContainerEngine | None = None

    def artifact(self) -> Path:
        return image_path(self.cfg.name, self.dist, self.engine)

    def built_from(self) -> list[Path]:
        variant = ENGINES[self.engine].variant
        return [base_native_path(variant, self.dist), native_cli_path(self.cfg.name, self.dist, variant)]

    def unavailable_reason(self):
        if not self.artifact().is_file():
            return f"{self.artifact()} missing: run `invoke package`"
        return container_engine().unavailable_reason()

    def load(self) -> None:
        self._started()

    def _started(self) -> ServerAction:
        if self._server is None:
            # an image someone else loaded (a test, the user) stays; one loaded here is removed on close
            self._runner = runner = container_engine()
            self._loaded_here = not runner.exists(archive_image_id(self.artifact()))
            self._image_id = runner.load(self.artifact())
            self._server = runner.run_server(self._image_id)
            self._server.wait_ready()
            self._server.init()
        return self._server

    def call(self, request: bytes, debug: bool = False) -> dict:
        server = self._started()
        value = activation_value(request, debug)
        if value is None:
            return server.post("/run", b'{"value": ' + request + b"}").body
        return server.run(value).body

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
            if self._loaded_here and self._runner is not None:
                self._runner.remove(self._image_id)


class NativeOrtContainer(Container):
    """The same protocol and image layout with ONNX Runtime as the engine (#5's native target)."""

    name = "native-ort"
    description = (
        "action image with the ONNX Runtime engine (1 intra-op thread) under the container engine, HTTP /init + /run"
    )
    engine = "onnxruntime"

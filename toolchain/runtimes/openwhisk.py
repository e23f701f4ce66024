"""The packaged native OpenWhisk actions as runtimes: the actionloop exec (from its zip, over pipes) and the
action image (under podman, over HTTP). Each is started once and answers every request, as a warm
OpenWhisk container does; the request goes in as the activation's ``value``."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

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

    def _zip(self) -> Path:
        from toolchain.package.zips import exec_zip_path

        return exec_zip_path(self.cfg.name, self.dist)

    def unavailable_reason(self):
        return None if self._zip().is_file() else f"{self._zip()} missing: run `invoke package`"

    def load(self) -> None:
        if getattr(self, "_action", None) is None:
            from toolchain.runtimes.actions import ExecAction, extract_exec

            self._tmp = tempfile.mkdtemp(prefix="mib-exec-")
            self._action = ExecAction(extract_exec(self._zip(), Path(self._tmp)))

    def call(self, request: bytes, debug: bool = False) -> dict:
        from toolchain.runtimes.actions import envelope

        self.load()
        value = activation_value(request, debug)
        if value is None:
            line = b'{"value": ' + request.replace(b"\n", b" ") + b"}"
            return self._action.activate_raw(line)
        return self._action.activate_raw(json.dumps(envelope(value)).encode())

    def close(self) -> None:
        if getattr(self, "_action", None) is not None:
            self._action.close()
            self._action = None
            shutil.rmtree(self._tmp, ignore_errors=True)


class Container(GuestRuntime):
    name = "container"
    description = "action image under podman (runc), HTTP /init + /run"
    engine = "tract"

    def _image(self) -> Path:
        from toolchain.package.image import image_path

        return image_path(self.cfg.name, self.dist, self.engine)

    def unavailable_reason(self):
        from toolchain.runtimes.actions import podman_available

        if not self._image().is_file():
            return f"{self._image()} missing: run `invoke package`"
        return podman_available()

    def load(self) -> None:
        if getattr(self, "_server", None) is None:
            from toolchain.runtimes.actions import ServerAction, image_exists, load_image
            from toolchain.package.oci import archive_image_id

            # an image someone else loaded (a test, the user) stays; one loaded here is removed on close
            self._loaded_here = not image_exists(archive_image_id(self._image()))
            self._image_id = load_image(self._image())
            self._server = ServerAction.in_podman(self._image_id)
            self._server.wait_ready()
            self._server.init()

    def call(self, request: bytes, debug: bool = False) -> dict:
        self.load()
        value = activation_value(request, debug)
        if value is None:
            return self._server.post("/run", b'{"value": ' + request + b"}").body
        return self._server.run(value).body

    def close(self) -> None:
        if getattr(self, "_server", None) is not None:
            from toolchain.runtimes.actions import remove_image

            self._server.close()
            self._server = None
            if self._loaded_here:
                remove_image(self._image_id)


class NativeOrtContainer(Container):
    """The same protocol and image layout with ONNX Runtime as the engine (#5's native target)."""

    name = "native-ort"
    description = "action image with the ONNX Runtime engine (1 intra-op thread) under podman, HTTP /init + /run"
    engine = "onnxruntime"

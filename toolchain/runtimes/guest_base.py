"""Runtimes that run the guest classifier itself: they speak the request/result/error contracts.

``infer`` sends a tensor request and ``classify`` an image request; with ``--debug`` the guest adds the
full probability vector, the decoded pixels and its input tensor, so parity can be checked per phase.
"""

from __future__ import annotations

import base64
import json

import numpy as np

from toolchain.core.errors import StageError
from toolchain.runtimes.base import Runtime


def image_request(image_bytes: bytes) -> bytes:
    return json.dumps({"image": base64.b64encode(image_bytes).decode()}).encode()


def tensor_request(tensor: np.ndarray) -> bytes:
    t = np.ascontiguousarray(tensor, dtype="<f4")
    return json.dumps(
        {"tensor": {"shape": list(t.shape), "f32le_b64": base64.b64encode(t.tobytes()).decode()}}
    ).encode()


def debug_probabilities(result: dict) -> np.ndarray:
    return np.asarray(result["debug"]["probabilities"], dtype=np.float32)


def debug_decoded(result: dict) -> np.ndarray:
    h, w, c = result["debug"]["decoded_shape"]
    return np.frombuffer(base64.b64decode(result["debug"]["decoded_rgb8_b64"]), dtype=np.uint8).reshape(h, w, c)


def debug_tensor(result: dict, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(result["debug"]["tensor_f32le_b64"]), dtype="<f4").reshape(shape)


def last_json_line(stderr: bytes, marker: str, flag: str) -> dict:
    """The last JSON object on the guest's stderr whose line contains `marker`: what `classify <flag> N` reports."""
    for line in reversed(stderr.decode("utf-8", "replace").splitlines()):
        if line.startswith("{") and marker in line:
            return json.loads(line)
    raise RuntimeError(f"no {flag} line in the guest's stderr: {stderr[-300:]!r}")


def profile_record(stderr: bytes) -> dict:
    """The guest's `classify --profile N` line on its stderr: "op_ms" ([op, ms per inference] rows, largest
    first), "matmul_kernels", "depthwise_kernel" and "clip_kernels" (what tract runs: its own kernels or the
    guest's)."""
    return last_json_line(stderr, '"op_ms"', "--profile")


class GuestRuntime(Runtime):
    """Subclasses implement ``call(request, debug) -> dict`` (the guest's JSON answer, result or error)."""

    def call(self, request: bytes, debug: bool = False) -> dict:
        raise NotImplementedError

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        result = self.call(tensor_request(tensor), debug=True)
        if "error" in result:
            raise StageError(f"{self.name}: the guest refused a golden tensor: {result['error']}")
        return debug_probabilities(result)

    def classify(self, image_bytes: bytes) -> dict:
        return self.call(image_request(image_bytes))

    def classify_debug(self, image_bytes: bytes) -> dict:
        return self.call(image_request(image_bytes), debug=True)

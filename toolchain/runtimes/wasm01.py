"""The OpenWhisk wasm:0.1 artifact: the wasmtime-0.23 `.cwasm` driven through that executor's ABI call
sequence, in a venv holding exactly wasmtime 0.23.0 (a long-lived worker process, one line per request)."""

from __future__ import annotations

import base64
import json
import subprocess

from toolchain.runtimes.guest_base import GuestRuntime
from toolchain.runtimes.native_cli import parse_cli_answer
from toolchain.runtimes.wasm import CwasmArtifact


class Wasm01Aot(CwasmArtifact, GuestRuntime):
    name = "wasm01-aot"
    description = "wasm:0.1 ABI, non-SIMD .cwasm under wasmtime 0.23.0"
    target = "wasmtime-0.23"

    def unavailable_reason(self):
        path = self._artifact()
        return None if path.is_file() else f"{path} missing: run `invoke build`"

    def load(self) -> None:
        if getattr(self, "_proc", None) is None:
            from toolchain.build.aot import WORKER
            from toolchain.build.venvs import runtime_python

            target = self._target()
            self._proc = subprocess.Popen(
                [str(runtime_python(target.name)), str(WORKER), "serve", str(self._artifact()), *target.worker_args()],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def _job(self, mode: str, request: bytes) -> dict:
        self.load()
        job = {"mode": mode, "request_b64": base64.b64encode(request).decode()}
        self._proc.stdin.write(json.dumps(job).encode() + b"\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            self.close()
            return {"host_error": "the wasmtime 0.23 worker exited"}
        return json.loads(line)

    def call_abi(self, params: bytes) -> dict:
        """The raw ABI answer: {"Ok": result}, {"Err": error}, or {"host_error": …} if the guest trapped."""
        answer = self._job("abi", params)
        return answer.get("abi", answer)

    def call(self, request: bytes, debug: bool = False) -> dict:
        if debug:
            # The ABI has no flags, so the full vector comes from the same .cwasm run as a WASI command.
            answer = self._job("cli", request)
            if "host_error" in answer:
                return {"error": f"{self.name}: {answer['host_error']}"}
            return parse_cli_answer(answer["exit"], answer["stdout"].encode(), b"", self.name)
        answer = self.call_abi(request)
        if "Ok" in answer:
            return answer["Ok"]
        if "Err" in answer:
            return answer["Err"]
        return {"error": f"{self.name}: {answer.get('host_error', answer)}"}

    def close(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None:
            proc.stdin.close()
            proc.wait(timeout=30)
            self._proc = None

"""The OpenWhisk wasm:0.1 artifact: the wasmtime-0.23 `.cwasm` of the no-SIMD snapshot (model loaded at build
time) driven through that executor's ABI call sequence, in a venv holding exactly wasmtime 0.23.0 (a long-lived
worker process, one line per request)."""

from __future__ import annotations

import base64
import json
import subprocess

from toolchain.build.aot import WORKER
from toolchain.build.venvs import runtime_python
from toolchain.core.catalog import WASM01_TARGET
from toolchain.core.isa import SCALAR
from toolchain.runtimes.guest_base import GuestRuntime, profile_record
from toolchain.runtimes.native_cli import parse_cli_answer
from toolchain.runtimes.wasm import CwasmArtifact


class Wasm01Aot(CwasmArtifact, GuestRuntime):
    name = "wasm01-aot"
    description = "wasm:0.1 ABI, non-SIMD .cwasm under wasmtime 0.23.0, an instance per activation"
    instruction_set = SCALAR
    target = WASM01_TARGET  # the .cwasm the wasm:0.1 zip carries (catalog.wasm01_cwasm_path)
    preinitialised = True  # its snapshot: the model is loaded before the first activation
    _proc: subprocess.Popen[bytes] | None = None

    def load(self) -> None:
        if self._proc is None:
            target = self.aot_target_spec()
            self._proc = subprocess.Popen(
                [str(runtime_python(target.name)), str(WORKER), "serve", str(self.artifact()), *target.worker_args()],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )

    def job(self, mode: str, request: bytes, **fields) -> dict:
        """One job for the wasmtime 0.23 worker: mode "abi" (the executor's call sequence), "cli" or "profile"."""
        self.load()
        job = {"mode": mode, "request_b64": base64.b64encode(request).decode(), **fields}
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None  # load() started it
        proc.stdin.write(json.dumps(job).encode() + b"\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            self.close()
            return {"host_error": "the wasmtime 0.23 worker exited"}
        return json.loads(line)

    def process_id(self) -> int:
        """The worker process (started if needed): its peak memory is this runtime's."""
        self.load()
        assert self._proc is not None
        return self._proc.pid

    def call_abi(self, params: bytes) -> dict:
        """The raw ABI answer: {"Ok": result}, {"Err": error}, or {"host_error": …} if the guest trapped."""
        answer = self.job("abi", params)
        return answer.get("abi", answer)

    def call(self, request: bytes, debug: bool = False) -> dict:
        if debug:
            # The ABI has no flags, so the full vector comes from the same .cwasm run as a WASI command.
            answer = self.job("cli", request)
            if "host_error" in answer:
                return {"error": f"{self.name}: {answer['host_error']}"}
            return parse_cli_answer(answer["exit"], answer["stdout"].encode(), b"", self.name)
        answer = self.call_abi(request)
        if "Ok" in answer:
            return answer["Ok"]
        if "Err" in answer:
            return answer["Err"]
        return {"error": f"{self.name}: {answer.get('host_error', answer)}"}

    def op_profile(self, request: bytes, runs: int) -> dict:
        """The guest's `classify --profile N` record (see guest_base.profile_record) from the same .cwasm in
        wasmtime 0.23, run as a WASI command in a fresh instance."""
        answer = self.job("profile", request, runs=runs)
        if answer.get("exit") != 0:
            raise RuntimeError(f"{self.name}: --profile failed: {answer}")
        return profile_record(answer["stderr"].encode())

    def close(self) -> None:
        proc = self._proc
        if proc is not None:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)
            self._proc = None

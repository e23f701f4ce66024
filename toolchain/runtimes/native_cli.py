"""The guest's native CLI: one process per request, as the seed's `mobilenet-oc-l` was used."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from toolchain.core.catalog import base_native_path, native_cli_path
from toolchain.runtimes.guest_base import GuestRuntime


class NativeCli(GuestRuntime):
    name = "native-tract"
    description = "guest native CLI (tract), a process per request"
    timeout_s = 120

    def artifact(self) -> Path:
        return native_cli_path(self.cfg.name, self.dist)

    def built_from(self) -> list[Path]:
        return [base_native_path("native", self.dist), self.artifact()]

    def unavailable_reason(self):
        return None if self.artifact().is_file() else f"{self.artifact()} missing: run `invoke build`"

    def call(self, request: bytes, debug: bool = False) -> dict:
        args = [str(self.artifact())] + (["--debug"] if debug else [])
        proc = subprocess.run(args, input=request, capture_output=True, timeout=self.timeout_s, env={})
        return parse_cli_answer(proc.returncode, proc.stdout, proc.stderr, self.name)


def parse_cli_answer(returncode: int, stdout: bytes, stderr: bytes, who: str) -> dict:
    """The CLI contract: exit 0 + result, or exit 1 + error JSON; anything else is reported as an error."""
    try:
        answer = json.loads(stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError, UnicodeDecodeError):
        return {
            "error": f"{who} broke the contract: exit {returncode}, stdout {stdout[:200]!r}, stderr {stderr[-300:]!r}"
        }
    if (returncode == 0) != ("error" not in answer):
        return {"error": f"{who} broke the contract: exit {returncode} with {str(answer)[:200]}"}
    return answer

"""Run the packaged OpenWhisk actions on this machine, speaking their real protocols.

* ``ExecAction``: the actionloop ``exec`` as OpenWhisk's Go proxy runs it: no arguments, no PATH or HOME,
  ``__OW_WAIT_FOR_ACK`` set, one activation per stdin line, one answer per line on fd 3.
* ``ServerAction``: the action server speaking the action-container HTTP protocol, either the bare binary
  (``classify serve``) or the image loaded and run by podman (runc, no daemon).

Both capture stdout and stderr separately, so callers can check the activation sentinels on each stream.
Used by the conformance tests, ``invoke verify`` and ``invoke bench``.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from toolchain.core import log
from toolchain.core.errors import StageError
from toolchain.core.programs import PODMAN, RUNC
from toolchain.package.oci import archive_image_id
from toolchain.package.zips import ActionloopImage

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
PODMAN_GLOBAL = [PODMAN.path, "--storage-driver=vfs"]
# The limits the action images run with, under either engine (toolchain/runtimes/containers.py): podman's default
# ulimits fail here.
ACTION_ULIMITS = {"nofile": 1024, "nproc": 1024}
# What works here without a daemon or cgroup v2 delegation: crun fails on hybrid cgroups (runc is a global option).
PODMAN_RUN = [
    "--cgroup-manager=cgroupfs",
    *(flag for name, n in ACTION_ULIMITS.items() for flag in ("--ulimit", f"{name}={n}:{n}")),
]


def action_container_name() -> str:
    """A fresh name for an action server's container (removed with it)."""
    return f"mib-action-{uuid.uuid4().hex[:12]}"


def envelope(value, **fields) -> dict:
    """An activation as the invoker sends it (deadline in epoch milliseconds, as a string)."""
    base = {
        "namespace": "guest",
        "action_name": "mobilenet",
        "action_version": "0.0.1",
        "activation_id": uuid.uuid4().hex,
        "transaction_id": uuid.uuid4().hex,
        "deadline": str(int(time.time() * 1000) + 60_000),
    }
    return {"value": value, **base, **fields}


class StreamLog:
    """Collects a child's stream (a pipe, or any iterable of byte chunks such as a container's log stream) line by
    line in a thread."""

    def __init__(self, stream: Iterable[bytes]):
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Iterable[bytes]):
        pending = b""
        for chunk in stream:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            with self._lock:
                self.lines.extend(line.decode("utf-8", "replace") for line in complete)
        if pending:
            with self._lock:
                self.lines.append(pending.decode("utf-8", "replace"))

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def wait_for(self, count: int, line: str = SENTINEL, timeout: float = 10.0) -> list[str]:
        """Wait until ``line`` has appeared ``count`` times; return the lines so far."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.snapshot()
            if lines.count(line) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)


# ---------------------------------------------------------------------------------------------------------
# actionloop exec
# ---------------------------------------------------------------------------------------------------------


def extract_exec(zip_path: Path, into: Path) -> Path:
    """Unpack the zip's top-level ``exec`` as the proxy does (it chmods 0755 itself; we check the zip did)."""
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo("exec")
        mode = (info.external_attr >> 16) & 0o777
        if mode != 0o755:
            raise StageError(f"{zip_path}: exec has mode {oct(mode)}, expected 0o755")
        into.mkdir(parents=True, exist_ok=True)
        path = into / "exec"
        path.write_bytes(zf.read(info))
        path.chmod(0o755)
    return path


def init_like_actionloop_proxy(zip_bytes: bytes, workdir: Path, image: ActionloopImage) -> ExecAction:
    """Replay what the Go actionloop proxy of ``image`` does at /init with a binary zip (openwhisk-runtime-go
    1.25: initHandler.go, extractor.go, actionProxy.go): unzip into action/1/src; an executable ``exec`` is
    moved to action/1/bin as it is (no compiler runs); where the image sets OW_EXECUTION_ENV, bin/exec.env must
    hold exactly that line, else /init answers 502; then bin/exec starts with the proxy's environment
    (``__OW_EXECUTION_ENV``, ``__OW_WAIT_FOR_ACK``) and, where the image waits for it, the ack."""
    src = workdir / "action" / "1" / "src"
    src.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        zf.extractall(src)
    exe = src / "exec"
    if not exe.is_file() or exe.read_bytes()[:4] != b"\x7fELF":
        raise StageError(f"{image.deploy}: the zip has no executable exec, so the proxy would try to compile it")
    bin_dir = src.parent / "bin"
    src.rename(bin_dir)
    env = {}
    if image.execution_env:
        env_file = bin_dir / "exec.env"
        found = env_file.read_text().strip() if env_file.is_file() else None
        if found != image.execution_env:
            raise StageError(
                f"{image.deploy}: /init would answer 502 (Cannot start action): exec.env is "
                f"{found!r}, the image requires {image.execution_env!r}"
            )
        env["__OW_EXECUTION_ENV"] = image.execution_env
    (bin_dir / "exec").chmod(0o755)
    return ExecAction(bin_dir / "exec", env=env, ack=image.wait_for_ack)


class ExecAction:
    """One actionloop process: started once, then one activation per line."""

    def __init__(self, exec_path: Path, env: dict[str, str] | None = None, ack: bool = True):
        r, w = os.pipe()
        child_env = {"__OW_WAIT_FOR_ACK": "1"} if ack else {}
        child_env.update(env or {})
        # The proxy hands the result pipe over as fd 3; a shell redirect does that without preexec hooks
        # (bash: dash cannot redirect from descriptors above 9).
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", f'exec "$0" 3>&{w}', str(exec_path)],
            env=child_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(w,),
        )
        os.close(w)
        self.results = os.fdopen(r, "rb")
        assert self.proc.stdout is not None and self.proc.stderr is not None  # started with PIPEs
        self.stdout, self.stderr = StreamLog(self.proc.stdout), StreamLog(self.proc.stderr)
        self.ack = None
        if ack:
            line = self.results.readline()
            if not line:
                code = self.proc.wait(timeout=30)
                time.sleep(0.1)  # let the stderr pump catch up
                raise StageError(
                    f"the exec exited with {code} before its ack: {' '.join(self.stderr.snapshot())[-1500:]}"
                )
            self.ack = json.loads(line)

    def activate_raw(self, line: bytes) -> dict:
        assert self.proc.stdin is not None  # started with stdin=PIPE
        self.proc.stdin.write(line.rstrip(b"\n") + b"\n")
        self.proc.stdin.flush()
        answer = self.results.readline()
        if not answer:
            raise StageError(
                f"the exec exited (status {self.proc.wait(timeout=10)}) instead of answering", hint="see its stderr"
            )
        return json.loads(answer)

    def activate(self, value, **fields) -> dict:
        return self.activate_raw(json.dumps(envelope(value, **fields)).encode())

    def close(self) -> int:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.results.close()
        return code


# ---------------------------------------------------------------------------------------------------------
# action server: bare or in its image
# ---------------------------------------------------------------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int | None:
    """A kB field of /proc/PID/status (None once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def vm_hwm_kib(pid: int) -> int | None:
    """Peak RSS of a live process (VmHWM; unlike ru_maxrss it starts afresh at execve)."""
    return proc_status_kib(pid, "VmHWM")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class HttpAnswer:
    status: int
    body: dict


def podman_available() -> str | None:
    """None if podman + runc can run images here, else why not."""
    for tool in (PODMAN, RUNC):
        if not tool.present():
            return f"{tool.name} is not installed (bootstrap.sh installs it from requirements-debian.txt)"
    return None


def image_exists(image_id: str) -> bool:
    return (
        subprocess.run([*PODMAN_GLOBAL, "image", "exists", image_id], capture_output=True, timeout=120).returncode == 0
    )


def load_image(image_tar: Path) -> str:
    """``podman load`` the docker-archive; return the image ID from the archive (the config digest)."""

    image_id = archive_image_id(image_tar)
    with log.step(f"podman load {image_tar.name}"):
        proc = subprocess.run(
            [*PODMAN_GLOBAL, "load", "-i", str(image_tar)], capture_output=True, text=True, timeout=600
        )
    if proc.returncode != 0:
        raise StageError(f"podman load {image_tar} failed: {proc.stderr.strip()[-2000:]}")
    return image_id


def remove_image(image_id: str) -> None:
    subprocess.run([*PODMAN_GLOBAL, "rmi", "-f", image_id], capture_output=True, timeout=300)


class ServerProcess(Protocol):
    """What runs an action server: a child process here, or a container an engine started."""

    stdout: StreamLog
    stderr: StreamLog

    def exit_code(self) -> int | None:
        """None while it runs."""
        ...

    def pid(self) -> int:
        """The server's PID as seen from here."""
        ...

    def stop(self) -> None: ...


class ChildProcess:
    """A server started here: the bare binary, or ``podman run`` (then ``container`` names it)."""

    def __init__(self, argv: list[str], env: dict | None = None, container: str | None = None):
        self.container = container
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None  # started with PIPEs
        self.stdout, self.stderr = StreamLog(self.proc.stdout), StreamLog(self.proc.stderr)

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def pid(self) -> int:
        if not self.container:
            return self.proc.pid
        out = subprocess.run(
            [*PODMAN_GLOBAL, "inspect", "--format", "{{.State.Pid}}", self.container],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return int(out.stdout.strip() or 0)

    def stop(self) -> None:
        if self.container:
            subprocess.run([*PODMAN_GLOBAL, "rm", "-f", "-t", "0", self.container], capture_output=True, timeout=120)
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ServerAction:
    """The action server on 127.0.0.1:<port>: a bare process, a podman container, or a container any engine runs
    (``toolchain/runtimes/containers.py``)."""

    def __init__(self, process: ServerProcess, port: int, started: float):
        self.process, self.port, self.started = process, port, started
        self.stdout, self.stderr = process.stdout, process.stderr
        self._local = threading.local()

    @classmethod
    def bare(cls, binary: Path, port: int | None = None) -> ServerAction:
        port = port or free_port()
        started = time.monotonic()
        return cls(ChildProcess([str(binary), "serve"], env={"ACTION_PORT": str(port)}), port, started)

    @classmethod
    def in_podman(cls, image_id: str, port: int | None = None, memory_mb: int | None = None) -> ServerAction:
        port = port or free_port()
        name = action_container_name()
        argv = [
            *PODMAN_GLOBAL,
            "--runtime",
            RUNC.path,
            "run",
            "--rm",
            "--name",
            name,
            *PODMAN_RUN,
            "--network=host",
            "-e",
            f"ACTION_PORT={port}",
        ]
        if memory_mb:
            argv += ["--memory", f"{memory_mb}m"]
        started = time.monotonic()
        return cls(ChildProcess(argv + [image_id], container=name), port, started)

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Wait until the port accepts connections; return seconds since start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.exit_code()
            if code is not None:
                raise StageError(f"the action server exited with {code}: {' '.join(self.stderr.snapshot())[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return time.monotonic() - self.started
            except OSError:
                time.sleep(0.02)
        raise StageError(f"the action server did not listen on port {self.port} within {timeout:.0f} s")

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return conn

    def post(self, path: str, body: bytes | dict) -> HttpAnswer:
        """POST on this thread's keep-alive connection (reconnecting once if the server closed it)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    self._local.conn = None
                return HttpAnswer(resp.status, json.loads(raw) if raw else {})
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def init(self) -> HttpAnswer:
        return self.post("/init", {"value": {"name": "mobilenet", "main": "main", "code": "", "binary": False}})

    def run(self, value, **fields) -> HttpAnswer:
        return self.post("/run", envelope(value, **fields))

    def server_pid(self) -> int:
        """The server's PID as seen from here (bare: the child; in a container: the container's PID 1)."""
        return self.process.pid()

    def peak_rss_kib(self) -> int | None:
        return vm_hwm_kib(self.server_pid())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self.process.stop()

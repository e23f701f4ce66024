"""One probe per runtime: how to take warm samples, a cold start, throughput and peak memory.

Warm latency is measured where the runtime lives, so no host overhead is charged to it: the native and
wasm guests time themselves (`classify --bench N`, also inside one wasm instance), Python runtimes are
timed around `classify`, the packaged actions around their protocol round trip (HTTP, pipes). Cold is
always "new process (or container) → first result", with the phases the runtime can report.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from toolchain.build.aot import WORKER
from toolchain.build.host import host_command
from toolchain.build.venvs import runtime_python
from toolchain.core.catalog import DistLayout, aot_target, host_path, wasm01_zip_path
from toolchain.core.config import ModelConfig
from toolchain.measure.bench.stats import run_measured
from toolchain.runtimes import make_runtime, runtime_names
from toolchain.runtimes.actions import ExecAction, extract_exec, vm_hwm_kib
from toolchain.runtimes.base import Runtime
from toolchain.runtimes.containers import container_engine
from toolchain.runtimes.guest_base import image_request, last_json_line, profile_record
from toolchain.runtimes.native_cli import NativeCli
from toolchain.runtimes.onnxruntime import OnnxRuntime1T, OnnxRuntimeDefault
from toolchain.runtimes.openwhisk import ActionloopExec, Container, NativeOrtContainer
from toolchain.runtimes.tf import TensorFlowRuntime
from toolchain.runtimes.tract_py import TractPython
from toolchain.runtimes.wasm import WasmAot, WasmJit, WasmPreinitAot, WasmWasinn
from toolchain.runtimes.wasm01 import Wasm01Aot


def guest_bench_line(stderr: bytes) -> dict:
    return last_json_line(stderr, "median_ms", "--bench")


def guest_profile_line(stderr: bytes) -> dict[str, float]:
    """The guest's `--profile N` line: each op kind's ms per inference."""
    return {op: ms for op, ms in profile_record(stderr)["op_ms"]}


def guest_profile_kernels(stderr: bytes) -> list[str]:
    """The matmul kernels the guest's plan runs, from its `--profile N` line (tract's, or the guest's own)."""
    return list(profile_record(stderr).get("matmul_kernels", []))


def guest_bench_in_instance(engine, module, request: bytes, runs: int, mode: str = "--bench") -> dict:
    """The guest's own `classify --bench N` (or `--profile N`) inside one wasm instance: load time and
    per-request samples (or the per-op profile, under "op_ms")."""
    import wasmtime

    with tempfile.TemporaryDirectory() as tmp:
        stdin, stdout, stderr = (str(Path(tmp, n)) for n in ("in", "out", "err"))
        Path(stdin).write_bytes(request)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["classify", mode, str(runs)]
        wasi.stdin_file, wasi.stdout_file, wasi.stderr_file = stdin, stdout, stderr
        store = wasmtime.Store(engine)
        store.set_wasi(wasi)
        store.set_epoch_deadline(1 << 40)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        instance = linker.instantiate(store, module)
        exports = instance.exports(store)
        start, memory = exports["_start"], exports["memory"]
        assert isinstance(start, wasmtime.Func) and isinstance(memory, wasmtime.Memory)
        try:
            start(store)
        except wasmtime.ExitTrap:
            pass
        err = Path(stderr).read_bytes()
        if mode == "--profile":
            return {"op_ms": guest_profile_line(err)}
        line = guest_bench_line(err)
        line["memory_bytes"] = memory.data_len(store)
        return line


def worker_cold_start(target_name: str, module: Path, request: bytes) -> tuple[float, dict, int]:
    """A new Python wasmtime worker for ``target_name``, one wasm:0.1-ABI job, exit: (ms, answer, peak RSS KiB)."""

    target = aot_target(target_name)
    job = json.dumps({"mode": "abi", "request_b64": base64.b64encode(request).decode()}).encode() + b"\n"
    argv = [str(runtime_python(target.name)), str(WORKER), "serve", str(module), *target.worker_args()]
    ms, code, out, err, rss = run_measured(argv, job)
    return ms, json.loads(out.splitlines()[-1]), rss


def run_in_host(argv: list[str], request: bytes, who: str, what: str) -> tuple[float, bytes, int]:
    """One Rust wasm-host process that must succeed: (ms, its stderr, where the guest's --bench/--profile line
    and the host's phases are, peak RSS KiB)."""
    ms, code, out, err, rss = run_measured(argv, request)
    if code != 0:
        raise RuntimeError(f"{who}: wasm-host {what} failed: {out[-300:]!r} {err[-300:]!r}")
    return ms, err, rss


def host_cold_start(argv: list[str], request: bytes, who: str) -> tuple[float, dict, int]:
    """A new Rust wasm-host process (`run … --phases`) → first result: (ms, the host's phases, peak RSS KiB)."""
    ms, err, rss = run_in_host(argv, request, who, "cold run")
    phases = next(
        json.loads(line)["host_phases_ms"]
        for line in reversed(err.decode().splitlines())
        if line.startswith('{"host_phases_ms"')
    )
    return ms, phases, rss


def bench_rps(bench, workers: int, n: int) -> float:
    """Requests per second of ``workers`` concurrent `--bench n` processes (``bench(n)`` → the guest's line)."""
    with ThreadPoolExecutor(workers) as pool:
        lines = list(pool.map(lambda _: bench(n), range(workers)))
    return sum(1000 * len(x["samples_ms"]) / sum(x["samples_ms"]) for x in lines)


def parallel_rps(calls: list, n: int) -> float:
    """Requests per second with each of ``calls`` (one per worker) made ``n`` times concurrently."""
    with ThreadPoolExecutor(len(calls)) as pool:
        t = time.perf_counter()
        list(pool.map(lambda call: [call() for _ in range(n)], calls))
        return len(calls) * n / (time.perf_counter() - t)


class Probe:
    """How the bench measures one runtime; ``self.rt`` is its adapter (not loaded until a probe needs it)."""

    cold_is = "new process → first result"

    def __init__(self, runtime: str, cfg: ModelConfig, dist: DistLayout, image: bytes, image_path: Path):
        self.name = runtime
        self.cfg, self.dist, self.image, self.image_path = cfg, dist, image, image_path
        self.rt = make_runtime(runtime, cfg, dist)
        self.request = image_request(image)
        self.peak_rss_kib = 0
        self.extra: dict = {}

    def _rss(self, kib: int | None) -> None:
        if kib:
            self.peak_rss_kib = max(self.peak_rss_kib, kib)

    def artifact(self) -> Path | None:
        return self.rt.artifact()

    @staticmethod
    def time_calls(n: int, call) -> list[float]:
        """Milliseconds of each of ``n`` calls."""
        out = []
        for _ in range(n):
            t = time.perf_counter()
            call()
            out.append((time.perf_counter() - t) * 1e3)
        return out

    def warm(self, n: int) -> list[float]:
        raise NotImplementedError

    def cold(self) -> tuple[float, dict]:
        """(ms, phases in ms)."""
        raise NotImplementedError

    def throughput(self, workers: int, n: int) -> float | None:
        return None

    def op_profile(self, request: bytes, runs: int) -> dict[str, float] | None:
        """Each tract op kind's ms per inference of ``request`` where the runtime runs it (the guests' own
        `--profile N`); None for runtimes that are not a tract guest."""
        return None

    def close(self) -> None:
        pass


class PythonProbe(Probe):
    """TF, ONNX Runtime, tract's Python bindings: the reference preprocessing then the engine, in Python."""

    def __init__(self, *args):
        super().__init__(*args)
        self.rt.classify(self.image)  # load + warm-up

    def warm(self, n):
        return self.time_calls(n, lambda: self.rt.classify(self.image))

    def cold(self):
        argv = [
            sys.executable,
            "-m",
            "toolchain.measure.bench.cold",
            self.name,
            str(self.cfg.config_path),
            str(self.dist.root),
            str(self.image_path),
        ]
        ms, code, out, err, rss = run_measured(argv, env=None)
        if code != 0:
            raise RuntimeError(f"cold {self.name} failed: {err[-500:]!r}")
        self._rss(rss)
        return ms, json.loads(out.splitlines()[-1])["phases_ms"]

    def throughput(self, workers, n):
        if workers != 1:
            return None  # one interpreter; a second worker would be a second process with its own model
        samples = self.warm(n)
        return 1000 * len(samples) / sum(samples)

    def close(self):
        self.rt.close()


class NativeProbe(Probe):
    """The native CLI: it times itself (`classify --bench N`), one process per cold start."""

    def bench(self, n):
        ms, code, out, err, rss = run_measured([str(self.artifact()), "--bench", str(n)], self.request, env={})
        self._rss(rss)
        return guest_bench_line(err)

    def warm(self, n):
        line = self.bench(n)
        self.extra["load_ms"] = line["load_ms"]
        return line["samples_ms"]

    def cold(self):
        ms, code, out, err, rss = run_measured([str(self.artifact())], self.request, env={})
        if code != 0:
            raise RuntimeError(f"native cold run failed: {out[-300:]!r}")
        self._rss(rss)
        return ms, {}

    def throughput(self, workers, n):
        return bench_rps(self.bench, workers, n)

    def op_profile(self, request, runs):
        ms, code, out, err, rss = run_measured([str(self.artifact()), "--profile", str(runs)], request, env={})
        if code != 0:
            raise RuntimeError(f"{self.name} --profile failed: {out[-300:]!r}")
        return guest_profile_line(err)


class WasmProbe(Probe):
    """The SIMD guest in wasmtime 50, in the Rust host (`dist/hosts/wasm-host`, the wasmtime crate) as an executor
    embedding wasmtime runs it: warm inside one instance (the guest's own `--bench N`), fresh instances, cold
    starts; its modules carry no epoch checks (the host's watchdog bounds them). Without the host: warm inside one
    instance in wasmtime-py (with epoch checks), cold starts in a Python worker. Throughput: wasmtime-py threads."""

    rt: WasmJit

    def __init__(self, *args):
        super().__init__(*args)
        self.rt.load()
        self.host = host_path(self.dist) if host_path(self.dist).is_file() else None
        self.cold_is = (
            "new wasm-host process (Rust, wasmtime 50) → first result"
            if self.host
            else "new host process (Python + wasmtime-py 50) → first result"
        )

    def artifact(self) -> Path:
        return self.rt.host_artifact() if self.host else self.rt.artifact()

    def _host_argv(self, mode: str, *args: str) -> list[str]:
        return host_command(self.dist, mode, self.artifact(), *args, baseline=self.name != WasmJit.name)

    def warm(self, n):
        if self.host:
            argv = [*self._host_argv("run", "--timeout-s", "600"), "--", "--bench", str(n)]
            line = guest_bench_line(run_in_host(argv, self.request, self.name, "warm run")[1])
            self.extra["warm_is"] = "one instance in the Rust wasm-host (no epoch checks: a watchdog bounds it)"
        else:
            line = guest_bench_in_instance(self.rt.engine, self.rt.module, self.request, n)
            self.extra["guest_memory_mb"] = round(line["memory_bytes"] / 2**20, 1)
            self.extra["warm_is"] = "one instance in wasmtime-py (epoch checks)"
        self.extra["load_ms"] = line["load_ms"]
        return line["samples_ms"]

    def op_profile(self, request, runs):
        if not self.host:
            return guest_bench_in_instance(self.rt.engine, self.rt.module, request, runs, "--profile")["op_ms"]
        argv = [*self._host_argv("run", "--timeout-s", "600"), "--", "--profile", str(runs)]
        return guest_profile_line(run_in_host(argv, request, self.name, "--profile")[1])

    def instance(self) -> float:
        """A fresh instance from the loaded module → result (what a warm executor pays per activation)."""
        if self.host:
            ms, code, out, err, rss = run_measured(self._host_argv("bench", "1"), self.request)
            if code != 0:
                raise RuntimeError(f"{self.name}: wasm-host bench failed: {out[-300:]!r} {err[-300:]!r}")
            return json.loads(out.splitlines()[-1])["instance_ms"][0]
        t = time.perf_counter()
        self.rt.call(self.request)
        return (time.perf_counter() - t) * 1e3

    def cold(self):
        if self.host:
            ms, phases, rss = host_cold_start([*self._host_argv("run"), "--phases"], self.request, self.name)
            self._rss(rss)
            return ms, phases
        return self._cold_python()

    def _cold_python(self):
        ms, answer, rss = worker_cold_start(self.rt.target, self.artifact(), self.request)
        if "abi" not in answer or "Ok" not in answer["abi"]:
            raise RuntimeError(f"{self.name} cold run failed: {answer}")
        self._rss(rss)
        phases = dict(answer["phases_ms"])
        phases["instantiate_load_model_infer"] = answer["ms"]
        return ms, phases

    def throughput(self, workers, n):
        with ThreadPoolExecutor(workers) as pool:  # wasmtime calls release the GIL
            lines = list(
                pool.map(
                    lambda _: guest_bench_in_instance(self.rt.engine, self.rt.module, self.request, n), range(workers)
                )
            )
        return sum(1000 * len(x["samples_ms"]) / sum(x["samples_ms"]) for x in lines)

    def close(self):
        self.rt.close()


class WasinnProbe(Probe):
    """The wasi-nn module in the Rust host: warm inside one instance (the guest's `--bench N`; the host loaded the
    model into ONNX Runtime once), cold = a new host process → first result, with the host's phases."""

    cold_is = "new wasm-host process (Rust, wasmtime 50, ONNX Runtime over wasi-nn) → first result"
    rt: WasmWasinn

    def bench(self, n: int) -> dict:
        argv = [*self.rt.host_argv("run", "--timeout-s", "600"), "--", "--bench", str(n)]
        ms, err, rss = run_in_host(argv, self.request, self.name, "warm run")
        self._rss(rss)
        return guest_bench_line(err)

    def warm(self, n):
        line = self.bench(n)
        self.extra["load_ms"] = line["load_ms"]
        self.extra["warm_is"] = "one instance in the Rust wasm-host, inference in its ONNX Runtime session"
        return line["samples_ms"]

    def cold(self):
        ms, phases, rss = host_cold_start([*self.rt.host_argv("run"), "--phases"], self.request, self.name)
        self._rss(rss)
        return ms, phases

    def throughput(self, workers, n):
        return bench_rps(self.bench, workers, n)


class Wasm01Probe(Probe):
    """The wasm:0.1 zip's module under wasmtime 0.23 with the executor's call sequence: every activation is a
    fresh instance that loads the model, so its "warm" latency is a whole activation."""

    cold_is = "new host process (Python + wasmtime 0.23) → first activation"

    def __init__(self, *args):
        super().__init__(*args)
        self.rt.call(self.request)

    def artifact(self):
        return wasm01_zip_path(self.cfg.name, self.dist)  # what is deployed; the runtime runs the .cwasm inside

    def warm(self, n):
        out = []
        for _ in range(n):
            answer = self.rt.job("abi", self.request)
            out.append(answer["ms"])
        self._rss(vm_hwm_kib(self.rt.process_id()))
        return out

    def cold(self):
        ms, answer, rss = worker_cold_start(self.rt.target, self.rt.artifact(), self.request)
        self._rss(rss)
        return ms, {**answer["phases_ms"], "activation": answer["ms"]}

    def throughput(self, workers, n):
        rts = [self.rt] + [make_runtime(self.name, self.cfg, self.dist) for _ in range(workers - 1)]
        try:
            for rt in rts[1:]:
                rt.call(self.request)
            return parallel_rps([lambda rt=rt: rt.job("abi", self.request) for rt in rts], n)
        finally:
            for rt in rts[1:]:
                rt.close()

    def close(self):
        self.rt.close()


class ExecProbe(Probe):
    """The actionloop exec from its zip: one process, one stdin line per activation."""

    cold_is = "new exec process → ack (model loaded) → first result"

    def __init__(self, *args):
        super().__init__(*args)
        self.tmp = Path(tempfile.mkdtemp(prefix="mib-bench-exec-"))
        self.exe = extract_exec(self.artifact(), self.tmp)
        self.value = json.loads(self.request)
        self.action = ExecAction(self.exe)
        self.action.activate(self.value)

    def warm(self, n):
        out = self.time_calls(n, lambda: self.action.activate(self.value))
        self._rss(vm_hwm_kib(self.action.proc.pid))
        return out

    def cold(self):
        t = time.perf_counter()
        action = ExecAction(self.exe)
        acked = time.perf_counter()
        action.activate(self.value)
        done = time.perf_counter()
        self._rss(vm_hwm_kib(action.proc.pid))
        action.close()
        return (done - t) * 1e3, {"start_to_ack": (acked - t) * 1e3, "first_activation": (done - acked) * 1e3}

    def throughput(self, workers, n):
        actions = [self.action] + [ExecAction(self.exe) for _ in range(workers - 1)]
        try:
            return parallel_rps([lambda a=a: a.activate(self.value) for a in actions], n)
        finally:
            for a in actions[1:]:
                a.close()

    def close(self):
        self.action.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class ContainerProbe(Probe):
    """The action image under the container engine: cold = run → /init answered → first /run result."""

    cold_is = "podman run (or docker run) → /init answered → first /run result"

    def __init__(self, *args):
        super().__init__(*args)
        self.runner = container_engine()
        self.image_id = self.runner.load(self.artifact())
        self.value = json.loads(self.request)
        self.server = self.runner.run_server(self.image_id)
        self.server.wait_ready()
        self.server.init()
        self.server.run(self.value)

    def _run(self):
        answer = self.server.run(self.value)
        if answer.status != 200 or "error" in answer.body:
            raise RuntimeError(f"{self.name} answered {answer}")

    def warm(self, n):
        out = self.time_calls(n, self._run)
        self._rss(self.server.peak_rss_kib())
        return out

    def cold(self):
        t = time.perf_counter()
        server = self.runner.run_server(self.image_id)
        try:
            listening = server.wait_ready() * 1e3
            server.init()
            initialized = (time.perf_counter() - t) * 1e3
            server.run(self.value)
            done = (time.perf_counter() - t) * 1e3
        finally:
            server.close()
        return done, {"run_to_listening": listening, "init_answered": initialized, "first_run": done - initialized}

    def throughput(self, workers, n):
        return parallel_rps([lambda: self.server.run(self.value)] * workers, n)

    def close(self):
        self.server.close()
        self.runner.remove(self.image_id)


# The probe of each runtime adapter (the adapter owns the name; toolchain/runtimes).
PROBE_OF: dict[type[Runtime], type[Probe]] = {
    TensorFlowRuntime: PythonProbe,
    OnnxRuntime1T: PythonProbe,
    OnnxRuntimeDefault: PythonProbe,
    TractPython: PythonProbe,
    NativeCli: NativeProbe,
    WasmJit: WasmProbe,
    WasmAot: WasmProbe,
    WasmPreinitAot: WasmProbe,
    WasmWasinn: WasinnProbe,
    Wasm01Aot: Wasm01Probe,
    ActionloopExec: ExecProbe,
    Container: ContainerProbe,
    NativeOrtContainer: ContainerProbe,
}


def make_probe(runtime: str, cfg: ModelConfig, dist: DistLayout, image: bytes, image_path: Path) -> Probe:
    cls = next(c for c in PROBE_OF if c.name == runtime)
    return PROBE_OF[cls](runtime, cfg, dist, image, image_path)


def probe_names() -> list[str]:
    """Runtimes the bench can measure, in registry order."""
    return [name for name in runtime_names() if any(c.name == name for c in PROBE_OF)]

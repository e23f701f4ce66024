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

from toolchain.runtimes.actions import vm_hwm_kib
from toolchain.measure.bench.stats import run_measured
from toolchain.core.config import DistLayout, ModelConfig
from toolchain.runtimes import make_runtime
from toolchain.runtimes.guest_base import image_request


def guest_bench_line(stderr: bytes) -> dict:
    for line in reversed(stderr.decode("utf-8", "replace").splitlines()):
        if line.startswith("{") and "median_ms" in line:
            return json.loads(line)
    raise RuntimeError(f"no --bench line in the guest's stderr: {stderr[-300:]!r}")


def guest_bench_in_instance(engine, module, request: bytes, runs: int) -> dict:
    """The guest's own `classify --bench N` inside one wasm instance: load time and per-request samples."""
    import wasmtime

    with tempfile.TemporaryDirectory() as tmp:
        stdin, stdout, stderr = (str(Path(tmp, n)) for n in ("in", "out", "err"))
        Path(stdin).write_bytes(request)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["classify", "--bench", str(runs)]
        wasi.stdin_file, wasi.stdout_file, wasi.stderr_file = stdin, stdout, stderr
        store = wasmtime.Store(engine)
        store.set_wasi(wasi)
        store.set_epoch_deadline(1 << 40)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap:
            pass
        line = guest_bench_line(Path(stderr).read_bytes())
        line["memory_bytes"] = instance.exports(store)["memory"].data_len(store)
        return line


def worker_cold_start(target_name: str, module: Path, request: bytes) -> tuple[float, dict, int]:
    """A new Python wasmtime worker for ``target_name``, one wasm:0.1-ABI job, exit: (ms, answer, peak RSS KiB)."""
    from toolchain.build.aot import WORKER, aot_target
    from toolchain.build.venvs import runtime_python

    target = aot_target(target_name)
    job = json.dumps({"mode": "abi", "request_b64": base64.b64encode(request).decode()}).encode() + b"\n"
    argv = [str(runtime_python(target.name)), str(WORKER), "serve", str(module), *target.worker_args()]
    ms, code, out, err, rss = run_measured(argv, job)
    return ms, json.loads(out.splitlines()[-1]), rss


def parallel_rps(calls: list, n: int) -> float:
    """Requests per second with each of ``calls`` (one per worker) made ``n`` times concurrently."""
    with ThreadPoolExecutor(len(calls)) as pool:
        t = time.perf_counter()
        list(pool.map(lambda call: [call() for _ in range(n)], calls))
        return len(calls) * n / (time.perf_counter() - t)


class Probe:
    name = "?"
    cold_is = "new process → first result"

    def __init__(self, cfg: ModelConfig, dist: DistLayout, image: bytes, image_path: Path):
        self.cfg, self.dist, self.image, self.image_path = cfg, dist, image, image_path
        self.request = image_request(image)
        self.peak_rss_kib = 0
        self.extra: dict = {}

    def _rss(self, kib: int | None) -> None:
        if kib:
            self.peak_rss_kib = max(self.peak_rss_kib, kib)

    def artifact(self) -> Path | None:
        return None

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

    def close(self) -> None:
        pass


class PythonProbe(Probe):
    """TF, ONNX Runtime, tract's Python bindings: the reference preprocessing then the engine, in Python."""

    def __init__(self, runtime: str, *args):
        super().__init__(*args)
        self.name = runtime
        self.rt = make_runtime(runtime, self.cfg, self.dist)
        self.rt.classify(self.image)  # load + warm-up

    def artifact(self):
        return self.dist.frozen_pb(self.cfg.name) if self.name == "tf" else self.dist.onnx(self.cfg.name)

    def warm(self, n):
        return self.time_calls(n, lambda: self.rt.classify(self.image))

    def cold(self):
        argv = [sys.executable, "-m", "toolchain.measure.bench.cold", self.name, str(self.cfg.config_path),
                str(self.dist.root), str(self.image_path)]
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
    name = "native-tract"

    def artifact(self):
        from toolchain.build.guest import native_cli_path

        return native_cli_path(self.cfg.name, self.dist)

    def _bench(self, n):
        ms, code, out, err, rss = run_measured([str(self.artifact()), "--bench", str(n)], self.request, env={})
        self._rss(rss)
        return guest_bench_line(err)

    def warm(self, n):
        line = self._bench(n)
        self.extra["load_ms"] = line["load_ms"]
        return line["samples_ms"]

    def cold(self):
        ms, code, out, err, rss = run_measured([str(self.artifact())], self.request, env={})
        if code != 0:
            raise RuntimeError(f"native cold run failed: {out[-300:]!r}")
        self._rss(rss)
        return ms, {}

    def throughput(self, workers, n):
        with ThreadPoolExecutor(workers) as pool:
            lines = list(pool.map(lambda _: self._bench(n), range(workers)))
        return sum(1000 * len(x["samples_ms"]) / sum(x["samples_ms"]) for x in lines)


class WasmProbe(Probe):
    """The SIMD guest in wasmtime 50: warm inside one instance (wasmtime-py); cold starts and fresh instances
    in the Rust host (`dist/hosts/wasm-host`, the wasmtime crate) when it is built, else in a Python worker."""

    def __init__(self, runtime: str, *args):
        from toolchain.build.host import host_path

        super().__init__(*args)
        self.name = runtime
        self.rt = make_runtime(runtime, self.cfg, self.dist)
        self.rt.load()
        self.host = host_path(self.dist) if host_path(self.dist).is_file() else None
        self.cold_is = ("new wasm-host process (Rust, wasmtime 50) → first result" if self.host else
                        "new host process (Python + wasmtime-py 50) → first result")

    def _host_argv(self, mode: str, *args: str) -> list[str]:
        from toolchain.build.host import host_command

        return host_command(self.dist, mode, self.artifact(), *args, baseline=self.name != "wasm-jit")

    def artifact(self):
        return self.rt._artifact()

    def warm(self, n):
        line = guest_bench_in_instance(self.rt._engine, self.rt._module, self.request, n)
        self.extra["guest_memory_mb"] = round(line["memory_bytes"] / 2**20, 1)
        self.extra["load_ms"] = line["load_ms"]
        return line["samples_ms"]

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
            ms, code, out, err, rss = run_measured([*self._host_argv("run"), "--phases"], self.request)
            if code != 0:
                raise RuntimeError(f"{self.name} cold run failed: {out[-300:]!r} {err[-300:]!r}")
            self._rss(rss)
            phases = next(json.loads(line)["host_phases_ms"] for line in reversed(err.decode().splitlines())
                          if line.startswith('{"host_phases_ms"'))
            return ms, phases
        return self._cold_python()

    def _cold_python(self):
        ms, answer, rss = worker_cold_start("wasmtime-50", self.artifact(), self.request)
        if "abi" not in answer or "Ok" not in answer["abi"]:
            raise RuntimeError(f"{self.name} cold run failed: {answer}")
        self._rss(rss)
        phases = dict(answer["phases_ms"])
        phases["instantiate_load_model_infer"] = answer["ms"]
        return ms, phases

    def throughput(self, workers, n):
        with ThreadPoolExecutor(workers) as pool:  # wasmtime calls release the GIL
            lines = list(pool.map(lambda _: guest_bench_in_instance(self.rt._engine, self.rt._module,
                                                                   self.request, n), range(workers)))
        return sum(1000 * len(x["samples_ms"]) / sum(x["samples_ms"]) for x in lines)

    def close(self):
        self.rt.close()


class Wasm01Probe(Probe):
    """The wasm:0.1 zip's module under wasmtime 0.23 with the executor's call sequence: every activation is a
    fresh instance that loads the model, so its "warm" latency is a whole activation."""

    name = "wasm01-aot"
    cold_is = "new host process (Python + wasmtime 0.23) → first activation"

    def __init__(self, *args):
        super().__init__(*args)
        self.rt = make_runtime("wasm01-aot", self.cfg, self.dist)
        self.rt.call(self.request)

    def artifact(self):
        from toolchain.package.zips import wasm01_zip_path

        return wasm01_zip_path(self.cfg.name, self.dist)

    def warm(self, n):
        out = []
        for _ in range(n):
            answer = self.rt._job("abi", self.request)
            out.append(answer["ms"])
        self._rss(vm_hwm_kib(self.rt._proc.pid))
        return out

    def cold(self):
        from toolchain.build.aot import aot_target, cwasm_path

        module = cwasm_path(self.cfg.name, aot_target("wasmtime-0.23"), self.dist)
        ms, answer, rss = worker_cold_start("wasmtime-0.23", module, self.request)
        self._rss(rss)
        return ms, {**answer["phases_ms"], "activation": answer["ms"]}

    def throughput(self, workers, n):
        rts = [self.rt] + [make_runtime("wasm01-aot", self.cfg, self.dist) for _ in range(workers - 1)]
        try:
            for rt in rts[1:]:
                rt.call(self.request)
            return parallel_rps([lambda rt=rt: rt._job("abi", self.request) for rt in rts], n)
        finally:
            for rt in rts[1:]:
                rt.close()

    def close(self):
        self.rt.close()


class ExecProbe(Probe):
    """The actionloop exec from its zip: one process, one stdin line per activation."""

    name = "actionloop-exec"
    cold_is = "new exec process → ack (model loaded) → first result"

    def __init__(self, *args):
        from toolchain.runtimes.actions import ExecAction, extract_exec
        from toolchain.package.zips import exec_zip_path

        super().__init__(*args)
        self.tmp = Path(tempfile.mkdtemp(prefix="mib-bench-exec-"))
        self.exe = extract_exec(exec_zip_path(self.cfg.name, self.dist), self.tmp)
        self.value = json.loads(self.request)
        self.action = ExecAction(self.exe)
        self.action.activate(self.value)

    def artifact(self):
        from toolchain.package.zips import exec_zip_path

        return exec_zip_path(self.cfg.name, self.dist)

    def warm(self, n):
        out = self.time_calls(n, lambda: self.action.activate(self.value))
        self._rss(vm_hwm_kib(self.action.proc.pid))
        return out

    def cold(self):
        from toolchain.runtimes.actions import ExecAction

        t = time.perf_counter()
        action = ExecAction(self.exe)
        acked = time.perf_counter()
        action.activate(self.value)
        done = time.perf_counter()
        self._rss(vm_hwm_kib(action.proc.pid))
        action.close()
        return (done - t) * 1e3, {"start_to_ack": (acked - t) * 1e3, "first_activation": (done - acked) * 1e3}

    def throughput(self, workers, n):
        from toolchain.runtimes.actions import ExecAction

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
    """The action image under podman: cold = `podman run` → /init answered → first /run result."""

    name = "container"
    engine = "tract"
    cold_is = "podman run → /init answered → first /run result"

    def __init__(self, *args):
        from toolchain.runtimes.actions import ServerAction, load_image

        super().__init__(*args)
        self.image_id = load_image(self.artifact())
        self.value = json.loads(self.request)
        self.server = ServerAction.in_podman(self.image_id)
        self.server.wait_ready()
        self.server.init()
        self.server.run(self.value)

    def artifact(self):
        from toolchain.package.image import image_path

        return image_path(self.cfg.name, self.dist, self.engine)

    def _run(self):
        answer = self.server.run(self.value)
        if answer.status != 200 or "error" in answer.body:
            raise RuntimeError(f"{self.name} answered {answer}")

    def warm(self, n):
        out = self.time_calls(n, self._run)
        self._rss(self.server.peak_rss_kib())
        return out

    def cold(self):
        from toolchain.runtimes.actions import ServerAction

        t = time.perf_counter()
        server = ServerAction.in_podman(self.image_id)
        try:
            listening = server.wait_ready() * 1e3
            server.init()
            initialized = (time.perf_counter() - t) * 1e3
            server.run(self.value)
            done = (time.perf_counter() - t) * 1e3
        finally:
            server.close()
        return done, {"run_to_listening": listening, "init_answered": initialized,
                      "first_run": done - initialized}

    def throughput(self, workers, n):
        return parallel_rps([lambda: self.server.run(self.value)] * workers, n)

    def close(self):
        from toolchain.runtimes.actions import remove_image

        self.server.close()
        remove_image(self.image_id)


class NativeOrtProbe(ContainerProbe):
    """The ONNX Runtime action image, measured exactly like the tract one."""

    name = "native-ort"
    engine = "onnxruntime"


PROBES = {
    "tf": lambda *a: PythonProbe("tf", *a),
    "onnxruntime-1t": lambda *a: PythonProbe("onnxruntime-1t", *a),
    "onnxruntime": lambda *a: PythonProbe("onnxruntime", *a),
    "tract-py": lambda *a: PythonProbe("tract-py", *a),
    "native-tract": NativeProbe,
    "wasm-jit": lambda *a: WasmProbe("wasm-jit", *a),
    "wasm-aot": lambda *a: WasmProbe("wasm-aot", *a),
    "wasm-preinit-aot": lambda *a: WasmProbe("wasm-preinit-aot", *a),
    "wasm01-aot": Wasm01Probe,
    "actionloop-exec": ExecProbe,
    "container": ContainerProbe,
    "native-ort": NativeOrtProbe,
}

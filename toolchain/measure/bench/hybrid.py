"""The seed's thesis, tested: wasm serves the cold start while the container warms up.

Simulation: bursts of requests with Poisson arrivals, served by wasm only, the container only, or hybrid
(wasm until the container has answered /init, the container after), each backend with as many slots as
cores. Service times are drawn from the distributions measured in the same benchmark run.

Dispatcher: the same policy for real on this machine: the container and a wasm:0.1 worker start together,
a bounded load generator sends a burst, and each request goes to the container once it is ready.
"""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from toolchain.build.host import host_command
from toolchain.core.catalog import HOST_AOT_TARGET, aot_target, image_path, preinit_cwasm_path
from toolchain.measure.bench.stats import summarize
from toolchain.runtimes import make_runtime
from toolchain.runtimes.containers import container_engine
from toolchain.runtimes.wasm import WasmPreinitAot
from toolchain.runtimes.wasm01 import Wasm01Aot

# hybrid: wasm until the container is ready (the seed's idea); hybrid-eft: each request to the backend
# with the earliest expected finish (queues and medians known), which also keeps wasm from overloading.
POLICIES = ("wasm-only", "container-only", "hybrid", "hybrid-eft")


@dataclass(frozen=True)
class Backends:
    """Measured inputs, all in ms."""

    wasm_ready: float  # host process start → able to serve (module loaded)
    wasm_service: list[float]  # one request on a ready wasm host (fresh instance per activation)
    container_ready: float  # podman run → /init answered
    container_service: list[float]  # one warm /run
    slots: int = 2


def _serve(arrivals: list[float], ready: float, service: list[float], slots: int, rng: random.Random) -> list[float]:
    """Finish times of FIFO requests on `slots` servers that open at `ready`."""
    free = [ready] * slots
    heapq.heapify(free)
    out = []
    for a in arrivals:
        start = max(a, heapq.heappop(free))
        end = start + rng.choice(service)
        heapq.heappush(free, end)
        out.append(end)
    return out


def _earliest_finish(arrivals: list[float], b: Backends, rng: random.Random) -> list[tuple[float, float]]:
    wasm, cont = [b.wasm_ready] * b.slots, [b.container_ready] * b.slots
    wasm_med, cont_med = _median(b.wasm_service), _median(b.container_service)
    pairs = []
    for a in arrivals:
        if max(a, min(wasm)) + wasm_med < max(a, min(cont)) + cont_med:
            pool, service = wasm, b.wasm_service
        else:
            pool, service = cont, b.container_service
        i = pool.index(min(pool))
        pool[i] = max(a, pool[i]) + rng.choice(service)
        pairs.append((a, pool[i]))
    return pairs


def _median(v: list[float]) -> float:
    return sorted(v)[len(v) // 2]


def simulate_burst(b: Backends, arrivals: list[float], policy: str, rng: random.Random) -> list[tuple[float, float]]:
    """(arrival ms, latency ms) of each request of one burst under `policy`, in arrival order."""
    if policy == "wasm-only":
        pairs = list(zip(arrivals, _serve(arrivals, b.wasm_ready, b.wasm_service, b.slots, rng), strict=True))
    elif policy == "container-only":
        pairs = list(zip(arrivals, _serve(arrivals, b.container_ready, b.container_service, b.slots, rng), strict=True))
    elif policy == "hybrid-eft":
        pairs = _earliest_finish(arrivals, b, rng)
    else:
        early = [a for a in arrivals if a < b.container_ready]
        late = [a for a in arrivals if a >= b.container_ready]
        pairs = list(zip(early, _serve(early, b.wasm_ready, b.wasm_service, b.slots, rng), strict=True)) + list(
            zip(late, _serve(late, b.container_ready, b.container_service, b.slots, rng), strict=True)
        )
    return sorted((a, end - a) for a, end in pairs)


def poisson_arrivals(n: int, rate_per_s: float, rng: random.Random) -> list[float]:
    t, out = 0.0, []
    for _ in range(n):
        out.append(t)
        t += rng.expovariate(rate_per_s) * 1e3
    return out


def simulate(b: Backends, rates=(2, 5, 10, 20), requests: int = 50, bursts: int = 200, seed: int = 1) -> dict:
    rng = random.Random(seed)
    out: dict[str, Any] = {"requests_per_burst": requests, "bursts": bursts, "rates_per_s": list(rates), "by_rate": {}}
    for rate in rates:
        lat: dict[str, list[float]] = {p: [] for p in POLICIES}
        for _ in range(bursts):
            arrivals = poisson_arrivals(requests, rate, rng)
            for p in POLICIES:
                lat[p] += [x for _, x in simulate_burst(b, arrivals, p, rng)]
        out["by_rate"][str(rate)] = {p: summarize(v, keep_samples=False) for p, v in lat.items()}
    wasm_med, cont_med = _median(b.wasm_service), _median(b.container_service)
    # A request arriving at t finishes on the warming container at ready + service, on wasm at t + wasm
    # service (if a slot is free): the container is the better choice from this t on.
    out["crossover_ms"] = round(b.container_ready + cont_med - wasm_med, 1)
    out["inputs"] = {
        "wasm_ready_ms": round(b.wasm_ready, 1),
        "wasm_service_median_ms": round(wasm_med, 1),
        "container_ready_ms": round(b.container_ready, 1),
        "container_service_median_ms": round(cont_med, 1),
        "slots": b.slots,
    }
    return out


def timeline(b: Backends, rate: float = 10, requests: int = 50, seed: int = 2) -> dict:
    """One burst, per policy: [arrival ms, latency ms] pairs, for the timeline plot."""
    arrivals = poisson_arrivals(requests, rate, random.Random(seed))
    return {
        p: [[round(a, 1), round(x, 1)] for a, x in simulate_burst(b, arrivals, p, random.Random(seed))]
        for p in POLICIES
    }


# ---------------------------------------------------------------------------------------------------------
# The real dispatcher
# ---------------------------------------------------------------------------------------------------------


class PreinitProcesses:
    """The pre-initialised module served as a serverless wasm executor would: a Rust host process per request
    (at most `slots` at once), the model already in the module's memory image."""

    def __init__(self, cfg, dist, slots: int = 2):
        self.argv = host_command(dist, "run", preinit_cwasm_path(cfg.name, aot_target(HOST_AOT_TARGET), dist))
        self.slots = threading.Semaphore(slots)

    def load(self) -> None:
        pass  # nothing to start: every request is its own process

    def call(self, request: bytes) -> dict:
        import subprocess

        with self.slots:
            proc = subprocess.run(self.argv, input=request, capture_output=True, timeout=120)
        try:
            return json.loads(proc.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": f"wasm-host exited {proc.returncode}: {proc.stderr[-300:]!r}"}

    def close(self) -> None:
        pass


class SerialWorker:
    """A wasm:0.1 worker (wasmtime 0.23) serving one activation at a time."""

    def __init__(self, cfg, dist):
        self.rt = make_runtime(Wasm01Aot.name, cfg, dist)
        self.lock = threading.Lock()

    def load(self) -> None:
        self.rt.load()

    def call(self, request: bytes) -> dict:
        with self.lock:
            return self.rt.call(request)

    def close(self) -> None:
        self.rt.close()


def run_dispatcher(
    cfg,
    dist,
    request: bytes,
    rate: float = 10,
    requests: int = 50,
    seed: int = 3,
    max_in_flight: int = 8,
    wasm_backend: str = Wasm01Aot.name,
) -> dict:
    """Start the container and the wasm side together; send a Poisson burst; route each request to the
    container once its /init has been answered, else to wasm. Bounded: at most `max_in_flight` requests."""

    runner = container_engine()
    image_id = runner.load(image_path(cfg.name, dist))
    value = json.loads(request)
    container_ready = threading.Event()
    wasm_ready = threading.Event()
    t0 = time.perf_counter()
    server = runner.run_server(image_id)
    wasm = PreinitProcesses(cfg, dist) if wasm_backend == WasmPreinitAot.name else SerialWorker(cfg, dist)
    marks: dict[str, float] = {}

    def start_container():
        try:
            server.wait_ready()
            server.init()
            marks["container_ready_ms"] = (time.perf_counter() - t0) * 1e3
            container_ready.set()
        except Exception as exc:  # the run still measures wasm; the report says why
            marks["container_error"] = str(exc)

    def start_wasm():
        wasm.load()
        marks["wasm_ready_ms"] = (time.perf_counter() - t0) * 1e3
        wasm_ready.set()

    threading.Thread(target=start_container, daemon=True).start()
    threading.Thread(target=start_wasm, daemon=True).start()
    arrivals = poisson_arrivals(requests, rate, random.Random(seed))
    results: list[dict[str, Any]] = []
    gate = threading.Semaphore(max_in_flight)

    def one(arrival_ms: float):
        try:
            if container_ready.is_set():
                backend = "container"
                ok = "error" not in server.run(value).body
            else:
                backend = "wasm"
                wasm_ready.wait(60)
                ok = "error" not in wasm.call(request)
            done = (time.perf_counter() - t0) * 1e3
            results.append(
                {
                    "arrival_ms": round(arrival_ms, 1),
                    "latency_ms": round(done - arrival_ms, 1),
                    "backend": backend,
                    "ok": ok,
                }
            )
        finally:
            gate.release()

    try:
        with ThreadPoolExecutor(max_in_flight) as pool:
            for a in arrivals:
                delay = a / 1e3 - (time.perf_counter() - t0)
                if delay > 0:
                    time.sleep(delay)
                gate.acquire()
                pool.submit(one, (time.perf_counter() - t0) * 1e3)
    finally:
        server.close()
        wasm.close()
        runner.remove(image_id)
    lat = [float(r["latency_ms"]) for r in results]
    return {
        "rate_per_s": rate,
        "requests": requests,
        "max_in_flight": max_in_flight,
        "wasm_backend": wasm_backend,
        **marks,
        "served_by": {b: sum(r["backend"] == b for r in results) for b in ("wasm", "container")},
        "failed": sum(not r["ok"] for r in results),
        "latency_ms": summarize(lat, keep_samples=False),
        "requests_log": sorted(results, key=lambda r: r["arrival_ms"]),
    }

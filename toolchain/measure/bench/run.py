"""`invoke bench`: every available runtime measured in one run, interleaved, written to dist/bench/.

Noise control: each runtime is warmed up before it is measured; samples are taken in rounds, and in every
round each runtime gets a batch of warm samples and one cold start, in a shuffled order, so a slow spell
of the machine hits all runtimes alike; medians and ratios come from the same run; each runtime's spread
((p95 − median) / median) is reported, and runtimes over NOISY_SPREAD are flagged.
"""

from __future__ import annotations

import os
import platform
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from toolchain.build.golden import load_goldens
from toolchain.build.model_cost import count_macs
from toolchain.core import log
from toolchain.core.catalog import DistLayout, host_path
from toolchain.core.config import ModelConfig
from toolchain.core.errors import ConfigError
from toolchain.core.fsutil import build_seconds, canonical_json, write_atomic
from toolchain.measure.bench.clock import measured_clock_mhz
from toolchain.measure.bench.compute import Cpu, distance_to_peak, peaks_of
from toolchain.measure.bench.hybrid import Backends, run_dispatcher, simulate, timeline
from toolchain.measure.bench.probes import WasmProbe, make_probe, probe_names
from toolchain.measure.bench.profile import guest_phase_split, op_profile
from toolchain.measure.bench.report import validate_results, write_report
from toolchain.measure.bench.stats import Progress, spread, summarize
from toolchain.package.manifest import tool_versions
from toolchain.runtimes import make_runtime
from toolchain.runtimes.guest_base import image_request
from toolchain.runtimes.native_cli import NativeCli
from toolchain.runtimes.onnxruntime import OnnxRuntime1T
from toolchain.runtimes.openwhisk import Container, NativeOrtContainer
from toolchain.runtimes.wasm import WasmAot, WasmJit, WasmPreinitAot, WasmWasinn
from toolchain.runtimes.wasm01 import Wasm01Aot

SCHEMA_VERSION = 1
PHOTO = "chelsea.png"
NOISY_SPREAD = 0.25
WASM_MODES = {
    "jit": (WasmJit.name,),
    "aot": (WasmAot.name, WasmPreinitAot.name, WasmWasinn.name, Wasm01Aot.name),
    "all": (WasmJit.name, WasmAot.name, WasmPreinitAot.name, WasmWasinn.name, Wasm01Aot.name),
}


@dataclass(frozen=True)
class BenchSettings:
    runs: int = 30  # warm samples per runtime
    rounds: int = 5  # interleaving rounds; one cold start per runtime per round
    throughput_requests: int = 8  # per worker
    wasm: str = "all"  # "jit", "aot" or "all": which wasm runtimes (the seed's --jit / --aot)
    runtimes: tuple[str, ...] = ()  # only these (default: every available one)
    pin_cpus: tuple[int, ...] = ()
    hybrid: bool = True  # simulation + the real dispatcher (needs container and wasm01-aot)
    seed: int = 1
    command: str = "invoke bench"

    def __post_init__(self):
        if self.runs < 1 or self.rounds < 1 or self.throughput_requests < 1:
            raise ConfigError(
                f"--runs {self.runs}, --rounds {self.rounds}: each must be at least 1", hint="e.g. --runs 30 --rounds 5"
            )

    def warm_in_round(self, r: int) -> int:
        """Warm samples taken in round ``r``: ``runs`` spread over the rounds, the remainder in the first ones."""
        return self.runs // self.rounds + (1 if r < self.runs % self.rounds else 0)

    @classmethod
    def quick(cls, **kw) -> BenchSettings:
        return cls(runs=6, rounds=2, throughput_requests=3, **kw)


@dataclass
class Measured:
    warm: list[float] = field(default_factory=list)
    cold: list[float] = field(default_factory=list)
    phases: list[dict] = field(default_factory=list)
    instance: list[float] = field(default_factory=list)


def _machine() -> dict:
    cpu = platform.processor()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_gb, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def chosen_runtimes(cfg: ModelConfig, dist: DistLayout, settings: BenchSettings) -> tuple[list[str], dict[str, str]]:
    known = probe_names()
    names = list(settings.runtimes) or [n for n in known if not n.startswith("wasm") or n in WASM_MODES[settings.wasm]]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"no benchmark probe for {', '.join(unknown)}", hint=f"choose from {', '.join(known)}")
    ready: list[str] = []
    missing: dict[str, str] = {}
    for name in names:
        reason = make_runtime(name, cfg, dist).unavailable_reason()
        (missing.__setitem__(name, reason) if reason else ready.append(name))
    return ready, missing


def build_seconds_of(name: str, cfg: ModelConfig, dist: DistLayout) -> float | None:
    """Seconds of the last build of the runtime's artifact and the steps it is made from (as the stages recorded
    them); None unless every step was recorded."""
    times = build_seconds(dist.root)
    chain = [p.relative_to(dist.root).as_posix() for p in make_runtime(name, cfg, dist).built_from()]
    if not chain or any(k not in times for k in chain):
        return None
    return round(sum(times[k] for k in chain), 1)


def run_bench(cfg: ModelConfig, dist: DistLayout, settings: BenchSettings) -> dict:
    if settings.pin_cpus:
        os.sched_setaffinity(0, set(settings.pin_cpus))  # children (hosts, podman) inherit it
    golden = next(g for g in load_goldens(cfg, dist) if g.name == PHOTO)
    image_path = dist.golden_dir(cfg.name) / "images" / golden.name
    names, missing = chosen_runtimes(cfg, dist, settings)
    rng = random.Random(settings.seed)
    steps = len(names) * (1 + 2 * settings.rounds + 2) + 1 + (2 if settings.hybrid else 0)
    progress = Progress(steps)
    probes, data = {}, {}
    try:
        for name in names:
            try:
                probes[name] = make_probe(name, cfg, dist, golden.image_bytes, image_path)
                data[name] = Measured()
            except Exception as exc:  # a runtime that cannot start is reported, the others still run
                missing[name] = f"could not start: {exc}"
            progress.step(f"loaded {name}")
        for r in range(settings.rounds):
            order = list(probes)
            rng.shuffle(order)
            for name in order:
                p, d = probes[name], data[name]
                if settings.warm_in_round(r):
                    d.warm += p.warm(settings.warm_in_round(r))
                if isinstance(p, WasmProbe):
                    d.instance.append(p.instance())
                progress.step(f"round {r + 1}/{settings.rounds} warm {name}")
                ms, phases = p.cold()
                d.cold.append(ms)
                d.phases.append(phases)
                progress.step(f"round {r + 1}/{settings.rounds} cold {name}")
        throughput: dict[str, dict[str, float]] = {}
        for name, p in probes.items():
            throughput[name] = {}
            for workers in (1, 2):
                rps = p.throughput(workers, settings.throughput_requests)
                if rps is not None:
                    throughput[name][f"{workers}_worker{'s' if workers > 1 else ''}"] = round(rps, 2)
                progress.step(f"throughput {name} x{workers}")
        profile = {
            "ops": op_profile(probes.get(NativeCli.name), probes.get(WasmAot.name), golden.tensor),
            "guest_phases": {
                n: guest_phase_split(p, golden.image_bytes, golden.tensor)
                for n, p in probes.items()
                if n in (NativeCli.name, WasmAot.name)
            },
        }
        progress.step("profile")
    finally:
        for p in probes.values():
            p.close()

    runtimes: dict[str, dict[str, Any]] = {}
    for name, p in probes.items():
        d = data[name]
        entry: dict[str, Any] = {
            "warm_ms": summarize(d.warm),
            "cold_ms": summarize(d.cold),
            "cold_is": p.cold_is,
            "throughput_rps": throughput.get(name, {}),
            "peak_rss_mb": round(p.peak_rss_kib / 1024, 1),
        }
        if d.phases and d.phases[0]:
            entry["cold_phases_ms"] = {
                k: round(sorted(x[k] for x in d.phases)[len(d.phases) // 2], 2) for k in d.phases[0]
            }
        if d.instance:
            entry["instance_ms"] = summarize(d.instance)
        art = p.artifact()
        if art is not None and art.is_file():
            entry["artifact"] = art.relative_to(dist.root).as_posix()
            entry["artifact_bytes"] = art.stat().st_size
        build = build_seconds_of(name, cfg, dist)
        if build is not None:
            entry["build_s"] = build
        entry.update({k: v for k, v in p.extra.items()})
        runtimes[name] = entry

    macs = count_macs(dist.onnx(cfg.name))
    cpu = replace(Cpu.here(), measured_mhz=measured_clock_mhz())
    isas = {name: probes[name].rt.instruction_set for name in runtimes}
    for name, entry in runtimes.items():
        entry["compute"] = distance_to_peak(macs, entry["warm_ms"]["median"], isas[name], cpu)

    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "command": settings.command,
        "model": cfg.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "image": {"name": golden.name, "bytes": len(golden.image_bytes), "shape": list(golden.decoded_rgb8.shape)},
        "machine": _machine(),
        "versions": tool_versions(),
        "settings": {
            "runs": settings.runs,
            "rounds": settings.rounds,
            "throughput_requests": settings.throughput_requests,
            "wasm": settings.wasm,
            "pin_cpus": list(settings.pin_cpus),
            "seed": settings.seed,
        },
        "runtimes": runtimes,
        "ratios": ratios(runtimes),
        "spread": {n: spread(r["warm_ms"]) for n, r in runtimes.items()},
        "unavailable": missing,
        "profile": profile,
        "compute": {
            "macs_per_image": macs,
            "cpu": {"model": cpu.model, "vendor": cpu.vendor, "mhz": cpu.mhz, "measured_mhz": cpu.measured_mhz},
            "peaks": peaks_of(list(isas.values()), cpu),
        },
    }
    results["noisy"] = sorted(n for n, s in results["spread"].items() if s > NOISY_SPREAD)
    if settings.hybrid:
        results["hybrid"] = hybrid_section(cfg, dist, runtimes, golden, progress, settings)
    return results


def ratios(rt: dict) -> dict:
    def warm(n):
        return rt.get(n, {}).get("warm_ms", {}).get("median")

    def cold(n):
        return rt.get(n, {}).get("cold_ms", {}).get("median")

    pairs = {
        "wasm_aot_over_native": (warm(WasmAot.name), warm(NativeCli.name)),
        "wasm_jit_over_native": (warm(WasmJit.name), warm(NativeCli.name)),
        "native_over_onnxruntime_1t": (warm(NativeCli.name), warm(OnnxRuntime1T.name)),
        "container_over_onnxruntime_1t": (warm(Container.name), warm(OnnxRuntime1T.name)),
        "native_ort_over_onnxruntime_1t": (warm(NativeOrtContainer.name), warm(OnnxRuntime1T.name)),
        "wasinn_over_native_ort": (warm(WasmWasinn.name), warm(NativeOrtContainer.name)),
        "wasinn_over_wasm_aot": (warm(WasmWasinn.name), warm(WasmAot.name)),
        "wasm_aot_cold_over_wasm_warm": (cold(WasmAot.name), warm(WasmAot.name)),
        "native_cold_over_native_warm": (cold(NativeCli.name), warm(NativeCli.name)),
        "container_cold_over_wasm01_cold": (cold(Container.name), cold(Wasm01Aot.name)),
        "preinit_cold_over_wasm_warm": (cold(WasmPreinitAot.name), warm(WasmAot.name)),
        "preinit_instance_over_wasm_warm": (
            rt.get(WasmPreinitAot.name, {}).get("instance_ms", {}).get("median"),
            warm(WasmAot.name),
        ),
    }
    return {k: round(a / b, 3) for k, (a, b) in pairs.items() if a and b}


def wasm_backends(runtimes: dict) -> dict[str, tuple[float, list[float]]]:
    """The wasm sides the bridge can use: (ready ms, per-request service ms samples).
    wasm:0.1 as OpenWhisk runs it (a fresh instance that loads the model per activation), the wasi-nn module in
    the Rust host (the model in the host's ONNX Runtime), and the pre-initialised module in the Rust host (a fresh
    instance per request, model already in memory)."""
    out = {}
    if Wasm01Aot.name in runtimes:
        w = runtimes[Wasm01Aot.name]
        out[Wasm01Aot.name] = (
            sum(v for k, v in w["cold_phases_ms"].items() if k != "activation"),
            w["warm_ms"]["samples"],
        )
    w = runtimes.get(WasmWasinn.name, {})
    if w.get("cold_phases_ms"):
        # a long-lived Rust host with the model in ONNX Runtime: ready once the engine, the module and the model
        # are loaded; each request then costs about a warm classification (instance + sandboxed decode + inference)
        ready = sum(w["cold_phases_ms"].get(k, 0.0) for k in ("engine", "load_module", "load_nn_model"))
        out[WasmWasinn.name] = (ready, w["warm_ms"]["samples"])
    w = runtimes.get(WasmPreinitAot.name, {})
    phases = w.get("cold_phases_ms", {})
    if "instance_ms" in w and "load_module" in phases:
        # ready = everything before the first instance: engine + module load (+ the interpreter in the
        # Python host, where the Rust host is not built)
        ready = sum(phases.get(k, 0.0) for k in ("engine", "import_wasmtime", "load_module"))
        out[WasmPreinitAot.name] = (ready, w["instance_ms"]["samples"])
    return out


def hybrid_section(cfg, dist, runtimes: dict, golden, progress: Progress, settings: BenchSettings) -> dict:
    wasm = wasm_backends(runtimes)
    if Container.name not in runtimes or not wasm:
        progress.step("hybrid skipped")
        progress.step("dispatcher skipped")
        return {"skipped": "needs the container and wasm01-aot or wasm-preinit-aot"}
    c = runtimes[Container.name]
    sims, backends = {}, {}
    for name, (ready, service) in wasm.items():
        backends[name] = Backends(
            wasm_ready=ready,
            wasm_service=service,
            container_ready=c["cold_phases_ms"]["init_answered"],
            container_service=c["warm_ms"]["samples"],
            slots=min(2, os.cpu_count() or 2),
        )
        sims[name] = simulate(backends[name], seed=settings.seed, bursts=200 if settings.runs >= 20 else 30)

    # the dispatcher runs the pre-initialised module as a process per request in the Rust host
    primary = WasmPreinitAot.name if WasmPreinitAot.name in wasm and host_path(dist).is_file() else Wasm01Aot.name
    if primary not in wasm:  # only the pre-initialised module, but no Rust host to run it per request
        progress.step("hybrid skipped")
        progress.step("dispatcher skipped")
        return {"skipped": "the dispatcher needs wasm01-aot or the Rust host (`invoke host`)"}
    progress.step("hybrid simulation")
    dispatcher = run_dispatcher(
        cfg,
        dist,
        image_request(golden.image_bytes),
        rate=10,
        requests=50 if settings.runs >= 20 else 12,
        wasm_backend=primary,
    )
    progress.step("hybrid dispatcher")
    return {
        "wasm_backend": primary,
        "simulation": sims[primary],
        "simulations": sims,
        "timeline_rate_per_s": 10,
        "timeline": timeline(backends[primary]),
        "dispatcher": dispatcher,
    }


def write_results(results: dict, dist: DistLayout) -> Path:
    validate_results(results)
    out = dist.bench_dir() / "results.json"
    write_atomic(out, canonical_json(results))
    write_report(results, dist.bench_dir())
    return out


def run_and_write(cfg: ModelConfig, dist: DistLayout, settings: BenchSettings) -> dict:
    with log.step(f"bench {cfg.name}"):
        results = run_bench(cfg, dist, settings)
    write_results(results, dist)
    return results

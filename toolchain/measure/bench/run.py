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
from dataclasses import dataclass, field
from pathlib import Path

from toolchain.core import log
from toolchain.measure.bench.probes import PROBES, WasmProbe
from toolchain.measure.bench.profile import guest_phase_split, tract_op_profile
from toolchain.measure.bench.stats import Progress, spread, summarize
from toolchain.core.config import DistLayout, ModelConfig
from toolchain.core.errors import ConfigError
from toolchain.build.guest import native_cli_path
from toolchain.core.fsutil import build_seconds, canonical_json, write_atomic
from toolchain.build.golden import load_goldens

SCHEMA_VERSION = 1
PHOTO = "chelsea.png"
NOISY_SPREAD = 0.25
WASM_MODES = {"jit": ("wasm-jit",), "aot": ("wasm-aot", "wasm-preinit-aot", "wasm01-aot"),
              "all": ("wasm-jit", "wasm-aot", "wasm-preinit-aot", "wasm01-aot")}


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

    @classmethod
    def quick(cls, **kw) -> "BenchSettings":
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
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gb": round(mem_gb, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def chosen_runtimes(cfg: ModelConfig, dist: DistLayout, settings: BenchSettings) -> tuple[list[str], dict[str, str]]:
    from toolchain.runtimes import make_runtime

    names = list(settings.runtimes) or [n for n in PROBES if not n.startswith("wasm") or n in WASM_MODES[settings.wasm]]
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        raise ConfigError(f"no benchmark probe for {', '.join(unknown)}", hint=f"choose from {', '.join(PROBES)}")
    ready, missing = [], {}
    for name in names:
        reason = make_runtime(name, cfg, dist).unavailable_reason()
        (missing.__setitem__(name, reason) if reason else ready.append(name))
    return ready, missing


def _build_s(name: str, cfg: ModelConfig, dist: DistLayout) -> float | None:
    """Seconds of the last build of the artifact and the steps it is made from (as recorded by the stages)."""
    times = build_seconds(dist.root)
    m = cfg.name
    tract_cli, ort_cli = (str(native_cli_path(m, dist, v).relative_to(dist.root)) for v in ("native", "native-ort"))
    chains = {"native-tract": [tract_cli], "actionloop-exec": [tract_cli], "container": [tract_cli],
              "native-ort": [ort_cli],
              "wasm-jit": [f"guest/{m}/classify-simd.wasm", f"guest/{m}/classify-simd.opt.wasm"],
              "wasm-aot": [f"guest/{m}/classify-simd.wasm", f"guest/{m}/classify-simd.opt.wasm"],
              "wasm-preinit-aot": [f"guest/{m}/classify-simd.wasm", f"guest/{m}/classify-simd.opt.wasm",
                                   f"guest/{m}/classify-simd.preinit.wasm"],
              "wasm01-aot": [f"guest/{m}/classify-nosimd.wasm", f"guest/{m}/classify-nosimd.opt.wasm"]}
    if name == "wasm-aot":
        chains[name] += [k for k in times if k.startswith(f"aot/{m}/classify-simd.wasmtime")]
    if name == "wasm-preinit-aot":
        chains[name] += [k for k in times if k.startswith(f"aot/{m}/classify-simd.preinit.")]
    if name == "wasm01-aot":
        chains[name] += [k for k in times if k.startswith(f"aot/{m}/classify-nosimd.")]
    parts = [times[k] for k in chains.get(name, []) if k in times]
    return round(sum(parts), 1) if parts and len(parts) == len(chains[name]) else None


def run_bench(cfg: ModelConfig, dist: DistLayout, settings: BenchSettings) -> dict:
    from toolchain.package.manifest import tool_versions

    if settings.pin_cpus:
        os.sched_setaffinity(0, set(settings.pin_cpus))  # children (hosts, podman) inherit it
    golden = next(g for g in load_goldens(cfg, dist) if g.name == PHOTO)
    image_path = dist.golden_dir(cfg.name) / "images" / golden.name
    names, missing = chosen_runtimes(cfg, dist, settings)
    rng = random.Random(settings.seed)
    per_round = max(1, settings.runs // settings.rounds)
    steps = len(names) * (1 + 2 * settings.rounds + 2) + 1 + (2 if settings.hybrid else 0)
    progress = Progress(steps)
    probes, data = {}, {}
    try:
        for name in names:
            try:
                probes[name] = PROBES[name](cfg, dist, golden.image_bytes, image_path)
                data[name] = Measured()
            except Exception as exc:  # a runtime that cannot start is reported, the others still run
                missing[name] = f"could not start: {exc}"
            progress.step(f"loaded {name}")
        for r in range(settings.rounds):
            order = list(probes)
            rng.shuffle(order)
            for name in order:
                p, d = probes[name], data[name]
                d.warm += p.warm(per_round)
                if isinstance(p, WasmProbe):
                    d.instance.append(p.instance())
                progress.step(f"round {r + 1}/{settings.rounds} warm {name}")
                ms, phases = p.cold()
                d.cold.append(ms)
                d.phases.append(phases)
                progress.step(f"round {r + 1}/{settings.rounds} cold {name}")
        throughput = {}
        for name, p in probes.items():
            throughput[name] = {}
            for workers in (1, 2):
                rps = p.throughput(workers, settings.throughput_requests)
                if rps is not None:
                    throughput[name][f"{workers}_worker{'s' if workers > 1 else ''}"] = round(rps, 2)
                progress.step(f"throughput {name} x{workers}")
        profile = {"tract_ops": tract_op_profile(cfg, dist, golden.tensor),
                   "guest_phases": {n: guest_phase_split(p, golden.image_bytes, golden.tensor)
                                    for n, p in probes.items() if n in ("native-tract", "wasm-aot")}}
        progress.step("profile")
    finally:
        for p in probes.values():
            p.close()

    runtimes = {}
    for name, p in probes.items():
        d = data[name]
        entry = {"warm_ms": summarize(d.warm), "cold_ms": summarize(d.cold), "cold_is": p.cold_is,
                 "throughput_rps": throughput.get(name, {}), "peak_rss_mb": round(p.peak_rss_kib / 1024, 1)}
        if d.phases and d.phases[0]:
            entry["cold_phases_ms"] = {k: round(sorted(x[k] for x in d.phases)[len(d.phases) // 2], 2)
                                       for k in d.phases[0]}
        if d.instance:
            entry["instance_ms"] = summarize(d.instance)
        art = p.artifact()
        if art is not None and art.is_file():
            entry["artifact"] = art.relative_to(dist.root).as_posix()
            entry["artifact_bytes"] = art.stat().st_size
        build = _build_s(name, cfg, dist)
        if build is not None:
            entry["build_s"] = build
        entry.update({k: v for k, v in p.extra.items()})
        runtimes[name] = entry

    results = {"schema_version": SCHEMA_VERSION, "command": settings.command, "model": cfg.name,
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "image": {"name": golden.name, "bytes": len(golden.image_bytes),
                         "shape": list(golden.decoded_rgb8.shape)},
               "machine": _machine(), "versions": tool_versions(),
               "settings": {"runs": settings.runs, "rounds": settings.rounds,
                            "throughput_requests": settings.throughput_requests, "wasm": settings.wasm,
                            "pin_cpus": list(settings.pin_cpus), "seed": settings.seed},
               "runtimes": runtimes, "ratios": ratios(runtimes),
               "spread": {n: spread(r["warm_ms"]) for n, r in runtimes.items()},
               "unavailable": missing, "profile": profile}
    results["noisy"] = sorted(n for n, s in results["spread"].items() if s > NOISY_SPREAD)
    if settings.hybrid:
        results["hybrid"] = hybrid_section(cfg, dist, runtimes, golden, progress, settings)
    return results


def ratios(rt: dict) -> dict:
    def warm(n):
        return rt.get(n, {}).get("warm_ms", {}).get("median")

    def cold(n):
        return rt.get(n, {}).get("cold_ms", {}).get("median")

    pairs = {"wasm_aot_over_native": (warm("wasm-aot"), warm("native-tract")),
             "wasm_jit_over_native": (warm("wasm-jit"), warm("native-tract")),
             "native_over_onnxruntime_1t": (warm("native-tract"), warm("onnxruntime-1t")),
             "container_over_onnxruntime_1t": (warm("container"), warm("onnxruntime-1t")),
             "native_ort_over_onnxruntime_1t": (warm("native-ort"), warm("onnxruntime-1t")),
             "wasm_aot_cold_over_wasm_warm": (cold("wasm-aot"), warm("wasm-aot")),
             "native_cold_over_native_warm": (cold("native-tract"), warm("native-tract")),
             "container_cold_over_wasm01_cold": (cold("container"), cold("wasm01-aot")),
             "preinit_cold_over_wasm_warm": (cold("wasm-preinit-aot"), warm("wasm-aot")),
             "preinit_instance_over_wasm_warm": (rt.get("wasm-preinit-aot", {}).get("instance_ms", {}).get("median"),
                                                 warm("wasm-aot"))}
    return {k: round(a / b, 3) for k, (a, b) in pairs.items() if a and b}


def wasm_backends(runtimes: dict) -> dict[str, tuple[float, list[float]]]:
    """The wasm sides the bridge can use: (ready ms, per-request service ms samples).
    wasm:0.1 as OpenWhisk runs it (a fresh instance that loads the model per activation), and the
    pre-initialised module in the Rust host (a fresh instance per request, model already in memory)."""
    out = {}
    if "wasm01-aot" in runtimes:
        w = runtimes["wasm01-aot"]
        out["wasm01-aot"] = (sum(v for k, v in w["cold_phases_ms"].items() if k != "activation"),
                             w["warm_ms"]["samples"])
    w = runtimes.get("wasm-preinit-aot", {})
    phases = w.get("cold_phases_ms", {})
    if "instance_ms" in w and "load_module" in phases:
        # ready = everything before the first instance: engine + module load (+ the interpreter in the
        # Python host, where the Rust host is not built)
        ready = sum(phases.get(k, 0.0) for k in ("engine", "import_wasmtime", "load_module"))
        out["wasm-preinit-aot"] = (ready, w["instance_ms"]["samples"])
    return out


def hybrid_section(cfg, dist, runtimes: dict, golden, progress: Progress, settings: BenchSettings) -> dict:
    from toolchain.measure.bench.hybrid import Backends, run_dispatcher, simulate, timeline
    from toolchain.runtimes.guest_base import image_request

    wasm = wasm_backends(runtimes)
    if "container" not in runtimes or not wasm:
        progress.step("hybrid skipped")
        progress.step("dispatcher skipped")
        return {"skipped": "needs the container and wasm01-aot or wasm-preinit-aot"}
    c = runtimes["container"]
    sims, backends = {}, {}
    for name, (ready, service) in wasm.items():
        backends[name] = Backends(wasm_ready=ready, wasm_service=service,
                                  container_ready=c["cold_phases_ms"]["init_answered"],
                                  container_service=c["warm_ms"]["samples"], slots=min(2, os.cpu_count() or 2))
        sims[name] = simulate(backends[name], seed=settings.seed, bursts=200 if settings.runs >= 20 else 30)
    from toolchain.build.host import host_path

    # the dispatcher runs the pre-initialised module as a process per request in the Rust host
    primary = "wasm-preinit-aot" if "wasm-preinit-aot" in wasm and host_path(dist).is_file() else "wasm01-aot"
    if primary not in wasm:  # only the pre-initialised module, but no Rust host to run it per request
        progress.step("hybrid skipped")
        progress.step("dispatcher skipped")
        return {"skipped": "the dispatcher needs wasm01-aot or the Rust host (`invoke host`)"}
    progress.step("hybrid simulation")
    dispatcher = run_dispatcher(cfg, dist, image_request(golden.image_bytes), rate=10,
                                requests=50 if settings.runs >= 20 else 12, wasm_backend=primary)
    progress.step("hybrid dispatcher")
    return {"wasm_backend": primary, "simulation": sims[primary], "simulations": sims, "timeline_rate_per_s": 10,
            "timeline": timeline(backends[primary]), "dispatcher": dispatcher}


def write_results(results: dict, dist: DistLayout) -> Path:
    from toolchain.measure.bench.report import validate_results, write_report

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

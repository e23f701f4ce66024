"""`invoke bench --quick`: a first, small runtime comparison (the benchmark issue grows it).

All numbers come from one run on one machine; ratios are computed within that run. Warm latency is a
full classification (base64 → decode → preprocess → inference → top-5) of one golden photo inside one
process after one warm-up; "instance" latency is a fresh wasm instance from an already loaded module (what
a warm serverless executor pays per activation), or a fresh process for the native CLI.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

from toolchain import log
from toolchain.config import DistLayout, ModelConfig
from toolchain.fsutil import canonical_json, write_atomic
from toolchain.golden import load_goldens
from toolchain.runtimes import select_runtimes
from toolchain.runtimes.guest_base import image_request

PHOTO = "chelsea.png"


def _stats(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"median": statistics.median(s), "min": s[0], "max": s[-1], "n": len(s)}


def _guest_bench_line(stderr: bytes) -> dict:
    for line in reversed(stderr.decode("utf-8", "replace").splitlines()):
        if line.startswith("{") and "median_ms" in line:
            return json.loads(line)
    raise RuntimeError(f"no --bench line in the guest's stderr: {stderr[-300:]!r}")


def bench_native_cli(rt, request: bytes, runs: int, cold_runs: int) -> dict:
    binary = str(rt._binary())
    proc = subprocess.run([binary, "--bench", str(runs)], input=request, capture_output=True, timeout=600)
    inner = _guest_bench_line(proc.stderr)
    cold = []
    for _ in range(cold_runs):
        t = time.perf_counter()
        subprocess.run([binary], input=request, capture_output=True, check=True, timeout=600)
        cold.append((time.perf_counter() - t) * 1e3)
    return {"warm_ms": {"median": inner["median_ms"], "min": inner["min_ms"], "n": runs},
            "load_ms": inner["load_ms"], "cold_ms": _stats(cold), "cold_is": "new process → result"}


def guest_bench_in_instance(engine, module, request: bytes, runs: int) -> dict:
    """The guest's own `classify --bench N` inside one wasm instance: load time and per-request medians."""
    import tempfile

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
        return _guest_bench_line(Path(stderr).read_bytes())


def bench_wasm(rt, request: bytes, runs: int, cold_runs: int) -> dict:
    rt.load()
    inner = guest_bench_in_instance(rt._engine, rt._module, request, runs)
    cold = []
    for _ in range(cold_runs):
        t = time.perf_counter()
        rt.call(request)
        cold.append((time.perf_counter() - t) * 1e3)
    return {"warm_ms": {"median": inner["median_ms"], "min": inner["min_ms"], "n": runs},
            "load_ms": inner["load_ms"], "cold_ms": _stats(cold), "cold_is": "new instance from a loaded module → result"}


def compare_wasm_builds(cfg: ModelConfig, dist: DistLayout, runs: int = 20) -> list[dict]:
    """wasm-opt levels and relaxed SIMD, in one run: the SIMD module raw, -O3 (shipped) and -Oz, and the
    relaxed-SIMD build when it exists (`invoke guest --variant wasm-relaxed`; binaryen 108 cannot parse it)."""
    import wasmtime

    from toolchain.guest import optimized_wasm_path, wasm_path
    from toolchain.wasm import optimize_wasm

    raw = wasm_path(cfg.name, "wasm-simd", dist)
    oz = optimize_wasm(raw, dist.bench_dir() / "classify-simd.Oz.wasm", "wasm-simd", level="-Oz")
    modules = [("simd, no wasm-opt", raw, False), ("simd, wasm-opt -O3 (shipped)", optimized_wasm_path(cfg.name, "wasm-simd", dist), False),
               ("simd, wasm-opt -Oz", oz, False), ("simd + relaxed-simd, no wasm-opt", wasm_path(cfg.name, "wasm-relaxed", dist), True)]
    request = image_request(next(g for g in load_goldens(cfg, dist) if g.name == PHOTO).image_bytes)
    rows = []
    for label, path, relaxed in modules:
        if not path.is_file():
            continue
        config = wasmtime.Config()
        config.wasm_simd = True
        config.wasm_relaxed_simd = relaxed
        config.epoch_interruption = True
        engine = wasmtime.Engine(config)
        inner = guest_bench_in_instance(engine, wasmtime.Module.from_file(engine, str(path)), request, runs)
        rows.append({"module": label, "bytes": path.stat().st_size, "warm_median_ms": inner["median_ms"]})
    return rows


def bench_python(rt, image: bytes, runs: int) -> dict:
    rt.classify(image)  # load + warm-up
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        rt.classify(image)
        samples.append((time.perf_counter() - t) * 1e3)
    return {"warm_ms": _stats(samples)}


def bench_wasm01(rt, request: bytes, cold_runs: int) -> dict:
    rt.call(request)
    samples = []
    for _ in range(cold_runs):
        t = time.perf_counter()
        rt.call(request)
        samples.append((time.perf_counter() - t) * 1e3)
    return {"cold_ms": _stats(samples), "cold_is": "wasm:0.1 activation: new instance + model load + inference"}


def run_quick_bench(cfg: ModelConfig, dist: DistLayout, runs: int = 20, cold_runs: int = 5) -> dict:
    image = next(g for g in load_goldens(cfg, dist) if g.name == PHOTO).image_bytes
    request = image_request(image)
    ready, missing = select_runtimes(cfg, dist)
    results = {}
    for rt in ready:
        with log.step(f"bench {rt.name}"):
            try:
                if rt.name == "native-tract":
                    results[rt.name] = bench_native_cli(rt, request, runs, cold_runs)
                elif rt.name in ("wasm-jit", "wasm-aot"):
                    results[rt.name] = bench_wasm(rt, request, runs, cold_runs)
                elif rt.name == "wasm01-aot":
                    results[rt.name] = bench_wasm01(rt, request, cold_runs)
                else:
                    results[rt.name] = bench_python(rt, image, runs)
            finally:
                rt.close()
    def warm(name):
        return results.get(name, {}).get("warm_ms", {}).get("median")
    ratios = {}
    if warm("wasm-aot") and warm("native-tract"):
        ratios["wasm_aot_over_native"] = warm("wasm-aot") / warm("native-tract")
    if warm("native-tract") and warm("onnxruntime-1t"):
        ratios["native_over_onnxruntime_1t"] = warm("native-tract") / warm("onnxruntime-1t")
    report = {"model": cfg.name, "command": f"invoke bench --quick --runs {runs}",
              "machine": {"cpu": _cpu_name(), "cores": _cores(), "python": platform.python_version()},
              "image": PHOTO, "runtimes": results, "ratios": ratios, "unavailable": missing}
    write_atomic(dist.bench_dir() / "results.json", canonical_json(report))
    return report


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def format_report(report: dict) -> str:
    lines = [f"{report['command']} — {report['model']}, {report['image']}, {report['machine']['cpu']} ({report['machine']['cores']} cores)",
             f"{'runtime':<16} {'warm median ms':>15} {'warm min ms':>12} {'load ms':>8} {'instance/cold median ms':>24}"]
    for name, r in report["runtimes"].items():
        w = r.get("warm_ms", {})
        c = r.get("cold_ms", {})
        fmt = lambda v: f"{v:.1f}" if isinstance(v, (int, float)) else "-"
        lines.append(f"{name:<16} {fmt(w.get('median')):>15} {fmt(w.get('min')):>12} {fmt(r.get('load_ms')):>8} "
                     f"{fmt(c.get('median')):>24}")
    for k, v in report["ratios"].items():
        lines.append(f"{k} = {v:.2f}")
    return "\n".join(lines)

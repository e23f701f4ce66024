"""`invoke bench --wasm-builds`: wasm-opt levels and relaxed SIMD compared in one run."""

from __future__ import annotations

from toolchain.build.golden import load_goldens
from toolchain.build.optimize import optimize_wasm
from toolchain.build.payload import run_wizer, write_payload
from toolchain.core.catalog import DistLayout, base_wasm_path, optimized_wasm_path
from toolchain.core.config import ModelConfig
from toolchain.measure.bench.probes import guest_bench_in_instance
from toolchain.runtimes.guest_base import image_request

PHOTO = "chelsea.png"


def compare_wasm_builds(cfg: ModelConfig, dist: DistLayout, runs: int = 20) -> list[dict]:
    """The SIMD module raw, -O3 (shipped) and -Oz, and the relaxed-SIMD build when it exists
    (`invoke guest --variant wasm-relaxed`; binaryen 108 cannot parse it, so it is not optimised)."""
    import statistics

    import wasmtime

    payload = write_payload(cfg, dist)

    def attached(base, name):  # the model attached to a base as the build attaches it
        return run_wizer(dist, "attach", base, payload, dist.bench_dir() / name) if base.is_file() else base

    raw = base_wasm_path("wasm-simd", dist)
    oz = optimize_wasm(raw, dist.bench_dir() / "classify-simd.Oz.base.wasm", "wasm-simd", level="-Oz")
    modules = [
        ("simd, no wasm-opt", attached(raw, "classify-simd.raw.wasm"), False),
        ("simd, wasm-opt -O3 (shipped)", optimized_wasm_path(cfg.name, "wasm-simd", dist), False),
        ("simd, wasm-opt -Oz", attached(oz, "classify-simd.Oz.wasm"), False),
        (
            "simd + relaxed-simd, no wasm-opt",
            attached(base_wasm_path("wasm-relaxed", dist), "classify-relaxed.raw.wasm"),
            True,
        ),
    ]
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
        rows.append(
            {"module": label, "bytes": path.stat().st_size, "warm_median_ms": statistics.median(inner["samples_ms"])}
        )
    return rows

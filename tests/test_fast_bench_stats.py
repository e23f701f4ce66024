"""Fast tests of the benchmark's pure maths and tables: percentiles, summaries, spread, the same-run ratios,
the wasm backends the hybrid bridge can use, build-time chains and the report's tables."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from toolchain.core.catalog import DistLayout
from toolchain.core.config import load_model_config
from toolchain.core.errors import ConfigError
from toolchain.core.fsutil import record_build_seconds
from toolchain.measure.bench.probes import probe_names
from toolchain.measure.bench.report import _f, format_summary, markdown, tables
from toolchain.measure.bench.run import (
    NOISY_SPREAD,
    WASM_MODES,
    BenchSettings,
    build_seconds_of,
    chosen_runtimes,
    ratios,
    wasm_backends,
)
from toolchain.measure.bench.stats import Progress, percentile, spread, summarize
from toolchain.runtimes import runtime_names


@pytest.fixture(scope="module")
def cfg():
    return load_model_config()


# --- percentile ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("q,expected", [(0, 1.0), (25, 1.75), (50, 2.5), (95, 3.85), (100, 4.0)])
def test_percentile_interpolates_linearly(q, expected):
    assert percentile([1.0, 2.0, 3.0, 4.0], q) == pytest.approx(expected)


def test_percentile_of_nothing_is_nan():
    assert math.isnan(percentile([], 50))


@pytest.mark.parametrize("q", [0, 37.5, 50, 99, 100])
def test_percentile_of_one_sample_is_that_sample(q):
    assert percentile([7.25], q) == 7.25


def test_percentile_matches_numpys_linear_method():
    rng = random.Random(3)
    for n in (2, 3, 10, 31, 100):
        s = sorted(rng.uniform(0, 1000) for _ in range(n))
        for q in (1, 5, 50, 90, 95, 99, 99.9):
            assert percentile(s, q) == pytest.approx(float(np.percentile(s, q)), rel=1e-12, abs=1e-9)


def test_percentile_on_exact_ranks_returns_the_sample():
    s = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert [percentile(s, q) for q in (0, 25, 50, 75, 100)] == s


# --- summarize and spread ------------------------------------------------------------------------------------


def test_summarize_keys_values_and_rounding():
    samples = [3.0001, 1.23456, 2.0, 10.98765]
    out = summarize(samples)
    assert out == {
        "median": 2.5,
        "p95": round(percentile(sorted(samples), 95), 3),
        "p99": round(percentile(sorted(samples), 99), 3),
        "min": 1.235,
        "max": 10.988,
        "mean": round(sum(samples) / 4, 3),
        "n": 4,
        "samples": [3.0, 1.235, 2.0, 10.988],
    }


def test_summarize_keeps_samples_in_measurement_order_and_leaves_the_input_alone():
    samples = [5.0, 1.0, 3.0]
    out = summarize(samples)
    assert out["samples"] == [5.0, 1.0, 3.0] and samples == [5.0, 1.0, 3.0]
    assert (out["min"], out["median"], out["max"]) == (1.0, 3.0, 5.0)


def test_summarize_without_samples():
    out = summarize([4.0, 2.0], keep_samples=False)
    assert "samples" not in out and out["n"] == 2 and out["median"] == 3.0


def test_summarize_one_sample():
    out = summarize([12.3456])
    assert out["median"] == out["p95"] == out["p99"] == out["min"] == out["max"] == out["mean"] == 12.346
    assert out["n"] == 1


def test_spread_is_p95_over_median_relative():
    assert spread({"median": 10.0, "p95": 12.5}) == 0.25
    assert spread({"median": 3.0, "p95": 4.0}) == 0.333
    assert spread({"median": 10.0, "p95": 10.0}) == 0.0


def test_spread_of_a_zero_median_is_zero_not_a_division_error():
    assert spread({"median": 0.0, "p95": 5.0}) == 0.0


def test_spread_of_a_summary():
    s = summarize([10.0] * 19 + [100.0])  # p95 = 10 + 0.05 * 90 = 14.5
    assert spread(s) == 0.45 and spread(s) > NOISY_SPREAD


# --- Progress --------------------------------------------------------------------------------------------------


def test_progress_prints_a_line_per_step_when_not_a_terminal(capsys):
    p = Progress(2)
    p.step("first")
    p.step("second")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[" + "#" * 15 + "." * 15 + "] 1/2 ") and lines[0].endswith("first")
    assert lines[1].startswith("[" + "#" * 30 + "] 2/2 ") and lines[1].endswith("second")


def test_progress_with_no_steps_counts_one(capsys):
    Progress(0).step("only")
    assert "1/1" in capsys.readouterr().err


# --- ratios --------------------------------------------------------------------------------------------------


def _rt(warm=None, cold=None, instance=None):
    r = {}
    if warm is not None:
        r["warm_ms"] = {"median": warm}
    if cold is not None:
        r["cold_ms"] = {"median": cold}
    if instance is not None:
        r["instance_ms"] = {"median": instance}
    return r


def test_ratios_from_one_run():
    rt = {
        "native-tract": _rt(100.0, 300.0),
        "wasm-aot": _rt(180.0, 540.0),
        "wasm-jit": _rt(190.0),
        "onnxruntime-1t": _rt(60.0),
        "container": _rt(110.0, 1500.0),
        "native-ort": _rt(62.0),
        "wasm01-aot": _rt(900.0, 1000.0),
        "wasm-preinit-aot": _rt(200.0, 360.0, 190.0),
    }
    assert ratios(rt) == {
        "wasm_aot_over_native": 1.8,
        "wasm_jit_over_native": 1.9,
        "native_over_onnxruntime_1t": 1.667,
        "container_over_onnxruntime_1t": 1.833,
        "native_ort_over_onnxruntime_1t": 1.033,
        "wasm_aot_cold_over_wasm_warm": 3.0,
        "native_cold_over_native_warm": 3.0,
        "container_cold_over_wasm01_cold": 1.5,
        "preinit_cold_over_wasm_warm": 2.0,
        "preinit_instance_over_wasm_warm": 1.056,
    }


def test_ratios_leave_out_pairs_with_a_missing_or_zero_side():
    rt = {"native-tract": _rt(100.0, 250.0), "wasm-aot": _rt(0.0, 500.0), "onnxruntime-1t": {}}
    assert ratios(rt) == {"native_cold_over_native_warm": 2.5}
    assert ratios({}) == {}


# --- wasm backends for the hybrid bridge -----------------------------------------------------------------------


def test_wasm_backends_ready_time_and_service_samples():
    runtimes = {
        "wasm01-aot": {
            "cold_phases_ms": {"start": 40.0, "load": 60.0, "activation": 900.0},
            "warm_ms": {"samples": [900.0, 910.0]},
        },
        "wasm-preinit-aot": {
            "cold_phases_ms": {"engine": 5.0, "import_wasmtime": 20.0, "load_module": 30.0, "instance": 99.0},
            "instance_ms": {"samples": [150.0, 151.0]},
        },
    }
    assert wasm_backends(runtimes) == {
        "wasm01-aot": (100.0, [900.0, 910.0]),
        "wasm-preinit-aot": (55.0, [150.0, 151.0]),
    }


def test_wasm_backends_need_the_preinit_instance_and_module_load():
    no_instance = {"wasm-preinit-aot": {"cold_phases_ms": {"load_module": 30.0}}}
    no_load = {"wasm-preinit-aot": {"cold_phases_ms": {"engine": 1.0}, "instance_ms": {"samples": [1.0]}}}
    assert wasm_backends(no_instance) == {} and wasm_backends(no_load) == {} and wasm_backends({}) == {}


def test_wasm_backends_ready_counts_only_the_phases_present():
    rt = {"wasm-preinit-aot": {"cold_phases_ms": {"load_module": 7.5}, "instance_ms": {"samples": [2.0]}}}
    assert wasm_backends(rt) == {"wasm-preinit-aot": (7.5, [2.0])}


# --- runtime choice and build times -----------------------------------------------------------------------------


def test_every_runtime_has_a_probe():
    """(The results schema's list is checked against the registry in test_architecture.py.)"""
    assert probe_names() == runtime_names()


def test_wasm_modes():
    assert set(WASM_MODES["all"]) == set(WASM_MODES["jit"]) | set(WASM_MODES["aot"])
    assert not set(WASM_MODES["jit"]) & set(WASM_MODES["aot"])


@pytest.mark.parametrize("mode", ["jit", "aot", "all"])
def test_chosen_runtimes_on_an_empty_dist(cfg, tmp_path, mode):
    ready, missing = chosen_runtimes(cfg, DistLayout(tmp_path), BenchSettings(wasm=mode))
    assert ready == []
    wasm = [n for n in missing if n.startswith("wasm")]
    assert wasm == list(WASM_MODES[mode])
    assert [n for n in missing if not n.startswith("wasm")] == [n for n in probe_names() if not n.startswith("wasm")]


def test_chosen_runtimes_by_name_and_unknown_names(cfg, tmp_path):
    dist = DistLayout(tmp_path)
    _, missing = chosen_runtimes(cfg, dist, BenchSettings(runtimes=("container", "tf")))
    assert list(missing) == ["container", "tf"]
    with pytest.raises(ConfigError, match="no benchmark probe for nope"):
        chosen_runtimes(cfg, dist, BenchSettings(runtimes=("tf", "nope")))


def test_quick_settings():
    q = BenchSettings.quick(runtimes=("tf",))
    assert (q.runs, q.rounds, q.throughput_requests, q.runtimes) == (6, 2, 3, ("tf",))


def test_build_seconds_sum_the_whole_chain_or_nothing(cfg, tmp_path):
    dist = DistLayout(tmp_path)
    m = cfg.name
    assert build_seconds_of("wasm-jit", cfg, dist) is None
    record_build_seconds(dist.root, dist.root / "guest-base" / "classify-simd.wasm", 100.04)
    assert build_seconds_of("wasm-jit", cfg, dist) is None  # the wasm-opt step is not recorded yet
    record_build_seconds(dist.root, dist.root / "guest-base" / "classify-simd.opt.wasm", 15.0)
    assert build_seconds_of("wasm-jit", cfg, dist) is None  # nor attaching the model
    record_build_seconds(dist.root, dist.root / "guest" / m / "classify-simd.opt.wasm", 5.0)
    assert build_seconds_of("wasm-jit", cfg, dist) == 120.0
    record_build_seconds(dist.root, dist.root / "aot" / m / "classify-simd.wasmtime-50.cwasm", 7.5)
    assert build_seconds_of("wasm-aot", cfg, dist) == 127.5
    assert build_seconds_of("wasm-jit", cfg, dist) == 120.0
    assert build_seconds_of("tf", cfg, dist) is None


# --- report tables ----------------------------------------------------------------------------------------------


def _results():
    warm = {"median": 12.345, "p95": 14.0, "p99": 15.5, "samples": [12.0, 14.0]}
    return {
        "command": "invoke bench --quick",
        "model": "m",
        "created": "2026-01-01T00:00:00Z",
        "image": {"name": "chelsea.png", "bytes": 12345},
        "machine": {"cpu": "cpu", "cores": 2, "memory_gb": 7.8, "kernel": "6.1"},
        "settings": {"runs": 6, "rounds": 2},
        "noisy": [],
        "runtimes": {
            "native-tract": {
                "warm_ms": warm,
                "cold_ms": {"median": 40.0},
                "cold_is": "a process",
                "throughput_rps": {"1_worker": 80.0},
                "peak_rss_mb": 95.4,
                "artifact_bytes": 12_500_000,
                "build_s": 300.0,
                "cold_phases_ms": {"spawn": 1.5},
            }
        },
        "spread": {"native-tract": 0.134},
        "ratios": {"native_cold_over_native_warm": 3.24},
        "unavailable": {"tf": "dist/model/m.pb missing: run `invoke model`"},
    }


def test_number_formatting():
    assert _f(1234.56) == "1,234.6" and _f(0.1234, 2) == "0.12" and _f(3) == "3.0"
    assert _f(None) == "–" and _f("x") == "–"


def test_tables_rows():
    out = {title: (header, rows) for title, header, rows in tables(_results())}
    header, rows = out["Runtimes"]
    assert rows == [["native-tract", "12.3", "14.0", "15.5", "0.13", "40.0", "80.0", "–", "95.4", "12.5", "300.0"]]
    assert len(header) == len(rows[0])
    assert out["What cold means"][1] == [["native-tract", "a process", "spawn 1.5"]]
    assert out["Ratios (same run)"][1] == [["native_cold_over_native_warm", "3.24"]]
    assert out["Not measured"][1] == [["tf", "dist/model/m.pb missing: run `invoke model`"]]


def test_markdown_and_summary_carry_the_tables():
    md = markdown(_results())
    assert "| native-tract | 12.3 | 14.0 | 15.5 | 0.13 | 40.0 | 80.0 | – | 95.4 | 12.5 | 300.0 |" in md
    summary = format_summary(_results()).splitlines()
    assert summary[0] == "Command: `invoke bench --quick`"
    assert summary[2].split() == [
        "native-tract",
        "12.3",
        "14.0",
        "15.5",
        "0.13",
        "40.0",
        "80.0",
        "–",
        "95.4",
        "12.5",
        "300.0",
    ]
    assert summary[-1] == "native_cold_over_native_warm = 3.24"


@pytest.mark.parametrize("runs,rounds", [(30, 5), (7, 5), (3, 5), (1, 1), (31, 4)])
def test_warm_samples_add_up_to_runs_over_the_rounds(runs, rounds):
    settings = BenchSettings(runs=runs, rounds=rounds)
    per_round = [settings.warm_in_round(r) for r in range(rounds)]
    assert sum(per_round) == runs and max(per_round) - min(per_round) <= 1


@pytest.mark.parametrize("kw", [{"runs": 0}, {"rounds": 0}, {"runs": -3}])
def test_bench_settings_refuse_runs_or_rounds_below_one(kw):
    with pytest.raises(ConfigError, match="at least 1"):
        BenchSettings(**kw)


def test_summary_of_a_run_that_measured_nothing_is_still_a_table():
    results = _results()
    results["runtimes"] = {}
    results["ratios"] = {}
    assert format_summary(results).splitlines()[0] == "Command: `invoke bench --quick`"

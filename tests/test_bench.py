"""`invoke bench --quick` end to end on the real runtimes: results.json valid against its schema, every plot a
real PNG, the HTML report rendered by a real headless Chromium with its tables and plots."""

from __future__ import annotations

import copy
import json
import subprocess

import jsonschema
import pytest
from PIL import Image

from toolchain.core import programs
from toolchain.measure.bench.report import PLOTS, validate_results

pytestmark = pytest.mark.slow

RUNTIMES = (
    "onnxruntime-1t",
    "native-tract",
    "wasm-aot",
    "wasm-preinit-aot",
    "wasm-wasinn",
    "wasm01-aot",
    "actionloop-exec",
    "container",
)


@pytest.fixture(scope="module")
def bench(built, dist):
    from toolchain.measure.bench.run import BenchSettings, run_bench, write_results
    from toolchain.pipeline import package_all

    default_model = built
    package_all(default_model, dist)  # with the deploy files and their memory measurements
    results = run_bench(default_model, dist, BenchSettings.quick(runtimes=RUNTIMES, command="invoke bench --quick"))
    write_results(results, dist)
    return results, dist.bench_dir()


def test_results_validate_and_hold_every_requested_runtime(bench):
    results, out = bench
    on_disk = json.loads((out / "results.json").read_text())
    validate_results(on_disk)
    assert set(on_disk["runtimes"]) == set(RUNTIMES), on_disk["unavailable"]
    for name, r in on_disk["runtimes"].items():
        w = r["warm_ms"]
        assert 0 < w["min"] <= w["median"] <= w["p95"] <= w["p99"] <= w["max"], name
        assert r["cold_ms"]["median"] > 0 and r["peak_rss_mb"] > 0 and r["artifact_bytes"] > 0, name
        assert r["throughput_rps"].get("1_worker", 0) > 0, name
        # a share of one core's peak: above 0, and below 1 unless the derivation in compute.py is wrong
        assert 0 < r["compute"]["peak_share"] < 1, (name, r["compute"], on_disk["compute"])
        assert r["compute"]["instruction_set"] in on_disk["compute"]["peaks"], name
    assert (
        on_disk["compute"]["macs_per_image"]
        == json.loads((out.parent / "manifest.json").read_text())["models"][on_disk["model"]]["macs"]
    )
    assert "Distance to the machine's limit" in (out / "report.md").read_text()
    assert {"wasm_aot_over_native", "native_over_onnxruntime_1t"} <= set(on_disk["ratios"])
    hybrid = on_disk["hybrid"]
    assert {"wasm-preinit-aot", "wasm-wasinn", "wasm01-aot"} <= set(hybrid["simulations"])
    assert hybrid["dispatcher"]["failed"] == 0
    assert sum(hybrid["dispatcher"]["served_by"].values()) == hybrid["dispatcher"]["requests"]


def test_the_schema_rejects_what_release_tooling_could_not_read(bench):
    results, _ = bench
    broken = copy.deepcopy(results)
    del broken["runtimes"]["native-tract"]["warm_ms"]
    with pytest.raises(jsonschema.ValidationError):
        validate_results(broken)
    renamed = copy.deepcopy(results)
    renamed["runtimes"]["native"] = renamed["runtimes"].pop("native-tract")
    with pytest.raises(jsonschema.ValidationError):
        validate_results(renamed)


def test_plots_are_png_and_the_reports_reference_them(bench):
    _, out = bench
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for name in PLOTS.values():
        with Image.open(out / name) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] >= 600
        assert f"src='{name}'" in html and f"({name})" in md


def test_headless_chromium_renders_tables_and_plots(bench, tmp_path):
    _, out = bench
    chromium = programs.CHROMIUM.require()
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    url = (out / "report.html").as_uri()
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert f'data-images-rendered="{len(PLOTS)}"' in dom, dom[-500:]
    assert dom.count("<table>") >= 3 and "native-tract" in dom
    shot = out / "report-screenshot.png"
    subprocess.run(
        flags + ["--window-size=1200,2400", f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True
    )
    with Image.open(shot) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, table rules and plot colours, not a blank page


def test_deploy_files_carry_measured_memory_limits(bench, dist, default_cfg):
    from toolchain.core.catalog import deploy_paths
    from toolchain.package.deploy import MEMORY_MAX_MB, MEMORY_MIN_MB

    paths = deploy_paths(default_cfg.name, dist)
    plan = json.loads(paths["plan"].read_text())
    assert {a["how"] for a in plan["actions"]} == {"wasm:0.1", "native", "docker"}
    images = [a["image"] for a in plan["actions"] if a["how"] == "docker"]
    assert len(images) == 2 and all(img.startswith("mobilenet-infer-benchmark/") for img in images)  # tract, ORT
    yaml_text, commands = paths["wskdeploy"].read_text(), paths["commands"].read_text()
    for a in plan["actions"]:
        assert MEMORY_MIN_MB <= a["memory_mb"] <= MEMORY_MAX_MB and a["memory_mb"] >= a["peak_rss_mb"], a
        assert f"memorySize: {a['memory_mb']}" in yaml_text
        assert f"wsk action update {a['name']} " in commands and f"--memory {a['memory_mb']}" in commands
    manifest = json.loads(dist.manifest.read_text())
    kinds = {e["kind"] for e in manifest["artifacts"]}
    assert {
        "openwhisk-exec-zip",
        "oci-image",
        "wskdeploy-manifest",
        "wsk-commands",
        "wasm-host",
        "wasm-preinit",
    } <= kinds

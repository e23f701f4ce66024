"""The Rust wasm host: the AOT modules run in it, and its sandbox (no files, no environment, a memory cap, a
deadline) ends a guest that overreaches with a clear error instead of a crash."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hosted(built, dist):
    from toolchain.build.cargo import nightly_problem

    if nightly_problem():  # an environment without rustc >= 1.97: `invoke build` stops there with a hint
        pytest.skip(nightly_problem())
    from toolchain.build.golden import load_goldens
    from toolchain.core.catalog import (
        HOST_AOT_TARGET,
        PYTHON_AOT_TARGET,
        aot_target,
        cwasm_path,
        host_path,
        preinit_cwasm_path,
    )
    from toolchain.runtimes.guest_base import image_request

    default_model = built
    target = aot_target(HOST_AOT_TARGET)
    python_target = aot_target(PYTHON_AOT_TARGET)
    golden = next(g for g in load_goldens(default_model, dist) if g.kind == "photo")
    return {
        "host": str(host_path(dist)),
        "dist": dist,
        "model": default_model.name,
        "golden": golden,
        "request": image_request(golden.image_bytes),
        "modules": {
            "aot": cwasm_path(default_model.name, target, dist),
            "preinit": preinit_cwasm_path(default_model.name, target, dist),
        },
        # the same module compiled with epoch checks, for the toolchain's long-lived wasmtime-py runtimes
        "epoch_module": cwasm_path(default_model.name, python_target, dist),
        "epoch_args": python_target.worker_args(),
    }


def run_host(h, module: str, *extra: str, request: bytes | None = None):
    from toolchain.build.host import host_command

    return subprocess.run(
        [*host_command(h["dist"], "run", h["modules"][module]), *extra],
        input=h["request"] if request is None else request,
        capture_output=True,
        timeout=300,
    )


@pytest.mark.parametrize("module", ["aot", "preinit"])
def test_modules_classify_in_the_rust_host(hosted, module):
    proc = run_host(hosted, module, "--phases")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["index"] == hosted["golden"].tf_result["index"]
    phases = json.loads(proc.stderr.decode().strip().splitlines()[-1])["host_phases_ms"]
    assert set(phases) == {"engine", "load_module", "instantiate_and_run", "total_in_process"}


def test_the_preinitialised_module_skips_the_model_load(hosted):
    """--bench reports the guest's own model-load time: near zero once Wizer has run it at build time."""

    def load_ms(module):
        proc = run_host(hosted, module, "--", "--bench", "1")
        return json.loads(proc.stderr.decode().strip().splitlines()[-1])["load_ms"]

    assert load_ms("preinit") < 5 < load_ms("aot")


@pytest.mark.parametrize("runtime", ["wasm-aot", "wasm-preinit-aot"])
def test_the_hosts_modules_answer_as_the_verified_ones(hosted, runtime):
    """The bench measures wasm warm in the Rust host, whose modules are compiled without epoch checks; `invoke
    verify` checks the wasmtime-py ones, compiled with them. Same wasmtime, baseline and guest: on every golden the
    two give bit-identical probabilities, so verify's result holds for the modules the bench times."""
    from toolchain.build.golden import load_goldens
    from toolchain.core.config import load_model_config
    from toolchain.runtimes import make_runtime
    from toolchain.runtimes.guest_base import image_request

    cfg = load_model_config(hosted["model"])
    rt = make_runtime(runtime, cfg, hosted["dist"])
    module = "preinit" if rt.preinitialised else "aot"
    assert hosted["modules"][module] == rt.host_artifact()
    try:
        for golden in load_goldens(cfg, hosted["dist"]):
            request = image_request(golden.image_bytes)
            proc = run_host(hosted, module, "--", "--debug", request=request)
            assert proc.returncode == 0, (golden.name, proc.stdout, proc.stderr)
            in_host = json.loads(proc.stdout)["debug"]["probabilities"]
            verified = rt.call(request, debug=True)["debug"]["probabilities"]
            assert in_host == verified, golden.name
    finally:
        rt.close()


def test_profile_in_the_host(hosted):
    """The wasm guest's `--profile N` under the Rust host: the per-op table of `invoke bench` for wasm, and the
    matmul kernels the plan runs: the guest's own simd128 kernels (guest/classifier/src/wasm_matmul.rs) for every
    matrix product, wide tiles where n allows them, and tract's GEMV kernel for the classifier."""
    from toolchain.measure.bench.probes import guest_profile_kernels, guest_profile_line
    from toolchain.runtimes.guest_base import profile_record

    proc = run_host(hosted, "aot", "--", "--profile", "1")
    assert proc.returncode == 0, proc.stderr
    ops = guest_profile_line(proc.stderr)
    assert {"OptMatMul", "DepthWiseConv"} <= set(ops) and ops["OptMatMul"] > 1
    kernels = guest_profile_kernels(proc.stderr)
    ours = {k for k in kernels if k.startswith("mib_wasm_f32_4x")}
    assert "mib_wasm_f32_4x8" in ours and len(ours) > 1, kernels  # 4x8 where n allows no wider tile (n = 88, 136)
    assert not any(k.startswith("wasm_f32_") and not k.endswith("x1") for k in kernels), kernels
    assert any(k.endswith("x1") for k in kernels), kernels  # the 1792 -> 1001 classifier is a GEMV
    # tract's own simd128 depthwise kernel (the no-SIMD build declares its own: test_guest.py)
    record = profile_record(proc.stderr)
    assert record["depthwise_kernel"] == "wasm_simd128_depthwise_w_f32"
    # and tract's own min and max by a scalar (the guest's no-SIMD ones are not compiled here)
    assert len(record["clip_kernels"]) == 2 and not any(k.startswith("mib_") for k in record["clip_kernels"]), record


@pytest.mark.skipif(
    not os.environ.get("MIB_WASM_UNIT_TESTS"),
    reason="builds std and tract for wasm a second time (~6 min on 2 cores): `invoke test --wasm-unit-tests`",
)
def test_the_wasm_guests_unit_tests(hosted):
    """The guest library's unit tests built for wasm32 with simd128 and run in the Rust host: among them the
    matmul kernels of guest/classifier/src/wasm_matmul.rs and the wasm:0.1 build's of wasm_scalar_matmul.rs,
    every op against tract's generic kernel."""
    from toolchain.build.guest import build_wasm_unit_tests
    from toolchain.build.host import host_command
    from toolchain.core.catalog import VARIANTS

    module = build_wasm_unit_tests(VARIANTS["wasm-simd"])
    proc = subprocess.run(
        [
            *host_command(hosted["dist"], "run", module, baseline=False),
            "--",
            "--test-threads=1",
            "--nocapture",
            "wasm_matmul",
            "wasm_scalar_matmul",
        ],
        input=b"",
        capture_output=True,
        timeout=600,
    )
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out[-3000:] + proc.stderr.decode(errors="replace")[-3000:]
    assert "test result: ok. 5 passed" in out, out


def test_preinitialisation_is_reproducible(hosted, tmp_path):
    """A second Wizer run over the same module gives the same bytes: WASI randomness has a fixed seed in the
    host's `preinit` (npm's Wizer drew a fresh hash-map seed each time, so no two snapshots matched)."""
    from toolchain.core.catalog import base_optimized_wasm_path, payload_path, preinit_path
    from toolchain.core.fsutil import sha256_file

    src = base_optimized_wasm_path("wasm-simd", hosted["dist"])
    payload = payload_path(hosted["model"], hosted["dist"])
    again = tmp_path / "again.preinit.wasm"
    out = subprocess.run(
        [hosted["host"], "preinit", str(src), str(payload), str(again)], capture_output=True, timeout=1200
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert sha256_file(again) == sha256_file(preinit_path(hosted["model"], "wasm-simd", hosted["dist"]))


def test_a_snapshot_carries_no_dead_copies_of_the_model(hosted):
    """Wizer keeps every non-zero byte of memory. The guest wipes the model file of its payload before the
    snapshot (guest/classifier/src/model.rs), so the snapshot's data is what tract's loaded model holds (2.3x the
    model file, measured); without the wipe it was 3.3x (94 MB for a 38 MB module)."""
    from toolchain.core.catalog import base_optimized_wasm_path, preinit_path

    dist, model = hosted["dist"], hosted["model"]
    onnx = dist.onnx(model).stat().st_size
    code = base_optimized_wasm_path("wasm-simd", dist).stat().st_size  # the module without a model
    data = preinit_path(model, "wasm-simd", dist).stat().st_size - code
    assert data < 2.9 * onnx, data / onnx


def test_preinit_of_a_missing_module_is_a_one_line_error(hosted, tmp_path):
    out = subprocess.run(
        [hosted["host"], "preinit", str(tmp_path / "missing.wasm"), str(tmp_path / "p"), str(tmp_path / "out.wasm")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "cannot read" in out.stderr and "backtrace" not in out.stderr.lower()
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.wasm").exists()


def test_memory_cap_stops_the_guest_with_an_error(hosted):
    proc = run_host(hosted, "aot", "--memory-mb", "48")
    answer = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert proc.returncode == 1 and set(answer) == {"error"}, proc
    assert "memory" in answer["error"] or "instantiation" in answer["error"], answer


def test_deadline_stops_a_runaway_guest(hosted):
    # --bench 1000 classifies for over a minute; a 1 s deadline must end it with the error contract. The host's own
    # modules carry no epoch checks: its watchdog ends the process, with the answer line alone on stdout.
    proc = run_host(hosted, "aot", "--timeout-s", "1", "--", "--bench", "1000")
    lines = proc.stdout.decode().strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "longer than 1 s" in json.loads(lines[0])["error"], proc


def test_the_epoch_deadline_stops_a_runaway_guest_in_a_module_compiled_for_it(hosted):
    # --epoch: wasmtime's epoch interruption, as a long-lived host needs (the toolchain's wasmtime-py runtimes)
    epoch = [hosted["host"], "run", str(hosted["epoch_module"]), *hosted["epoch_args"]]
    assert "--epoch" in epoch
    proc = subprocess.run(
        [*epoch, "--timeout-s", "1", "--", "--bench", "1000"], input=hosted["request"], capture_output=True, timeout=300
    )
    answer = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert proc.returncode == 1 and "longer than 1 s" in answer["error"], proc
    ok = subprocess.run(epoch, input=hosted["request"], capture_output=True, timeout=300)
    assert ok.returncode == 0 and json.loads(ok.stdout)["index"] == hosted["golden"].tf_result["index"]


def test_a_module_compiled_for_the_other_deadline_is_refused_with_the_error_contract(hosted):
    # epoch checks or none are compiled into a .cwasm: the host's engine refuses the other kind instead of running
    # it without a deadline
    proc = subprocess.run(
        [hosted["host"], "run", str(hosted["epoch_module"]), *[a for a in hosted["epoch_args"] if a != "--epoch"]],
        input=hosted["request"],
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "cannot load" in json.loads(proc.stdout)["error"], proc


def test_bad_request_and_missing_module_get_the_error_contract(hosted):
    proc = run_host(hosted, "aot", request=b"{not json")
    assert proc.returncode == 1 and set(json.loads(proc.stdout)) == {"error"}
    bad = subprocess.run([hosted["host"], "run", "/nonexistent.cwasm"], input=b"{}", capture_output=True, timeout=60)
    assert bad.returncode == 1 and "cannot load" in json.loads(bad.stdout)["error"]


def test_wasinn_without_onnxruntime_or_model_is_a_clear_error(hosted, tmp_path):
    """wasm-wasinn: the host's ONNX Runtime library or model missing or broken gives one error line, not a crash;
    the module in a host that offers no model answers with the error contract."""
    from toolchain.build.host import host_command
    from toolchain.core.config import load_model_config
    from toolchain.runtimes import make_runtime

    rt = make_runtime("wasm-wasinn", load_model_config(hosted["model"]), hosted["dist"])
    model, library = rt.host_args()[1], rt.host_args()[3]
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    cases = {
        "no library": (["--nn-model", model, "--ort-library", str(tmp_path / "libonnxruntime.so")], "not found"),
        "a library that is not one": (["--nn-model", model, "--ort-library", str(broken)], "cannot load ONNX Runtime"),
        "a broken model": (["--nn-model", str(broken), "--ort-library", library], "cannot load"),
        "no model offered": ([], "offers no model"),
    }
    for case, (args, message) in cases.items():
        proc = subprocess.run(
            host_command(hosted["dist"], "run", rt.artifact(), *args),
            input=hosted["request"],
            capture_output=True,
            timeout=120,
        )
        assert proc.returncode == 1, (case, proc.returncode, proc.stderr[-500:])
        answer = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        assert set(answer) == {"error"} and message in answer["error"], (case, answer)
        assert b"panicked" not in proc.stderr and b"Traceback" not in proc.stderr, case

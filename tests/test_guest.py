"""The guest classifier on every target it ships for: parity with TF, the contracts, and bad input."""

import json
import subprocess

import pytest
from bad_inputs import CORPUS, check_answer

from toolchain.core.config import REPO_ROOT
from toolchain.measure.verify import format_table, verify
from toolchain.package.manifest import write_manifest
from toolchain.runtimes import make_runtime

pytestmark = pytest.mark.slow

GUEST_RUNTIMES = ["native-tract", "wasm-jit", "wasm-aot", "wasm-preinit-aot", "wasm-wasinn", "wasm01-aot"]


@pytest.fixture(scope="module")
def guest(built):
    return built


def test_every_guest_runtime_matches_tensorflow(guest, dist):
    report = verify(guest, dist, GUEST_RUNTIMES)
    print(format_table(report))
    assert report["ok"], format_table(report)
    for row in report["runtimes"]:
        assert row["resize_max_abs"] == 0.0  # the shared preprocessing is bit-exact on every target
        assert row["top1_agree"] == row["cases"]


def test_verify_json_is_plain_json_for_native_and_wasm_runtimes(guest, dist):
    """`invoke verify --json`, as a release pipeline calls it: exit 0 and a document any JSON parser reads
    (numpy numbers once made it crash with a stack trace whenever a guest runtime was in the report)."""
    import os
    import sys

    runtimes = ["native-tract", "wasm-aot"]  # one native, one wasm: the JSON path is the same for every runtime
    cmd = [sys.executable, "-m", "invoke", "verify", "--json", *(a for r in runtimes for a in ("--runtime", r))]
    res = subprocess.run(
        cmd, cwd=REPO_ROOT, env={**os.environ, "MIB_DIST": str(dist.root)}, capture_output=True, text=True, timeout=900
    )
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2000:]

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    report = json.loads(res.stdout, parse_constant=no_constants)
    assert report["ok"] and [r["runtime"] for r in report["runtimes"]] == runtimes
    for row in report["runtimes"]:
        assert all(type(row[k]) is float for k in ("tensor_max_abs", "image_max_abs", "resize_max_abs"))
        assert type(row["decode_max_abs"]) is int


@pytest.mark.parametrize("runtime", ["native-tract", "wasm-jit", "wasm-wasinn", "wasm01-aot"])
def test_bad_inputs_get_the_error_contract(guest, dist, runtime):
    rt = make_runtime(runtime, guest, dist)
    try:
        for name, request, expected in CORPUS:
            check_answer(name, expected, rt.call(request))
    finally:
        rt.close()


def test_native_cli_exit_codes(guest, dist):
    from toolchain.core.catalog import native_cli_path

    cli = str(native_cli_path(guest.name, dist))
    bad = subprocess.run([cli], input=b'{"image": 1}', capture_output=True, timeout=60)
    assert bad.returncode == 1 and set(json.loads(bad.stdout)) == {"error"} and not bad.stderr
    info = json.loads(subprocess.run([cli, "--info"], capture_output=True, check=True, timeout=60).stdout)
    assert json.dumps(guest.input_shape[1]) in json.dumps(info)


def test_native_profile_times_tracts_ops(guest, dist):
    """`classify --profile N`: each op kind's ms per inference on stderr (what the bench's per-op table reads),
    the answer on stdout unchanged; a bad count is the error contract."""
    from toolchain.build.golden import load_goldens
    from toolchain.core.catalog import native_cli_path
    from toolchain.measure.bench.probes import guest_profile_kernels, guest_profile_line
    from toolchain.runtimes.guest_base import image_request

    cli = str(native_cli_path(guest.name, dist))
    golden = next(g for g in load_goldens(guest, dist) if g.kind == "photo")
    proc = subprocess.run(
        [cli, "--profile", "2"], input=image_request(golden.image_bytes), capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["index"] == golden.tf_result["index"]
    ops = guest_profile_line(proc.stderr)
    assert {"OptMatMul", "DepthWiseConv"} <= set(ops) and all(ms >= 0 for ms in ops.values())
    assert ops["OptMatMul"] > 1  # the model's 36 matmuls take milliseconds on any CPU
    kernels = guest_profile_kernels(proc.stderr)  # tract's x86-64 kernels; the guest's own is wasm-only
    assert kernels and not any(k.startswith(("mib_", "wasm_")) for k in kernels), kernels
    bad = subprocess.run([cli, "--profile", "many"], input=b"{}", capture_output=True, timeout=60)
    assert bad.returncode == 1 and "--profile needs a count" in json.loads(bad.stdout)["error"]


def test_wasm01_abi_wraps_results_and_errors(guest, dist):
    rt = make_runtime("wasm01-aot", guest, dist)
    try:
        ok = rt.call_abi(b'{"image": 5}')
        assert set(ok) == {"Err"} and "error" in ok["Err"]
        photo = (dist.golden_dir(guest.name) / "images" / "chelsea.png").read_bytes()
        from toolchain.runtimes.guest_base import image_request

        good = rt.call_abi(image_request(photo))
        assert set(good) == {"Ok"} and set(good["Ok"]) == {"label", "confidence", "index", "top5"}
    finally:
        rt.close()


def test_manifest_lists_guest_artifacts(guest, dist):
    manifest = json.loads(write_manifest(dist).read_text())
    mine = [a for a in manifest["artifacts"] if a["model"] == guest.name]
    kinds = sorted(a["kind"] for a in mine)
    # cwasm: SIMD and pre-initialised SIMD for wasmtime 50, with epoch checks (wasmtime-py) and without (the Rust
    # host); the wasi-nn module for the Rust host; no-SIMD and its snapshot (the wasm:0.1 zip's) for 0.23
    assert "wasm-cli" not in kinds and kinds.count("wasm-opt") == 3 and kinds.count("cwasm") == 7
    assert kinds.count("native-cli") == 2 and kinds.count("wasm-preinit") == 2 and "model-payload" in kinds
    # Every guest that carries the model names the model-independent base it was attached to, and the payload.
    bases = {a["sha256"] for a in manifest["artifacts"] if a["kind"] == "guest-base" and a["model"] == ""}
    payloads = {a["path"].rsplit("/", 1)[1]: a for a in mine if a["kind"] == "model-payload"}
    # the wasi-nn module carries the facts and labels only: its model runs in the host's ONNX Runtime
    assert set(payloads) == {"model.payload", "facts.payload"} and payloads["facts.payload"]["bytes"] < 100_000
    for a in mine:
        if a["kind"] in ("native-cli", "wasm-opt", "wasm-preinit"):
            which = "facts.payload" if "wasinn" in a["path"] else "model.payload"
            assert a["base_sha256"] in bases and a["payload_sha256"] == payloads[which]["sha256"], a["path"]
    cwasm = {(a["runtime_version"], tuple(a["features"])) for a in mine if a["kind"] == "cwasm"}
    assert cwasm == {
        ("50.0.1", ("simd128", "epoch-interruption")),
        ("50.0.1", ("simd128",)),
        ("50.0.1", ("simd128", "wasi-nn")),
        ("0.23.0", ()),
    }
    assert {a["cpu_baseline"] for a in mine if a["kind"] == "cwasm" and a["runtime_version"] == "50.0.1"} == {
        "x86-64-v3"
    }


def test_wasm01_zip_round_trips_through_wasmtime_0_23(guest, dist, tmp_path):
    """Unzip what OpenWhisk would receive, load entry 0 with wasmtime 0.23.0, run the executor's calls."""
    import base64
    import zipfile

    from toolchain.build.golden import load_goldens
    from toolchain.package.zips import OPENWHISK_CODE_LIMIT, package_wasm01_zip
    from toolchain.runtimes.guest_base import image_request
    from toolchain.runtimes.wasm01 import Wasm01Aot

    path = package_wasm01_zip(guest, dist)
    assert len(base64.b64encode(path.read_bytes())) <= OPENWHISK_CODE_LIMIT
    with zipfile.ZipFile(path) as zf:
        first = zf.infolist()[0]
        assert first.filename == "content"
        module = tmp_path / "content.cwasm"
        module.write_bytes(zf.read(first))

    class FromZip(Wasm01Aot):
        def artifact(self):
            return module

    rt = FromZip(guest, dist)
    try:
        for g in [g for g in load_goldens(guest, dist) if g.kind == "photo"][:4]:
            answer = rt.call_abi(image_request(g.image_bytes))
            assert answer["Ok"]["index"] == g.tf_result["index"], g.name
    finally:
        rt.close()


def test_rust_unit_tests():
    """The guest crate's own unit tests (HTTP parsing, activation envelopes, actionloop lines, preprocessing, the
    model payload): pure functions, so built without an inference engine and unoptimised, in their own target
    dir (with tract and the release profile they once took 4 minutes of relinking on every guest change)."""
    from toolchain.build.cargo import GUEST_DIR
    from toolchain.build.guest import cargo_env
    from toolchain.core.catalog import VARIANTS
    from toolchain.core.config import CACHE_DIR
    from toolchain.core.programs import CARGO

    variant = VARIANTS["native"]
    env = {**cargo_env(variant), "CARGO_TARGET_DIR": str(CACHE_DIR / "cargo-target" / "unit-tests")}
    cmd = [CARGO.path, "test", "--locked", "-p", "classifier", "--lib", "--no-default-features", "--target"]
    proc = subprocess.run([*cmd, variant.target], cwd=GUEST_DIR, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "test result: ok" in proc.stdout and " 0 passed" not in proc.stdout


def test_the_snapshots_hold_the_loaded_model_not_dead_copies(guest, dist):
    """Wizer keeps every non-zero byte of memory, live or not. Loading the model frees more than it keeps (the
    payload read in growing buffers, parsed tensors, copies made while optimising), and left as they were the
    snapshots held 2.2x the weights (54 MB for a 24 MB model), too much for the wasm:0.1 zip. The guest zeroes
    what it frees while the snapshot is made, so a snapshot holds the packed weights and little else."""
    from toolchain.build.cwasm023 import active_data_segments
    from toolchain.core.catalog import PREINIT_VARIANTS, payload_path, preinit_path

    payload = payload_path(guest.name, dist).stat().st_size
    for variant in PREINIT_VARIANTS:
        segments = active_data_segments(preinit_path(guest.name, variant, dist).read_bytes())
        held = sum(len(data) - data.count(0) for _, data in segments)  # what instances start with in memory
        assert held < 1.1 * payload, (variant, held, payload)


def test_the_wasm01_cwasm_keeps_one_address_map_entry_per_function(guest, dist):
    """The zip's .cwasm is wasmtime 0.23's own, with each function's address map cut to one entry (its start)
    (toolchain/build/cwasm023.py): 17 % of the code limit. test_wasmtime023.py shows traps are still caught."""
    from toolchain.build.cwasm023 import address_map_entries
    from toolchain.core.catalog import preinit_path, wasm01_cwasm_path

    module = preinit_path(guest.name, "wasm-nosimd", dist).read_bytes()
    entries = address_map_entries(wasm01_cwasm_path(guest.name, dist).read_bytes(), module)
    assert len(entries) > 10_000 and set(entries) == {1}


def test_the_wasm01_cwasm_is_reproducible(guest, dist, tmp_path):
    """wasmtime 0.23 writes the module's passive data segments (1,516 empty ones in the guest) and function names
    in hash-map order, random per process, so two compilations differed; the AOT stage puts them in key order
    (toolchain/build/cwasm023.py). A second compilation here, rewritten the same way, gives the shipped bytes."""
    from toolchain.build.aot import WORKER
    from toolchain.build.cwasm023 import rewrite
    from toolchain.build.venvs import runtime_python
    from toolchain.core.catalog import WASM01_TARGET, preinit_path, wasm01_cwasm_path

    module = preinit_path(guest.name, "wasm-nosimd", dist)
    again = tmp_path / "again.cwasm"
    worker = [str(runtime_python(WASM01_TARGET)), str(WORKER), "serialize", str(module), str(again)]
    subprocess.run(worker, check=True, timeout=600)
    assert rewrite(again.read_bytes(), module.read_bytes()) == wasm01_cwasm_path(guest.name, dist).read_bytes()


def test_the_wasm01_guest_runs_its_own_depthwise_clip_and_matmul_kernels(guest, dist):
    """tract has a depthwise-convolution kernel for wasm simd128 only; without one it walked each output point
    generically (~0.6 GMAC/s under wasmtime 0.23). The no-SIMD build declares its own
    (guest/classifier/src/wasm_depthwise.rs), its own min and max by a scalar for the ReLU6 clip
    (wasm_clip.rs), and its own matmul kernel for every product but GEMV (wasm_scalar_matmul.rs), which stays
    with tract's 4×1: the shipped wasm:0.1 .cwasm, profiled in wasmtime 0.23, runs them, and answers as before
    (verify checks the answers against TF)."""
    from toolchain.build.golden import load_goldens
    from toolchain.runtimes.guest_base import image_request

    golden = next(g for g in load_goldens(guest, dist) if g.kind == "photo")
    runtime = make_runtime("wasm01-aot", guest, dist)
    try:
        record = runtime.op_profile(image_request(golden.image_bytes), 1)
        answer = runtime.classify(golden.image_bytes)
    finally:
        runtime.close()
    assert record["depthwise_kernel"] == "mib_scalar_depthwise_w_f32", record
    assert record["clip_kernels"] == ["mib_scalar_min_by_scalar_f32", "mib_scalar_max_by_scalar_f32"], record
    assert record["matmul_kernels"] == ["generic_f32_4x1", "mib_scalar_f32_8x8"], record
    assert {"OptMatMul", "DepthWiseConv"} <= {op for op, _ in record["op_ms"]}
    assert answer["index"] == golden.tf_result["index"]

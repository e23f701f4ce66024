"""One guest build for every model (issue #15): a second model is attached to the bases the first one built, with no
cargo run, and every guest runtime passes verify for it; a missing, corrupt or mismatched payload is a clear error."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import time

import pytest

from toolchain.build.host import host_command
from toolchain.build.payload import attach_native, encode_payload, payload_header, run_wizer
from toolchain.core.catalog import (
    base_native_path,
    base_optimized_wasm_path,
    native_cli_path,
    optimized_wasm_path,
    payload_path,
)
from toolchain.core.errors import StageError
from toolchain.core.fsutil import sha256_file
from toolchain.measure.verify import format_table, verify
from toolchain.pipeline import build_all

pytestmark = pytest.mark.slow

GUEST_RUNTIMES = ["native-tract", "wasm-jit", "wasm-aot", "wasm-preinit-aot", "wasm01-aot"]


@pytest.fixture(scope="module")
def second(built, small_model, dist):
    """`invoke build` for the small model after the default one, watching every program it starts."""
    started_programs: list[list[str]] = []
    real_run = subprocess.run

    def observed_run(cmd, *args, **kwargs):
        started_programs.append([str(c) for c in cmd])
        return real_run(cmd, *args, **kwargs)

    bases = {p: p.stat().st_mtime_ns for p in dist.guest_base_dir().iterdir()}
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess, "run", observed_run)
        build_all(small_model, dist)
    seconds = time.perf_counter() - started
    print(f"second model built in {seconds:.0f} s")
    return {"cfg": small_model, "programs": started_programs, "bases": bases, "seconds": seconds}


def test_a_second_model_needs_no_cargo_build(second, dist):
    cargo = [cmd for cmd in second["programs"] if any(os.path.basename(c) == "cargo" for c in cmd)]
    assert not cargo, cargo
    assert {p: p.stat().st_mtime_ns for p in dist.guest_base_dir().iterdir()} == second["bases"]


def test_every_guest_runtime_passes_verify_for_the_second_model(second, dist):
    report = verify(second["cfg"], dist, GUEST_RUNTIMES)
    print(format_table(report))
    assert report["ok"], format_table(report)
    for row in report["runtimes"]:
        assert row["top1_agree"] == row["cases"]


def test_two_models_share_one_base(second, built, dist):
    for model in (built.name, second["cfg"].name):
        base = base_native_path("native", dist).read_bytes()
        assert native_cli_path(model, dist).read_bytes().startswith(base)


def test_attaching_is_reproducible(second, dist, tmp_path):
    model = second["cfg"].name
    payload = payload_path(model, dist)
    again = attach_native(base_native_path("native", dist), payload, tmp_path / "classify")
    assert sha256_file(again) == sha256_file(native_cli_path(model, dist))
    wasm = run_wizer(dist, "attach", base_optimized_wasm_path("wasm-nosimd", dist), payload, tmp_path / "m.wasm")
    assert sha256_file(wasm) == sha256_file(optimized_wasm_path(model, "wasm-nosimd", dist))


def answer_of(proc: subprocess.CompletedProcess) -> dict:
    """The error contract: exit 1, one JSON line {"error": ...}, no panic, nothing on stderr."""
    assert proc.returncode == 1, proc
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(answer) == {"error"} and "internal error" not in answer["error"], answer
    assert "panicked" not in proc.stderr and "backtrace" not in proc.stderr.lower(), proc.stderr
    return answer


def run_native(cli, *args, env=None, request=b'{"image": ""}'):
    return subprocess.run(
        [str(cli), *args], input=request, capture_output=True, timeout=120, env={**os.environ, **(env or {})}
    )


def decoded(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def test_a_native_base_without_a_model_says_so(second, dist):
    answer = answer_of(decoded(run_native(base_native_path("native", dist), "--info")))
    assert "carries no model" in answer["error"]


def test_a_guest_that_carries_a_model_ignores_classifier_payload(second, dist, tmp_path):
    """CLASSIFIER_PAYLOAD is for executables without a model: a stray setting cannot swap an action's model."""
    other = tmp_path / "other.payload"
    other.write_bytes(b"not a payload")
    proc = run_native(native_cli_path(second["cfg"].name, dist), "--info", env={"CLASSIFIER_PAYLOAD": str(other)})
    assert proc.returncode == 0 and json.loads(proc.stdout)["model"] == second["cfg"].name


def corrupt_payloads(cfg, onnx: bytes) -> dict[str, bytes]:
    good = encode_payload(payload_header(cfg, len(onnx)), onnx)
    return {
        "truncated": good[:-100],
        "not a payload": b"PK\x03\x04 a zip, not a payload",
        "future format": good[:8] + struct.pack("<I", 99) + good[12:],
        "too few labels": encode_payload({**payload_header(cfg, len(onnx)), "labels": ["a"]}, onnx),
        "unknown field": encode_payload({**payload_header(cfg, len(onnx)), "extra": 1}, onnx),
        "header length past the end": good[:12] + struct.pack("<I", len(good)) + good[16:],
    }


@pytest.mark.parametrize(
    "case, message",
    [
        ("truncated", "truncated"),
        ("not a payload", "not a model payload"),
        ("future format", "format 99"),
        ("too few labels", "labels"),
        ("unknown field", "unknown field"),
        ("header length past the end", "truncated"),
    ],
)
def test_a_corrupt_payload_is_a_clear_error(second, dist, tmp_path, case, message):
    cfg = second["cfg"]
    bad = tmp_path / "bad.payload"
    bad.write_bytes(corrupt_payloads(cfg, dist.onnx(cfg.name).read_bytes())[case])
    proc = decoded(run_native(base_native_path("native", dist), env={"CLASSIFIER_PAYLOAD": str(bad)}))
    assert message in answer_of(proc)["error"]
    with pytest.raises(StageError, match="cannot attach the model"):
        run_wizer(dist, "attach", base_optimized_wasm_path("wasm-nosimd", dist), bad, tmp_path / "m.wasm")
    assert not (tmp_path / "m.wasm").exists()


def test_a_damaged_trailer_is_a_clear_error(second, dist, tmp_path):
    cli = tmp_path / "classify"
    data = bytearray(native_cli_path(second["cfg"].name, dist).read_bytes())
    data[-16:-8] = struct.pack("<Q", len(data) * 2)
    cli.write_bytes(bytes(data))
    cli.chmod(0o755)
    assert "the model trailer names" in answer_of(decoded(run_native(cli, "--info")))["error"]


def test_a_mismatched_model_is_a_clear_error(second, built, dist, tmp_path):
    """The small model's facts (10 classes) with the default model's ONNX file (1001): refused at load."""
    onnx = dist.onnx(built.name).read_bytes()
    bad = tmp_path / "mismatched.payload"
    bad.write_bytes(encode_payload(payload_header(second["cfg"], len(onnx)), onnx))
    golden = (dist.golden_dir(built.name) / "images" / "chelsea.png").read_bytes()
    request = json.dumps({"image": base64.b64encode(golden).decode()}).encode()
    proc = decoded(run_native(base_native_path("native", dist), env={"CLASSIFIER_PAYLOAD": str(bad)}, request=request))
    assert "config says 10 classes" in answer_of(proc)["error"]


def test_a_wasm_base_without_a_model_answers_the_error_contract(second, dist):
    module = base_optimized_wasm_path("wasm-simd", dist)
    proc = subprocess.run(
        host_command(dist, "run", module, baseline=False), input=b"{}", capture_output=True, timeout=300
    )
    assert "carries no model" in answer_of(decoded(proc))["error"]

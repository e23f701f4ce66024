"""Fast tests of the OpenWhisk action zips: the code-limit check (base64 size), stored vs deflated, and the
zip layouts (entry names, modes, times), on tiny stand-in artifacts in a temp dist/."""

from __future__ import annotations

import base64
import io
import time
import zipfile

import pytest

from toolchain.core.catalog import (
    WASM01_TARGET,
    DistLayout,
    aot_target,
    exec_zip_path,
    native_cli_path,
    wasm01_cwasm_path,
    wasm01_zip_path,
)
from toolchain.core.config import load_model_config
from toolchain.core.errors import StageError
from toolchain.package.archive import Entry, zip_bytes
from toolchain.package.zips import (
    ACTIONLOOP_IMAGES,
    EXEC_ENV,
    OPENWHISK_CODE_LIMIT,
    artifacts,
    code_limit_share,
    package_exec_zip,
    package_wasm01_zip,
    wasm01_zip_bytes,
    zip_within_code_limit,
)
from toolchain.runtimes.actions import init_like_actionloop_proxy
from toolchain.runtimes.wasm01 import Wasm01Aot

EPOCH = 1_700_000_000


@pytest.fixture(scope="module")
def cfg():
    return load_model_config()


@pytest.fixture
def limit(monkeypatch):
    """Set OpenWhisk's code limit (in base64 bytes) for the code under test: the real 48 MB needs 36 MB zips."""

    def set_limit(n: int) -> None:
        monkeypatch.setitem(zip_within_code_limit.__globals__, "OPENWHISK_CODE_LIMIT", n)

    return set_limit


def b64_len(data: bytes) -> int:
    return len(base64.b64encode(data))


def entries_of(data: bytes) -> list[zipfile.ZipInfo]:
    return zipfile.ZipFile(io.BytesIO(data)).infolist()


def test_the_code_limit_is_openwhisks_48_mb():
    assert OPENWHISK_CODE_LIMIT == 48 * 1024 * 1024 == 50_331_648


def test_a_stored_zip_exactly_at_the_real_limit_is_accepted_stored():
    overhead = len(zip_bytes([Entry("content", b"")], EPOCH, compress=False))
    payload = bytes(OPENWHISK_CODE_LIMIT * 3 // 4 - overhead)  # base64 of the zip: exactly the limit
    data, deflated = zip_within_code_limit([Entry("content", payload)], EPOCH, "test")
    assert not deflated
    assert b64_len(data) == OPENWHISK_CODE_LIMIT


def test_stored_is_preferred_when_it_fits(limit):
    entries = [Entry("content", bytes(3000))]
    stored = zip_bytes(entries, EPOCH, compress=False)
    limit(b64_len(stored))
    data, deflated = zip_within_code_limit(entries, EPOCH, "test")
    assert (data, deflated) == (stored, False)
    assert entries_of(data)[0].compress_type == zipfile.ZIP_STORED


def test_deflate_is_used_when_only_deflate_fits(limit):
    entries = [Entry("content", bytes(3000))]
    stored = zip_bytes(entries, EPOCH, compress=False)
    limit(b64_len(stored) - 1)
    data, deflated = zip_within_code_limit(entries, EPOCH, "test")
    assert deflated and data == zip_bytes(entries, EPOCH, compress=True)
    assert entries_of(data)[0].compress_type == zipfile.ZIP_DEFLATED
    assert zipfile.ZipFile(io.BytesIO(data)).read("content") == bytes(3000)


def test_prefer_stored_false_always_deflates(limit):
    entries = [Entry("exec", bytes(3000), 0o755)]
    limit(10**9)
    data, deflated = zip_within_code_limit(entries, EPOCH, "test", prefer_stored=False)
    assert deflated and entries_of(data)[0].compress_type == zipfile.ZIP_DEFLATED


def test_over_the_limit_even_deflated_is_a_build_error(limit):
    payload = bytes(range(256)) * 4 + base64.b64encode(bytes(range(256)) * 3)
    entries = [Entry("content", payload)]
    deflated_size = b64_len(zip_bytes(entries, EPOCH, compress=True))
    limit(deflated_size - 1)
    with pytest.raises(StageError) as exc:
        zip_within_code_limit(entries, EPOCH, "wasm:0.1 action")
    err = exc.value
    assert err.message.startswith("the wasm:0.1 action is ")
    assert f"{deflated_size:,} bytes after zip + base64" in err.message
    assert f"{deflated_size - 1:,}-byte code limit" in err.message
    assert "codeSize" in err.hint
    limit(deflated_size)  # exactly at the limit: accepted, deflated
    assert zip_within_code_limit(entries, EPOCH, "wasm:0.1 action")[1] is True


def test_the_limit_counts_base64_bytes_not_zip_bytes(limit):
    entries = [Entry("content", bytes(3000))]
    stored = zip_bytes(entries, EPOCH, compress=False)
    limit(len(stored))  # the raw zip would fit, its base64 (4/3 larger) does not
    assert zip_within_code_limit(entries, EPOCH, "test")[1] is True


def test_wasm01_zip_is_one_stored_entry_named_content():
    data, deflated = wasm01_zip_bytes(b"\x00asm-cwasm-bytes", EPOCH)
    assert not deflated
    (info,) = entries_of(data)
    assert info.filename == "content" and info.compress_type == zipfile.ZIP_STORED
    assert zipfile.ZipFile(io.BytesIO(data)).read("content") == b"\x00asm-cwasm-bytes"


def test_wasm01_zip_is_deterministic_with_the_epoch_as_its_time():
    a, _ = wasm01_zip_bytes(b"abc", EPOCH)
    b, _ = wasm01_zip_bytes(b"abc", EPOCH)
    assert a == b and a != wasm01_zip_bytes(b"abc", EPOCH + 10)[0]
    assert entries_of(a)[0].date_time == time.gmtime(EPOCH)[:6]


def test_zip_paths_are_per_model_in_the_openwhisk_dir(tmp_path):
    dist = DistLayout(tmp_path)
    assert wasm01_zip_path("m", dist) == tmp_path / "openwhisk" / "m-wasmtime.zip"
    assert exec_zip_path("m", dist) == tmp_path / "openwhisk" / "m-exec.zip"


def test_package_exec_zip_layout(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    dist = DistLayout(tmp_path)
    binary = native_cli_path(cfg.name, dist)
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF" + bytes(5000))
    out = package_exec_zip(cfg, dist)
    assert out == exec_zip_path(cfg.name, dist)
    info, env = entries_of(out.read_bytes())
    assert info.filename == "exec"  # top level: the actionloop proxy runs ./exec
    assert (env.filename, zipfile.ZipFile(out).read("exec.env")) == ("exec.env", f"{EXEC_ENV}\n".encode())
    assert info.compress_type == zipfile.ZIP_DEFLATED
    assert info.external_attr >> 16 == 0o100755  # a regular, executable file
    assert info.date_time == time.gmtime(EPOCH)[:6]
    assert zipfile.ZipFile(out).read("exec") == binary.read_bytes()


def test_package_wasm01_zip_layout(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    dist = DistLayout(tmp_path)
    cwasm = wasm01_cwasm_path(cfg.name, dist)
    cwasm.parent.mkdir(parents=True)
    cwasm.write_bytes(b"ELF-cwasm" * 100)
    out = package_wasm01_zip(cfg, dist)
    assert out == wasm01_zip_path(cfg.name, dist)
    (info,) = entries_of(out.read_bytes())
    assert (info.filename, info.compress_type) == ("content", zipfile.ZIP_STORED)
    assert info.external_attr >> 16 == 0o100644
    assert zipfile.ZipFile(out).read("content") == cwasm.read_bytes()


def test_the_wasm01_zip_and_runtime_take_the_non_simd_snapshot(cfg, tmp_path):
    target = aot_target(WASM01_TARGET)
    assert target.version == "0.23.0" and not target.simd
    dist = DistLayout(tmp_path)
    # the snapshot: the executor makes an instance per activation, which must not parse the model again
    assert wasm01_cwasm_path(cfg.name, dist).name == "classify-nosimd.preinit.wasmtime-0.23.cwasm"
    # what `invoke verify` and `invoke bench` run as wasm01-aot is what the zip carries
    assert Wasm01Aot(cfg, dist).artifact() == wasm01_cwasm_path(cfg.name, dist)


def test_packaging_without_the_build_outputs_says_what_to_run(cfg, tmp_path):
    dist = DistLayout(tmp_path)
    with pytest.raises(StageError, match="missing") as exc:
        package_exec_zip(cfg, dist)
    assert f"invoke build --model {cfg.name}" in exc.value.hint
    with pytest.raises(StageError, match=r"\.cwasm missing"):
        package_wasm01_zip(cfg, dist)
    assert not (tmp_path / "openwhisk").exists() or not any((tmp_path / "openwhisk").iterdir())


def test_artifacts_describe_both_zips(tmp_path):
    dist = DistLayout(tmp_path)
    wasm, exe = artifacts("m", dist)
    assert (wasm.path, wasm.kind, wasm.runtime_version) == (
        wasm01_zip_path("m", dist),
        "openwhisk-wasm-zip",
        aot_target(WASM01_TARGET).version,
    )
    assert (exe.path, exe.kind, exe.runtime) == (exec_zip_path("m", dist), "openwhisk-exec-zip", "openwhisk-actionloop")


def test_code_limit_share_counts_base64_bytes():
    assert code_limit_share(3) == 4 / OPENWHISK_CODE_LIMIT
    assert code_limit_share(4) == 8 / OPENWHISK_CODE_LIMIT  # base64 pads to whole 4-byte groups
    assert code_limit_share(OPENWHISK_CODE_LIMIT * 3 // 4) == 1.0


def test_the_manifest_carries_each_zips_share_of_the_limit(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    dist = DistLayout(tmp_path)
    assert [a.code_limit_share for a in artifacts(cfg.name, dist)] == [None, None]  # nothing built yet
    binary = native_cli_path(cfg.name, dist)
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF" + bytes(5000))
    out = package_exec_zip(cfg, dist)
    exe = artifacts(cfg.name, dist)[1]
    assert exe.code_limit_share == round(len(base64.b64encode(out.read_bytes())) / OPENWHISK_CODE_LIMIT, 4)
    assert exe.entry(dist)["code_limit_share"] == exe.code_limit_share


@pytest.mark.parametrize("share,warned", [(0.5, False), (0.9, False), (0.95, True)])
def test_packaging_warns_above_90_percent_of_the_limit(cfg, tmp_path, monkeypatch, capsys, share, warned):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    dist = DistLayout(tmp_path)
    cwasm = wasm01_cwasm_path(cfg.name, dist)
    cwasm.parent.mkdir(parents=True)
    cwasm.write_bytes(b"x" * 3000)
    zip_size = len(zip_within_code_limit([Entry("content", cwasm.read_bytes())], EPOCH, "t")[0])
    limit = 4 * -(-zip_size // 3) / share  # a limit at which this zip takes exactly `share`
    monkeypatch.setitem(code_limit_share.__globals__, "OPENWHISK_CODE_LIMIT", limit)
    package_wasm01_zip(cfg, dist)
    assert ("warning:" in capsys.readouterr().err) is warned


def test_a_golang_image_checks_exec_env_before_starting_anything(tmp_path):
    """The proxy replay refuses a zip whose exec.env does not name the image (no process is started)."""
    golang = next(i for i in ACTIONLOOP_IMAGES if i.execution_env)
    assert golang.execution_env == EXEC_ENV == "openwhisk/action-golang-v1.23"
    fake_elf = b"\x7fELF" + bytes(64)
    for name, entries in {
        "none": [Entry("exec", fake_elf, 0o755)],
        "other": [Entry("exec", fake_elf, 0o755), Entry("exec.env", b"openwhisk/action-golang-v1.22\n")],
    }.items():
        with pytest.raises(StageError, match="502"):
            init_like_actionloop_proxy(zip_bytes(entries, EPOCH, compress=True), tmp_path / name, golang)

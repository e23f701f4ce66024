"""The model payload a guest carries (issue #15): its layout, the native trailer, and that the toolchain and the
guest (guest/classifier/src/model.rs) agree on the format's constants. Pure functions, no build."""

from __future__ import annotations

import json
import re
import struct

import pytest

from toolchain.build.payload import (
    FORMAT_VERSION,
    MAGIC,
    TRAILER_MAGIC,
    attach_native,
    encode_payload,
    native_trailer,
    payload_header,
)
from toolchain.core.config import DEFAULT_MODEL, REPO_ROOT, load_model_config

MODEL_RS = REPO_ROOT / "guest" / "classifier" / "src" / "model.rs"


@pytest.fixture(scope="module")
def cfg():
    return load_model_config(DEFAULT_MODEL)


def rust_const(name: str) -> str:
    found = re.search(rf"pub const {name}: [^=]+= (.+);", MODEL_RS.read_text())
    assert found, name
    return found.group(1)


def test_the_guest_reads_the_format_the_toolchain_writes():
    assert rust_const("MAGIC") == f'b"{MAGIC.decode()}"'
    assert rust_const("TRAILER_MAGIC") == f'b"{TRAILER_MAGIC.decode()}"'
    assert int(rust_const("FORMAT_VERSION")) == FORMAT_VERSION


def test_the_header_names_exactly_the_fields_the_guest_reads(cfg):
    """model.rs rejects unknown fields (serde deny_unknown_fields), so a renamed key fails at load, not silently."""
    header = payload_header(cfg, 1234)
    rust = MODEL_RS.read_text()
    for key in header:
        assert re.search(rf"pub {key}: ", rust), key
    assert header["labels"][header["label_offset"]] == cfg.label_of(0)
    assert header["input"]["shape"] == list(cfg.input_shape) and header["model_bytes"] == 1234


def test_payload_layout(cfg):
    onnx = b"\x08\x07onnx-bytes"
    data = encode_payload(payload_header(cfg, len(onnx)), onnx)
    assert data[:8] == MAGIC
    version, header_len = struct.unpack("<II", data[8:16])
    assert version == FORMAT_VERSION
    header = json.loads(data[16 : 16 + header_len])
    assert header["model"] == cfg.name and header["model_bytes"] == len(onnx)
    assert data[16 + header_len :] == onnx


def test_the_payload_is_deterministic(cfg):
    onnx = bytes(range(256))
    assert encode_payload(payload_header(cfg, 256), onnx) == encode_payload(payload_header(cfg, 256), onnx)


def test_a_native_guest_is_its_base_then_the_payload_then_the_trailer(tmp_path):
    base, pl = tmp_path / "base", tmp_path / "p"
    base.write_bytes(b"\x7fELF base")
    pl.write_bytes(b"MIBMODEL payload")
    out = attach_native(base, pl, tmp_path / "guest")
    data = out.read_bytes()
    assert data == b"\x7fELF base" + b"MIBMODEL payload" + native_trailer(16)
    assert data[-8:] == TRAILER_MAGIC and struct.unpack("<Q", data[-16:-8])[0] == 16
    assert out.stat().st_mode & 0o111

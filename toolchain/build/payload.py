"""The model payload, and attaching it to the model-independent guest builds (issue #15: one guest build serves
every model; a new model costs no cargo build).

The payload is the one file a guest needs of a model: the ONNX file and the facts the guest reads at run time
(shapes, names, labels, preprocessing, limits) from the model config. The guest reads and validates it
(guest/classifier/src/model.rs holds the format; `FORMAT_VERSION` and the magic numbers here must match it):

    b"MIBMODEL" | u32 format version | u32 header length H | H bytes of header JSON | the ONNX file

Attaching, per variant:
- native: the base executable, then the payload, then a 16-byte trailer (u64 payload length, b"MIBMTAIL"): one
  self-contained file, as the exec zip and the images want it.
- wasm: Wizer (inside the Rust wasm host) runs the base module's `attach-model` export with the payload on
  stdin and snapshots the result: the module starts with the payload in linear memory.
Both are deterministic: the same base and the same payload give the same bytes.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import time
from pathlib import Path

from toolchain.build.guest import install_onnxruntime_library, onnxruntime_wheel_library
from toolchain.core import log
from toolchain.core.artifact import Artifact
from toolchain.core.catalog import (
    VARIANTS,
    WASM_TARGET,
    DistLayout,
    base_native_path,
    base_optimized_wasm_path,
    facts_payload_path,
    host_path,
    native_cli_path,
    onnxruntime_library_path,
    optimized_wasm_path,
    payload_path,
    shipped_variants,
)
from toolchain.core.config import ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import Incremental, atomic_path, digest_inputs, write_atomic

MAGIC = b"MIBMODEL"
FORMAT_VERSION = 1
TRAILER_MAGIC = b"MIBMTAIL"
ATTACH_INIT_FUNC = "attach-model"


def payload_header(cfg: ModelConfig, model_bytes: int) -> dict:
    """The model facts the guest reads (model.rs `Facts`; unknown keys are rejected there)."""
    return {
        "model": cfg.name,
        "input": {"name": cfg.input_name, "shape": list(cfg.input_shape)},
        "output": {"name": cfg.output_name, "classes": cfg.classes, "softmax": cfg.output_is_softmax},
        "labels": cfg.labels(),
        "label_offset": cfg.label_offset,
        "preprocess": {
            "central_crop": cfg.central_crop,
            "resize": cfg.resize,
            "jpeg_decoder": cfg.jpeg_decoder,
            "mean": list(cfg.mean),
            "std": list(cfg.std),
        },
        "limits": {
            "max_image_bytes": cfg.max_image_bytes,
            "max_pixels": cfg.max_pixels,
            "max_side": cfg.max_side,
        },
        "model_bytes": model_bytes,
    }


def encode_payload(header: dict, onnx: bytes) -> bytes:
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return MAGIC + struct.pack("<II", FORMAT_VERSION, len(text)) + text + onnx


def native_trailer(payload_len: int) -> bytes:
    return struct.pack("<Q", payload_len) + TRAILER_MAGIC


def write_payload(cfg: ModelConfig, dist: DistLayout) -> Path:
    onnx_file = dist.onnx(cfg.name)
    if not onnx_file.is_file():
        raise StageError(f"{onnx_file} missing", hint=f"run `invoke convert --model {cfg.name}` first")
    onnx = onnx_file.read_bytes()
    data = encode_payload(payload_header(cfg, len(onnx)), onnx)
    dst = payload_path(cfg.name, dist)
    if not (dst.is_file() and dst.read_bytes() == data):
        write_atomic(dst, data)
    return dst


def write_facts_payload(cfg: ModelConfig, dist: DistLayout) -> Path:
    """The payload of a variant whose engine gets the model elsewhere (wasm-wasinn: the host's ONNX Runtime):
    the same header with no model bytes."""
    data = encode_payload(payload_header(cfg, 0), b"")
    dst = facts_payload_path(cfg.name, dist)
    if not (dst.is_file() and dst.read_bytes() == data):
        write_atomic(dst, data)
    return dst


def attach_native(base: Path, payload: Path, dst: Path) -> Path:
    with atomic_path(dst) as tmp:
        with open(tmp, "wb") as out:
            for part in (base, payload):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)
            out.write(native_trailer(payload.stat().st_size))
        tmp.chmod(0o755)
    return dst


def require_host(dist: DistLayout) -> Path:
    host = host_path(dist)
    if not host.is_file():
        raise StageError(f"{host} missing", hint="run `invoke host` first (Wizer runs inside the wasm host)")
    return host


def run_wizer(dist: DistLayout, mode: str, module: Path, payload: Path, dst: Path) -> Path:
    """`wasm-host attach|preinit MODULE PAYLOAD OUT`: Wizer with the payload on the guest's stdin."""
    host = require_host(dist)
    with atomic_path(dst) as tmp:
        proc = subprocess.run(
            [str(host), mode, str(module), str(payload), str(tmp)], capture_output=True, text=True, timeout=1800
        )
        if proc.returncode != 0:
            raise StageError(f"wizer ({mode}) failed on {module}: {proc.stderr.strip()[-1500:]}")
    return dst


def attach_guests(cfg: ModelConfig, dist: DistLayout, variants: list[str] | None = None) -> list[Path]:
    """Attach the model's payload to every shipped variant's base (or the named ones): dist/guest/<model>/."""
    full_payload = write_payload(cfg, dist)
    chosen = [VARIANTS[v] for v in variants] if variants else shipped_variants()
    outputs = []
    for variant in chosen:
        payload = full_payload if variant.payload_holds_model else write_facts_payload(cfg, dist)
        uses_ort = "ort-engine" in variant.cargo_features
        if variant.is_wasm:
            base, dst = base_optimized_wasm_path(variant.name, dist), optimized_wasm_path(cfg.name, variant.name, dist)
            hint = "run `invoke optimize` first"
            extra_inputs, extra_outputs = [require_host(dist)], []
        else:
            base, dst = base_native_path(variant.name, dist), native_cli_path(cfg.name, dist, variant.name)
            hint = "run `invoke guest` first"
            # the ONNX Runtime library lies next to the guest that loads it: a new wheel replaces it
            extra_inputs = [onnxruntime_wheel_library()] if uses_ort else []
            extra_outputs = [onnxruntime_library_path(cfg.name, dist)] if uses_ort else []
        if not base.is_file():
            raise StageError(f"{base} missing", hint=hint)
        job = Incremental(
            "attach",
            dist.stamp(f"attach-{variant.name}", cfg.name),
            digest_inputs([base, payload, *extra_inputs], {"format": FORMAT_VERSION}),
            (dst, *extra_outputs),
        )
        if not job.up_to_date():
            started = time.perf_counter()
            if variant.is_wasm:
                with log.step(f"wizer {ATTACH_INIT_FUNC} {dst.name} ({cfg.name})"):
                    run_wizer(dist, "attach", base, payload, dst)
            else:
                attach_native(base, payload, dst)
                if uses_ort:
                    install_onnxruntime_library(cfg.name, dist)
            job.record(dist.root, started)
            log.info(
                f"attach: {dst} ({base.stat().st_size:,} + {payload.stat().st_size:,} → {dst.stat().st_size:,} bytes)"
            )
        outputs.append(dst)
    return outputs


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    """The payload, and the optimised wasm bases with it attached (the native ones: build/guest.py)."""
    payload, facts = payload_path(model, dist), facts_payload_path(model, dist)
    return [Artifact(payload, "model-payload", model), Artifact(facts, "model-payload", model)] + [
        Artifact(
            optimized_wasm_path(model, v.name, dist),
            "wasm-opt",
            model,
            target=WASM_TARGET,
            features=v.features,
            base=base_optimized_wasm_path(v.name, dist),
            payload=payload if v.payload_holds_model else facts,
        )
        for v in VARIANTS.values()
        if v.is_wasm
    ]

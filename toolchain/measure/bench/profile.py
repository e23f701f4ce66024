"""Where the time goes, per target: the guests' own per-op profile (`classify --profile N`: tract's ops timed
inside the native binary and inside the wasm module, the same tract as shipped), side by side with the gap per
op, and the guest's split between decode + preprocessing and inference on each target (the same `--bench` run
on an image request and on a tensor request)."""

from __future__ import annotations

import statistics

from toolchain.measure.bench.probes import NativeProbe, Probe, WasmProbe, guest_bench_in_instance
from toolchain.runtimes.guest_base import image_request, tensor_request

# What runs each op kind on each target (tract-linalg / tract-core 0.23.9 sources, guest/Cargo.lock):
# (native x86-64, wasm simd128).
OP_KERNELS = {
    "OptMatMul": (
        "tract-linalg mmm tiles, AVX2/AVX-512 FMA (chosen at run time)",
        "the guest's mib_wasm_f32_4x8 … 4x48 (wasm_matmul.rs) / tract-linalg 4x1-32x1 (gemv), mul + add",
    ),
    "DepthWiseConv": (
        "tract-core depthwise, AVX kernel along contiguous rows (stride 1 only; no FMA)",
        "tract-core depthwise, simd128 kernels (channel-last at any stride)",
    ),
    "OptMatMulPack": ("operand packing (memory bound)", "operand packing (memory bound)"),
    "OptBinChain": ("fused element-wise chain (bias, ReLU6)", "fused element-wise chain, portable Rust"),
    "Mul": ("element-wise (residual scale)", "element-wise, portable Rust (no wasm kernel)"),
    "Add": ("element-wise (residual add)", "element-wise, portable Rust (no wasm kernel)"),
}


def kernels_of(op: str) -> tuple[str, str]:
    return next((v for k, v in OP_KERNELS.items() if op == k or op.startswith(k + "(")), ("other", "other"))


def op_rows(native_ms: dict[str, float], wasm_ms: dict[str, float]) -> list[dict]:
    """One row per op kind that takes at least 0.05 ms on a target, largest first: both targets' ms per
    inference, wasm/native and wasm − native (the op's part of the gap; ops faster in wasm give some back)."""
    rows = []
    for op in sorted(set(native_ms) | set(wasm_ms), key=lambda o: (-max(native_ms.get(o, 0), wasm_ms.get(o, 0)), o)):
        n, w = native_ms.get(op), wasm_ms.get(op)
        if max(n or 0.0, w or 0.0) < 0.05:
            continue
        native_kernel, wasm_kernel = kernels_of(op)
        row: dict = {"op": op, "native_ms": n, "wasm_ms": w, "native_kernel": native_kernel, "wasm_kernel": wasm_kernel}
        if n and w is not None:
            row["wasm_over_native"] = w / n
        if n is not None and w is not None:
            row["gap_ms"] = w - n
        rows.append({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if v is not None})
    return rows


def op_profile(native: Probe | None, wasm: Probe | None, tensor, runs: int = 10) -> dict:
    """Each op kind's ms per inference in the native guest and the wasm guest (`classify --profile N` on the
    golden photo's tensor), side by side."""
    request = tensor_request(tensor)
    native_ms = (native.op_profile(request, runs) or {}) if native else {}
    wasm_ms = (wasm.op_profile(request, runs) or {}) if wasm else {}
    return {
        "runtimes": {"native": native.name if native else None, "wasm": wasm.name if wasm else None},
        "runs": runs,
        "native_total_ms": round(sum(native_ms.values()), 2),
        "wasm_total_ms": round(sum(wasm_ms.values()), 2),
        "ops": op_rows(native_ms, wasm_ms),
    }


def guest_phase_split(probe, image: bytes, tensor, runs: int = 10) -> dict:
    """Median full request (image) and inference-only request (tensor) inside the guest; the difference is
    base64 + decode + crop/resize/normalise."""

    def median_of(request: bytes) -> float:
        if isinstance(probe, NativeProbe):
            saved = probe.request
            probe.request = request
            try:
                return statistics.median(probe.bench(runs)["samples_ms"])
            finally:
                probe.request = saved
        assert isinstance(probe, WasmProbe)
        line = guest_bench_in_instance(probe.rt.engine, probe.rt.module, request, runs)
        return statistics.median(line["samples_ms"])

    full, infer = median_of(image_request(image)), median_of(tensor_request(tensor))
    return {
        "request_ms": round(full, 2),
        "inference_ms": round(infer, 2),
        "decode_preprocess_ms": round(full - infer, 2),
    }

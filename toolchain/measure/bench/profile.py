"""Where the time goes: tract's per-op profile of the model (native, through its PyPI bindings), and the
guest's own split between decode + preprocessing and inference on each target (the same `--bench` run on
an image request and on a tensor request)."""

from __future__ import annotations

import json
from collections import defaultdict

from toolchain.core.catalog import DistLayout
from toolchain.core.config import ModelConfig
from toolchain.measure.bench.probes import NativeProbe, WasmProbe, guest_bench_in_instance
from toolchain.runtimes.guest_base import image_request, tensor_request

# tract op names grouped by what the fast-wasm question needs: which kernels have a wasm SIMD version
# (tract-linalg's wasm module provides the matmul kernel only).
OP_KERNELS = {
    "OptMatMul": "matmul (wasm simd128 kernel)",
    "OptMatMulPack": "matmul operand packing",
    "DepthWiseConv": "depthwise conv (no wasm kernel: scalar on wasm)",
    "LazyIm2col": "im2col",
    "OptBinChain": "fused elementwise (bias, ReLU6)",
}


def kernel_of(op: str) -> str:
    return next((v for k, v in OP_KERNELS.items() if op == k or op.startswith(k + "(")), "other")


def tract_op_profile(cfg: ModelConfig, dist: DistLayout, tensor, repeats: int = 5) -> dict:
    import tract

    model = tract.onnx().load(str(dist.onnx(cfg.name)))
    model.set_input_fact(0, f"{','.join(map(str, cfg.input_shape))},f32")
    plan = model.into_model().into_runnable()
    by_op: dict[str, float] = defaultdict(float)
    for _ in range(repeats):
        for node in json.loads(plan.profile_json([tensor]))["nodes"]:
            by_op[node["op_name"]] += node.get("secs_per_iter", 0.0) * 1e3 / repeats
    total = sum(by_op.values())
    rows = sorted(by_op.items(), key=lambda kv: -kv[1])
    return {
        "engine": "tract (PyPI, native)",
        "total_ms": round(total, 3),
        "ops": [
            {"op": op, "ms": round(ms, 3), "share": round(ms / total, 4), "kernel": kernel_of(op)}
            for op, ms in rows
            if ms > 0
        ],
    }


def guest_phase_split(probe, image: bytes, tensor, runs: int = 10) -> dict:
    """Median full request (image) and inference-only request (tensor) inside the guest; the difference is
    base64 + decode + crop/resize/normalise."""
    import statistics

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

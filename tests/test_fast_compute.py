"""The distance-to-peak arithmetic of the bench (toolchain/measure/bench/compute.py) and the MAC count it
divides (toolchain/build/model_cost.py), on hand-made inputs whose answers are worked out here."""

from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from toolchain.build.model_cost import count_macs
from toolchain.core.isa import AVX2_FMA, AVX512_FMA, SCALAR, SIMD128, SSE2, native_instruction_set
from toolchain.measure.bench.clock import measured_clock_mhz
from toolchain.measure.bench.compute import Cpu, core_peak, distance_to_peak, peaks_of
from toolchain.runtimes import REGISTRY

AMD = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
cpu MHz\t\t: 2596.148
flags\t\t: fpu sse sse2 fma avx avx2 avx512f avx512vl

processor\t: 1
vendor_id\t: AuthenticAMD
cpu MHz\t\t: 1.0
"""
INTEL = AMD.replace("AuthenticAMD", "GenuineIntel").replace("AMD EPYC", "Intel Xeon Processor")


def test_cpuinfo_parse_takes_the_first_processor():
    cpu = Cpu.parse(AMD)
    assert (cpu.model, cpu.vendor, cpu.mhz) == ("AMD EPYC", "AuthenticAMD", 2596.148)
    assert {"avx2", "avx512f"} <= cpu.flags


def test_native_instruction_set_is_the_widest_fma():
    assert native_instruction_set(frozenset({"avx2", "fma", "avx512f"})) == AVX512_FMA
    assert native_instruction_set(frozenset({"avx2", "fma"})) == AVX2_FMA
    assert native_instruction_set(frozenset({"avx2"})) == SSE2


@pytest.mark.parametrize(
    ("cpuinfo", "isa", "macs_per_cycle"),
    [
        (AMD, SCALAR, 2),  # mulss on an FMA pipe, addss on an add pipe, 2 each
        (AMD, SIMD128, 8),  # 4 lanes × (2 multiply pipes + 2 add pipes working together)
        (AMD, AVX2_FMA, 16),  # 8 lanes × 2 FMA pipes
        (AMD, AVX512_FMA, 16),  # Zen 4: a 512-bit op takes both 256-bit pipes
        (INTEL, SCALAR, 1.5),  # multiplies on ports 0 and 1, adds on 1 and 5 (Golden Cove): 3 a cycle
        (INTEL, SIMD128, 6),
        (INTEL, AVX2_FMA, 16),
        (INTEL, AVX512_FMA, 32),
    ],
)
def test_core_peak(cpuinfo, isa, macs_per_cycle):
    peak = core_peak(isa, Cpu.parse(cpuinfo))
    assert peak.macs_per_cycle == macs_per_cycle
    assert peak.gmacs == round(2596.148 * macs_per_cycle / 1e3, 1)
    assert "2596 MHz in /proc/cpuinfo (no clock probe)" in peak.derivation


def test_a_measured_clock_above_cpuinfo_raises_the_peak_and_one_below_does_not():
    """These VMs' cpuinfo says the nominal clock; the peak must hold at the clock the core really ran at."""
    fast = replace(Cpu.parse(INTEL), measured_mhz=3600.0)
    peak = core_peak(AVX512_FMA, fast)
    assert peak.gmacs == round(3600.0 * 32 / 1e3, 1)
    assert "3600 MHz (measured 3600; 2596 MHz in /proc/cpuinfo)" in peak.derivation
    slow = replace(Cpu.parse(INTEL), measured_mhz=2000.0)
    assert core_peak(AVX512_FMA, slow).gmacs == round(2596.148 * 32 / 1e3, 1)


def test_the_clock_probe_measures_this_core():
    """The probe compiles and runs here (gcc, x86-64): a clock no core of this kind is outside, and the
    one the peaks of this machine's bench are built on."""
    mhz = measured_clock_mhz()
    assert mhz is not None and 500 < mhz < 7000, mhz


def test_distance_to_peak_row():
    cpu = Cpu.parse(AMD)
    row = distance_to_peak(582_000_000, 58.2, SIMD128, cpu)
    assert row == {
        "instruction_set": SIMD128.name,
        "gmac_per_s": 10.0,
        "peak_gmac_per_s": 20.8,
        "peak_share": round(10.0 / 20.8, 4),
    }
    assert distance_to_peak(582_000_000, 58.2, None, cpu)["instruction_set"] == AVX512_FMA.name
    assert set(peaks_of([None, SIMD128, None], cpu)) == {AVX512_FMA.name, SIMD128.name}


def test_every_runtime_names_an_instruction_set_or_the_native_one():
    by_name = {r.name: r.instruction_set for r in REGISTRY}
    assert by_name["wasm-aot"] == by_name["wasm-jit"] == by_name["wasm-preinit-aot"] == SIMD128
    assert by_name["wasm01-aot"] == SCALAR
    assert by_name["native-tract"] is None and by_name["onnxruntime-1t"] is None


def test_count_macs_on_a_hand_made_graph(tmp_path):
    """1×3×8×8 → 3×3 conv to 4 channels, stride 1, pad 1 (8·8·4 outputs × 3·3·3 = 6,912) → depthwise 3×3,
    stride 2 (4·4·4 × 9 = 576) → flatten 64 → Gemm to 10 with transB (10 × 64 = 640)."""

    def init(name, shape):
        return numpy_helper.from_array(np.zeros(shape, np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w2"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2], group=4),
        helper.make_node("Flatten", ["b"], ["c"]),
        helper.make_node("Gemm", ["c", "w3"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [init("w1", (4, 3, 3, 3)), init("w2", (4, 1, 3, 3)), init("w3", (10, 64))],
    )
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    assert count_macs(path) == 6_912 + 576 + 640


def test_op_rows_put_each_op_beside_its_part_of_the_gap():
    from toolchain.measure.bench.profile import op_rows

    native = {"OptMatMul": 18.0, "DepthWiseConv": 14.0, "Mul": 2.0, "Source": 0.001}
    wasm = {"OptMatMul": 47.0, "DepthWiseConv": 4.0, "OptBinChain(Max+Min)": 1.0}
    rows = op_rows(native, wasm)
    assert [r["op"] for r in rows] == ["OptMatMul", "DepthWiseConv", "Mul", "OptBinChain(Max+Min)"]
    matmul, depthwise, mul, chain = rows
    assert matmul["gap_ms"] == 29.0
    assert matmul["wasm_over_native"] == round(47 / 18, 3)
    assert depthwise["gap_ms"] == -10.0
    assert "wasm_ms" not in mul and "gap_ms" not in mul  # on one target only: no ratio, no difference
    assert chain["native_kernel"].startswith("fused") and "native_ms" not in chain

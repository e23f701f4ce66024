"""The instruction sets the runtimes' kernels run on, named by each runtime adapter (``Runtime.instruction_set``)
and turned into this machine's peak by the bench (toolchain/measure/bench/compute.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstructionSet:
    name: str
    bits: int  # vector width
    fma: bool  # fused multiply-add: one instruction per multiply-accumulate

    @property
    def lanes(self) -> int:
        return self.bits // 32  # f32 lanes


SCALAR = InstructionSet("scalar f32 (wasm without SIMD)", 32, fma=False)
SIMD128 = InstructionSet("wasm simd128 (no FMA)", 128, fma=False)
SSE2 = InstructionSet("SSE2 (no FMA)", 128, fma=False)
AVX2_FMA = InstructionSet("AVX2 + FMA", 256, fma=True)
AVX512_FMA = InstructionSet("AVX-512F FMA", 512, fma=True)


def native_instruction_set(cpu_flags: frozenset[str]) -> InstructionSet:
    """What tract-linalg, ONNX Runtime's MLAS and TensorFlow pick on this CPU: the widest FMA they have."""
    if "avx512f" in cpu_flags:
        return AVX512_FMA
    if {"avx2", "fma"} <= cpu_flags:
        return AVX2_FMA
    return SSE2

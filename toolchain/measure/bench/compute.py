"""How far each runtime is from this machine's limit: the model's multiply-accumulates per image over the
runtime's warm median (GMAC/s), and that rate as a share of one core's peak for the instruction set its
kernels use (``Runtime.instruction_set``; None = the widest FMA the CPU has, as tract-linalg, MLAS and
TensorFlow choose at run time). The peak is an upper bound: a share above 1 would be a wrong model.

The peak of one core is clock × f32 lanes × multiply-accumulates per lane per cycle:
- clock: the one measured while the bench runs (clock.py), or /proc/cpuinfo's "cpu MHz" if that is higher or
  there is no probe. On these VMs cpuinfo gives the nominal clock: an Intel Xeon said 2600 and ran at ~3600;
- two vector pipes that multiply or fuse multiply-add, as on every x86-64 server core of this kind (Intel since
  Haswell, AMD since Zen 2): with FMA a pipe does a multiply-accumulate per lane per cycle;
- without FMA a multiply-accumulate is a multiply and an add. AMD Zen adds on two more pipes (two per lane per
  cycle). Intel's Golden Cove (Sapphire Rapids on) adds on a third pipe beside the two, so three operations a
  cycle: 1.5 per lane (older Intel cores do one; their share would show below its real value, never above);
- 512-bit vectors: AMD Zen 4 runs each on both 256-bit pipes (AVX2's rate); Intel server cores with two 512-bit
  FMA units double it (those with one, Xeon Bronze/Silver, would show half their real share).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolchain.core.isa import InstructionSet, native_instruction_set

FMA_PIPES = 2


@dataclass(frozen=True)
class Cpu:
    model: str
    vendor: str
    mhz: float  # /proc/cpuinfo's
    flags: frozenset[str]
    measured_mhz: float | None = None  # clock.py's probe, when the bench ran it

    @property
    def clock_mhz(self) -> float:
        """The clock the peak is built on: the higher of the measured and the cpuinfo one."""
        return max(self.mhz, self.measured_mhz or 0.0)

    def clock_source(self) -> str:
        cpuinfo = f"{self.mhz:.0f} MHz in /proc/cpuinfo"
        if self.measured_mhz is None:
            return f"{cpuinfo} (no clock probe)"
        return f"{self.clock_mhz:.0f} MHz (measured {self.measured_mhz:.0f}; {cpuinfo})"

    @classmethod
    def parse(cls, cpuinfo: str) -> Cpu:
        """The first processor's entry of /proc/cpuinfo."""
        fields: dict[str, str] = {}
        for line in cpuinfo.split("\n\n", 1)[0].splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        return cls(
            model=fields.get("model name", "?"),
            vendor=fields.get("vendor_id", "?"),
            mhz=float(fields.get("cpu MHz", "0") or 0),
            flags=frozenset(fields.get("flags", "").split()),
        )

    @classmethod
    def here(cls) -> Cpu:
        return cls.parse(Path("/proc/cpuinfo").read_text())


@dataclass(frozen=True)
class Peak:
    instruction_set: InstructionSet
    macs_per_cycle: float
    gmacs: float  # per second, one core
    derivation: str


def core_peak(isa: InstructionSet, cpu: Cpu) -> Peak:
    amd = cpu.vendor == "AuthenticAMD"
    lanes = isa.lanes
    notes = [cpu.clock_source(), f"{isa.bits}-bit = {lanes} f32 lanes"]
    if amd and isa.bits == 512:
        lanes = 8
        notes.append("AMD runs 512-bit ops on both 256-bit pipes: 8 lanes per pipe-cycle")
    per_lane: float
    if isa.fma:
        per_lane = FMA_PIPES
        notes.append(f"{FMA_PIPES} FMA pipes")
    elif amd:
        per_lane = FMA_PIPES
        notes.append("no FMA: multiplies on 2 pipes, adds on 2 more (AMD Zen)")
    else:
        per_lane = 1.5
        notes.append("no FMA: multiplies and adds on 3 pipes (Intel Golden Cove; 2 before it)")
    macs_per_cycle = lanes * per_lane
    return Peak(isa, macs_per_cycle, round(cpu.clock_mhz * macs_per_cycle / 1e3, 1), ", ".join(notes))


def peak_for(isa: InstructionSet | None, cpu: Cpu) -> Peak:
    """The core peak for a runtime's instruction set (None: the widest FMA this CPU has)."""
    return core_peak(isa or native_instruction_set(cpu.flags), cpu)


def distance_to_peak(macs: int, warm_median_ms: float, isa: InstructionSet | None, cpu: Cpu) -> dict:
    """One runtime's row: GMAC/s at its warm median (the whole request: decoding and preprocessing, 1-3 % of it
    for the guests, are included) and the share of one core's peak for its instruction set."""
    peak = peak_for(isa, cpu)
    gmacs = macs / (warm_median_ms / 1e3) / 1e9
    return {
        "instruction_set": peak.instruction_set.name,
        "gmac_per_s": round(gmacs, 2),
        "peak_gmac_per_s": peak.gmacs,
        "peak_share": round(gmacs / peak.gmacs, 4) if peak.gmacs else 0.0,
    }


def peaks_of(isas: list[InstructionSet | None], cpu: Cpu) -> dict[str, dict]:
    """The peaks the report's rows refer to, each with its derivation."""
    out = {}
    for isa in isas:
        p = peak_for(isa, cpu)
        out[p.instruction_set.name] = {
            "macs_per_cycle": p.macs_per_cycle,
            "gmac_per_s": p.gmacs,
            "derivation": p.derivation,
        }
    return out

"""wasm-opt and strip for the wasm guest bases (model-independent: a model is attached afterwards)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from toolchain.core import log
from toolchain.core.catalog import VARIANTS, DistLayout, base_optimized_wasm_path, base_wasm_path, shipped_variants
from toolchain.core.errors import StageError
from toolchain.core.fsutil import (
    Incremental,
    atomic_path,
    digest_inputs,
)
from toolchain.core.programs import WASM_OPT, WASM_STRIP

# Binaryen 108 predates rustc 1.96's default wasm features, so name them; simd only where the variant has it.
BASE_FEATURES = (
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-multivalue",
    "--enable-reference-types",
)

# Where LLVM leaves an address as `i32.add x C` before a load (in loops its strength reduction rewrote: the k loops of
# tract's matmul kernels), Binaryen folds C into the load's offset only under this assumption: the two differ only
# where x + C wraps past 4 GiB, and no pointer of a Rust guest is within 1 KB of that (memory is capped far below).
# Cranelift then addresses the load in one instruction instead of three (copy, add, zero-extend): wasm:0.1's matmuls
# 203.7 -> 187.9 ms per inference in wasmtime 0.23 (Intel Xeon).
ASSUMPTIONS = ("--low-memory-unused",)


def wasm_opt_flags(variant: str) -> list[str]:
    v = VARIANTS[variant]
    flags = list(BASE_FEATURES)
    if "simd128" in v.features:
        flags.append("--enable-simd")
    if "relaxed-simd" in v.features:
        flags.append("--enable-relaxed-simd")
    return flags


def wasm_opt_arguments(variant: str, level: str | None = None) -> list[str]:
    """Everything wasm-opt is given besides the files (the variant's level unless another is asked for): what it
    runs with, and what the optimised base's digest holds."""
    level = level or VARIANTS[variant].wasm_opt_level
    if level is None:
        raise StageError(f"{variant} is not a wasm variant")
    return [level, *ASSUMPTIONS, *wasm_opt_flags(variant)]


def optimize_wasm(src: Path, dst: Path, variant: str, level: str | None = None) -> Path:
    arguments = wasm_opt_arguments(variant, level)
    wasm_opt, wasm_strip = WASM_OPT.require(), WASM_STRIP.require()
    with atomic_path(dst) as tmp, log.step(f"wasm-opt {arguments[0]} + strip {src.name}"):
        proc = subprocess.run([wasm_opt, *arguments, "-o", str(tmp), str(src)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise StageError(f"wasm-opt failed on {src}: {proc.stderr.strip()[-1500:]}")
        proc = subprocess.run([wasm_strip, str(tmp)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise StageError(f"wasm-strip failed on {src}: {proc.stderr.strip()[-1500:]}")
    log.info(f"optimize: {dst} ({src.stat().st_size:,} → {dst.stat().st_size:,} bytes)")
    return dst


def optimize_guest(dist: DistLayout, variants: list[str] | None = None) -> list[Path]:
    names = (
        [n for n in variants if VARIANTS[n].is_wasm] if variants else [v.name for v in shipped_variants() if v.is_wasm]
    )
    outs = []
    for name in names:
        src = base_wasm_path(name, dist)
        if not src.is_file():
            raise StageError(f"{src} missing", hint="run `invoke guest` first")
        dst = base_optimized_wasm_path(name, dist)
        inputs = digest_inputs([src], {"flags": wasm_opt_arguments(name)})
        job = Incremental("optimize", dist.stamp(f"optimize-{name}", "base"), inputs, (dst,))
        if not job.up_to_date():
            started = time.perf_counter()
            optimize_wasm(src, dst, name)
            job.record(dist.root, started)
        outs.append(dst)
    return outs

"""Pinned versions that are not Python dependencies of the toolchain itself (those live in
requirements.lock). One place, read by every stage and recorded in the manifest."""

import json
from pathlib import Path

ONNX_OPSET = 13

# Runtimes the AOT stage compiles for; each .cwasm is made and checked in a venv with exactly that version.
# "wasmtime-50" is the wasmtime Python package used locally (the same version as the Rust host's crate), with
# epoch interruption: the toolchain's Python runtimes are long-lived and must survive a runaway guest;
# "wasmtime-50-host" is the same for the Rust wasm host, which runs one request per instance and bounds it with a
# watchdog instead, so its code carries no epoch checks (~20-25 % of the guest's time);
# "wasmtime-0.23" is what OpenWhisk's wasm:0.1 executor embeds (no SIMD, default engine config); its .cwasm is
# rewritten after compiling (toolchain/build/cwasm023.py): one address-map entry per function instead of one per
# instruction (trap backtraces then name the function, not the instruction; 17 % of the code limit), and the
# metadata's hash maps in key order (wasmtime 0.23 writes them in random order: the file was not reproducible).
WASMTIME_TARGETS: dict[str, dict[str, str | bool]] = {
    "wasmtime-50": {"pip": "wasmtime==50.0.1", "simd": True, "epoch": True},
    "wasmtime-50-host": {"pip": "wasmtime==50.0.1", "simd": True, "epoch": False},
    "wasmtime-0.23": {"pip": "wasmtime==0.23.0", "simd": False, "epoch": False, "rewritten": True},
}

# The engine settings every .cwasm records (relaxed SIMD, the GC collector): a JSON file
# because the Rust wasm host compiles it in and the wasmtime worker, which imports nothing of the toolchain,
# reads it too. What the Python package's engine can set is applied by ``apply_wasmtime_engine_settings``.
WASMTIME_ENGINE_SETTINGS = Path(__file__).with_name("wasmtime_engine.json")
# wasmtime-py has no collector setting: the C API's default (deferred reference counting) is what it compiles
# with, so the file must name that one (the Rust host sets it explicitly).
_C_API_COLLECTOR = "deferred-reference-counting"


WASMTIME_ENGINE_KEYS = ("relaxed_simd_with_simd", "collector")


def apply_wasmtime_engine_settings(
    config, simd: bool, epoch: bool, settings_file: Path = WASMTIME_ENGINE_SETTINGS
) -> None:
    """Set the shared engine settings and an AOT target's SIMD and deadline (``AotTarget.simd``, ``.epoch``) on a
    ``wasmtime.Config`` (the Python package, version 50)."""
    settings = json.loads(settings_file.read_text())
    settings.pop("why", None)
    if set(settings) != set(WASMTIME_ENGINE_KEYS):
        raise ValueError(f"{settings_file}: keys {sorted(settings)}, expected {sorted(WASMTIME_ENGINE_KEYS)}")
    if settings["collector"] != _C_API_COLLECTOR:
        raise ValueError(f"{settings_file}: wasmtime-py compiles with the {_C_API_COLLECTOR} collector only")
    config.wasm_simd = simd
    config.wasm_relaxed_simd = simd and bool(settings["relaxed_simd_with_simd"])
    config.epoch_interruption = epoch


# Debian's compiler pair (toolchain/core/programs.py) builds both native and wasm (rustup cannot add targets here).
# What Cargo.lock and the measurements were made with. Debian's rustc-web follows security updates, so it
# cannot be pinned by apt; a build with another version warns (toolchain/build/guest.py).
RUSTC_EXPECTED = "rustc 1.96.0"

# The Rust wasm host (guest/host) embeds the wasmtime crate at the Python package's major version (50), which
# needs rustc >= 1.97: Debian's is 1.96, so it is built with the rustup nightly installed on these machines.
HOST_TOOLCHAIN = "nightly"
HOST_RUSTC_EXPECTED = "1.97.0-nightly"

# C code compiled by build scripts (mimalloc) embeds __DATE__/__TIME__, which GCC takes from SOURCE_DATE_EPOCH.
# Cargo builds get this constant rather than the commit time: cc-based build scripts rerun when it changes.
CARGO_SOURCE_DATE_EPOCH = "0"

# cargo-fuzz, installed with the rustup nightly by `invoke fuzz` (toolchain/measure/fuzz.py).
CARGO_FUZZ_VERSION = "0.13.2"
# cargo-deny, installed by `invoke audit` (toolchain/measure/audit.py): licences, bans and sources, offline.
CARGO_DENY_VERSION = "0.20.2"

"""Pinned versions that are not Python dependencies of the toolchain itself (those live in
requirements.lock). One place, read by every stage and recorded in the manifest."""

ONNX_OPSET = 13

# Runtimes the AOT stage compiles for; each .cwasm is made and checked in a venv with exactly that version.
# "wasmtime-50" is the wasmtime Python package used locally (the same version as the Rust host's crate);
# "wasmtime-0.23" is what OpenWhisk's wasm:0.1 executor embeds (no SIMD, default engine config).
WASMTIME_TARGETS: dict[str, dict[str, str | bool]] = {
    "wasmtime-50": {"pip": "wasmtime==50.0.1", "simd": True},
    "wasmtime-0.23": {"pip": "wasmtime==0.23.0", "simd": False},
}

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

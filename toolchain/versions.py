"""Pinned versions that are not Python dependencies of the toolchain itself (those live in
requirements.lock). One place, read by every stage and recorded in the manifest."""

ONNX_OPSET = 13

# Runtimes the AOT stage compiles for; each .cwasm is made and checked in a venv with exactly that version.
# "pypi" is the current wasmtime Python package used locally (same major as the Rust host crate);
# "openwhisk-wasm-0.1" is what OpenWhisk's wasm:0.1 executor embeds (no SIMD, default engine config).
WASMTIME_TARGETS = {
    "wasmtime-50": {"pip": "wasmtime==50.0.1", "simd": True},
    "wasmtime-0.23": {"pip": "wasmtime==0.23.0", "simd": False},
}

# Debian's compiler pair used for both native and wasm builds (rustup cannot add targets here).
RUSTC = "/usr/bin/rustc"
CARGO = "/usr/bin/cargo"
# What Cargo.lock and the measurements were made with. Debian's rustc-web follows security updates, so it
# cannot be pinned by apt; a build with another version warns (toolchain/guest.py).
RUSTC_EXPECTED = "rustc 1.96.0"

# The Rust wasm host (guest/host) embeds the wasmtime crate at the Python package's major version (50), which
# needs rustc >= 1.97: Debian's is 1.96, so it is built with the rustup nightly installed on these machines.
HOST_TOOLCHAIN = "nightly"
HOST_RUSTC_EXPECTED = "1.97.0-nightly"

# Wizer, the wasm pre-initialiser: the prebuilt Linux binary from npm, pinned by version and digest.
WIZER_NPM = "@bytecodealliance/wizer-linux-x64@11.0.3"
WIZER_SHA256 = "a081ff0c2f2689e84680189d1a17b3369bab8c8c04490c5ee8179cba44a34a98"

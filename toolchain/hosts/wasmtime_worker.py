"""Runs under a venv holding exactly one wasmtime version (stdlib + wasmtime only; works with 0.23 and 50).

  python wasmtime_worker.py serialize IN.wasm OUT.cwasm [--simd] [--cpu-flag F ...]
      compile ahead of time with that version; with --cpu-flag, for a declared CPU baseline
  python wasmtime_worker.py serve-abi MODULE.cwasm [--simd] [--cpu-flag F ...]
      the OpenWhisk wasm:0.1 executor's call sequence, one request JSON per stdin line → one answer per
      stdout line: a fresh instance; wasm_memory_buffer_allocate_space(len); the params JSON written at
      get_wasm_memory_buffer_pointer(); _start with argv = [len] (no program name); then the answer read
      from get_wasm_memory_buffer_pointer()/get_wasm_memory_buffer_len().
"""

from __future__ import annotations

import ctypes
import json
import sys

import wasmtime

OLD_API = not hasattr(wasmtime.Store, "set_wasi")  # 0.23: Store-bound linker and WasiInstance


def make_engine(simd: bool, cpu_flags: list[str]):
    config = wasmtime.Config()
    config.wasm_simd = simd
    if cpu_flags:
        config.target = "x86_64-unknown-linux-gnu"
        for flag in cpu_flags:
            config.cranelift_flag_enable(flag)
    return wasmtime.Engine(config)


def instantiate(engine, module, argv: list[str]):
    wasi = wasmtime.WasiConfig()
    wasi.argv = argv
    store = wasmtime.Store(engine)
    if OLD_API:
        linker = wasmtime.Linker(store)
        linker.define_wasi(wasmtime.WasiInstance(store, "wasi_snapshot_preview1", wasi))
        instance = linker.instantiate(module)
        exports = instance.exports
        return store, (lambda name: exports[name]), (lambda f, *a: f(*a))
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, module)
    exports = instance.exports(store)
    return store, (lambda name: exports[name]), (lambda f, *a: f(store, *a))


def memory_view(store, memory):
    if OLD_API:
        return memory.data_ptr(), memory.data_len()
    return memory.data_ptr(store), memory.data_len(store)


def call_abi(engine, module, params: bytes) -> bytes:
    store, export, call = instantiate(engine, module, [str(len(params))])
    call(export("wasm_memory_buffer_allocate_space"), len(params))
    ptr = call(export("get_wasm_memory_buffer_pointer"))
    base, size = memory_view(store, export("memory"))
    if ptr < 0 or ptr + len(params) > size:
        raise RuntimeError(f"buffer at {ptr} (+{len(params)}) is outside memory of {size} bytes")
    ctypes.memmove(ctypes.addressof(base.contents) + ptr, params, len(params))
    try:
        call(export("_start"))
    except wasmtime.ExitTrap as exc:  # newer API: proc_exit is an ExitTrap
        if exc.code != 0:
            raise
    except wasmtime.Trap as exc:  # 0.23: proc_exit(0) is reported as a trap with exit status 0
        if "exit status 0" not in str(exc):
            raise
    ptr = call(export("get_wasm_memory_buffer_pointer"))
    length = call(export("get_wasm_memory_buffer_len"))
    base, size = memory_view(store, export("memory"))
    if ptr < 0 or length < 0 or ptr + length > size:
        raise RuntimeError(f"answer buffer at {ptr} (+{length}) is outside memory of {size} bytes")
    return ctypes.string_at(ctypes.addressof(base.contents) + ptr, length)


def main(argv: list[str]) -> int:
    cmd, path, rest = argv[0], argv[1], argv[2:]
    simd = "--simd" in rest
    cpu_flags = [rest[i + 1] for i, a in enumerate(rest) if a == "--cpu-flag"]
    engine = make_engine(simd, cpu_flags)
    if cmd == "serialize":
        with open(path, "rb") as f:
            module = wasmtime.Module(engine, f.read())
        with open(rest[0], "wb") as f:
            f.write(module.serialize())
        return 0
    if cmd == "serve-abi":
        with open(path, "rb") as f:
            module = wasmtime.Module.deserialize(engine, f.read())
        for line in sys.stdin.buffer:
            try:
                answer = json.loads(call_abi(engine, module, line.rstrip(b"\n")))
            except Exception as exc:  # a trap or a contract break: report it, keep serving
                answer = {"host_error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
        return 0
    print(f"unknown command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

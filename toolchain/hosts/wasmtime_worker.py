"""Runs under a venv holding exactly one wasmtime version (stdlib + wasmtime only; works with 0.23 and 50).

python wasmtime_worker.py serialize IN.wasm OUT.cwasm [--simd] [--epoch] [--target TRIPLE --cpu-flag F ...]
    compile ahead of time with that version; with --target and --cpu-flag, for a declared CPU baseline
    (the arguments come from toolchain/core/catalog.py's AotTarget.worker_args: the triple is written there)
python wasmtime_worker.py serve MODULE.cwasm|MODULE.wasm [--simd] [--epoch] [--target TRIPLE --cpu-flag F ...]
    one job per stdin line, {"mode": "abi" | "cli", "request_b64": …}, one answer per stdout line:
    abi: the OpenWhisk wasm:0.1 executor's call sequence: a fresh instance;
         wasm_memory_buffer_allocate_space(len); the params JSON written at
         get_wasm_memory_buffer_pointer(); _start with argv = [len] (no program name); the answer read
         from get_wasm_memory_buffer_pointer()/get_wasm_memory_buffer_len() → {"abi": answer}
    cli: the same module as a WASI command, argv = [classify, --debug], request on stdin
         → {"exit": code, "stdout": text}
    profile: the same with argv = [classify, --profile, N] ({"runs": N} in the job)
         → {"exit": code, "stdout": text, "stderr": text} (the per-op line is on stderr)
    Every answer also carries "ms": the job's wall time; the first also "phases_ms": interpreter +
    `import wasmtime`, deserialize, since this script started (for the benchmark's cold-start phases).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # phases of a cold start are reported relative to this (see `serve`)

import base64  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import wasmtime  # noqa: E402

IMPORTED = time.perf_counter()

OLD_API = not hasattr(wasmtime.Store, "set_wasi")  # 0.23: Store-bound linker and WasiInstance


DEADLINE_TICKS = 120  # seconds per call: the engine's epoch advances once a second (see make_engine)
EPOCH = False  # --epoch: the .cwasm has epoch checks, and calls get the deadline above; else none (as wasm:0.1)


def _tick(engine) -> None:
    import threading

    def run():
        while True:
            time.sleep(1)
            engine.increment_epoch()

    threading.Thread(target=run, daemon=True).start()


# The engine settings every .cwasm records, shared with the Python runtimes and the Rust host (read there by
# toolchain/core/versions.py and compiled into guest/host/src/main.rs): this script imports nothing of the
# toolchain, so it reads the file itself, as strictly as they do.
ENGINE_SETTINGS = Path(__file__).resolve().parent.parent / "core" / "wasmtime_engine.json"


def make_engine(simd: bool, epoch: bool, cpu_flags: list[str], target: str | None):
    config = wasmtime.Config()
    config.wasm_simd = simd
    if not OLD_API:  # wasmtime 0.23 (wasm:0.1) has none of these settings: its default engine it is
        settings = json.loads(ENGINE_SETTINGS.read_text())
        settings.pop("why", None)
        if set(settings) != {"relaxed_simd_with_simd", "collector"}:
            raise SystemExit(f"{ENGINE_SETTINGS}: unknown or missing keys in {sorted(settings)}")
        if settings["collector"] != "deferred-reference-counting":  # wasmtime-py cannot set another
            raise SystemExit(f"{ENGINE_SETTINGS}: wasmtime-py compiles with deferred-reference-counting only")
        config.wasm_relaxed_simd = simd and bool(settings["relaxed_simd_with_simd"])
        config.epoch_interruption = epoch  # the deadline of long-lived hosts (catalog.AotTarget.epoch)
    if cpu_flags:
        if target is None:
            raise SystemExit("--cpu-flag needs --target")
        config.target = target
        for flag in cpu_flags:
            config.cranelift_flag_enable(flag)
    engine = wasmtime.Engine(config)
    if epoch and not OLD_API:
        _tick(engine)
    return engine


def instantiate(
    engine, module, argv: list[str], stdin: str | None = None, stdout: str | None = None, stderr: str | None = None
):
    wasi = wasmtime.WasiConfig()
    wasi.argv = argv
    if stdin:
        wasi.stdin_file = stdin
    if stdout:
        wasi.stdout_file = stdout
    if stderr:
        wasi.stderr_file = stderr
    store = wasmtime.Store(engine)
    if OLD_API:
        linker = wasmtime.Linker(store)
        linker.define_wasi(wasmtime.WasiInstance(store, "wasi_snapshot_preview1", wasi))
        instance = linker.instantiate(module)
        exports = instance.exports
        return store, (lambda name: exports[name]), (lambda f, *a: f(*a))
    store.set_wasi(wasi)
    if EPOCH:
        store.set_epoch_deadline(DEADLINE_TICKS)  # a runaway guest traps instead of hanging the worker
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, module)
    exports = instance.exports(store)
    return store, (lambda name: exports[name]), (lambda f, *a: f(store, *a))


def memory_view(store, memory):
    if OLD_API:  # 0.23: data_ptr is a property, data_len a method
        ptr, size = memory.data_ptr, memory.data_len
        return (ptr() if callable(ptr) else ptr), (size() if callable(size) else size)
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
    except (wasmtime.ExitTrap, wasmtime.Trap) as exc:  # proc_exit(0) is a trap in 0.23, an ExitTrap later
        if exit_code(exc) != 0:
            raise
    ptr = call(export("get_wasm_memory_buffer_pointer"))
    length = call(export("get_wasm_memory_buffer_len"))
    base, size = memory_view(store, export("memory"))
    if ptr < 0 or length < 0 or ptr + length > size:
        raise RuntimeError(f"answer buffer at {ptr} (+{length}) is outside memory of {size} bytes")
    return ctypes.string_at(ctypes.addressof(base.contents) + ptr, length)


def exit_code(exc) -> int | None:
    """The WASI exit status carried by a trap (newer API: ExitTrap.code; 0.23: text "exit status N")."""
    if hasattr(exc, "code") and isinstance(exc.code, int):
        return exc.code
    text = str(exc)
    if "exit status " in text:
        try:
            return int(text.split("exit status ")[1].split()[0].strip(".,:"))
        except ValueError:
            return None
    return None


def call_cli(engine, module, request: bytes, args: list[str]) -> dict:
    """The module as a WASI command with `args`: its exit status, stdout and stderr."""
    with tempfile.TemporaryDirectory(prefix="mib-worker-") as tmp:
        stdin, stdout, stderr = (os.path.join(tmp, name) for name in ("in", "out", "err"))
        with open(stdin, "wb") as f:
            f.write(request)
        open(stdout, "wb").close()
        open(stderr, "wb").close()
        store, export, call = instantiate(engine, module, ["classify", *args], stdin, stdout, stderr)
        code = 0
        try:
            call(export("_start"))
        except (wasmtime.ExitTrap, wasmtime.Trap) as exc:
            code = exit_code(exc)
            if code is None:
                raise
        with open(stdout, "rb") as out, open(stderr, "rb") as err:
            return {
                "exit": code,
                "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace"),
            }


def main(argv: list[str]) -> int:
    cmd, path, rest = argv[0], argv[1], argv[2:]
    global EPOCH
    simd, EPOCH = "--simd" in rest, "--epoch" in rest
    cpu_flags = [rest[i + 1] for i, a in enumerate(rest) if a == "--cpu-flag"]
    target = next((rest[i + 1] for i, a in enumerate(rest) if a == "--target"), None)
    engine = make_engine(simd, EPOCH, cpu_flags, target)
    if cmd == "serialize":
        with open(path, "rb") as f:
            module = wasmtime.Module(engine, f.read())
        with open(rest[0], "wb") as f:
            f.write(module.serialize())
        return 0
    if cmd == "serve":
        t = time.perf_counter()
        with open(path, "rb") as f:
            data = f.read()
        # a .wasm is compiled here (JIT); a .cwasm was compiled ahead of time for this version
        module = wasmtime.Module(engine, data) if path.endswith(".wasm") else wasmtime.Module.deserialize(engine, data)
        phases = {"import_wasmtime": (IMPORTED - STARTED) * 1e3, "load_module": (time.perf_counter() - t) * 1e3}
        for line in sys.stdin.buffer:
            job = json.loads(line)
            request = base64.b64decode(job["request_b64"])
            t = time.perf_counter()
            try:
                if job["mode"] == "abi":
                    answer = {"abi": json.loads(call_abi(engine, module, request))}
                elif job["mode"] == "profile":
                    answer = call_cli(engine, module, request, ["--profile", str(int(job["runs"]))])
                else:
                    answer = call_cli(engine, module, request, ["--debug"])
            except Exception as exc:  # a trap or a contract break: report it, keep serving
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                answer = {"host_error": f"{type(exc).__name__}: {first}"}
            answer["ms"] = (time.perf_counter() - t) * 1e3
            if phases:
                answer["phases_ms"], phases = phases, None
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
        return 0
    print(f"unknown command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The wasm guest under the wasmtime Python package: JIT from the optimised module, or AOT from a .cwasm.

Each request gets a fresh instance (WASI command: one `_start` per instance), as a serverless executor
does. The sandbox: no preopened directories, no environment, a memory cap and a deadline.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from pathlib import Path

from toolchain.build.host import host_command
from toolchain.core.catalog import (
    HOST_AOT_TARGET,
    NATIVE_TARGET,
    PYTHON_AOT_TARGET,
    WASINN_VARIANT,
    AotTarget,
    DistLayout,
    aot_target,
    base_optimized_wasm_path,
    base_wasm_path,
    cwasm_path,
    host_path,
    onnxruntime_library_path,
    optimized_wasm_path,
    preinit_cwasm_path,
    preinit_path,
    wasinn_cwasm_path,
)
from toolchain.core.errors import StageError
from toolchain.core.isa import SIMD128
from toolchain.core.versions import apply_wasmtime_engine_settings
from toolchain.runtimes.guest_base import GuestRuntime
from toolchain.runtimes.native_cli import parse_cli_answer

MEMORY_LIMIT_BYTES = 1 << 30
DEADLINE_S = 120.0


def _attached_module_chain(model: str, variant: str, dist: DistLayout) -> list[Path]:
    """What a wasm runtime's module is built from: the cargo build of ``variant``, its wasm-opt output, and that
    with the model's payload attached."""
    return [
        base_wasm_path(variant, dist),
        base_optimized_wasm_path(variant, dist),
        optimized_wasm_path(model, variant, dist),
    ]


def make_engine(simd: bool, cpu_flags: tuple[str, ...] | None = None):
    """An engine for the guest; ``cpu_flags`` pins a declared x86-64 baseline instead of the host's CPU. Always with
    epoch interruption: this process is long-lived and must survive a runaway guest (``DEADLINE_S``), so the
    .cwasm it loads is compiled for that (``PYTHON_AOT_TARGET``)."""
    import wasmtime

    config = wasmtime.Config()
    apply_wasmtime_engine_settings(config, simd, epoch=True)  # as the AOT stage compiled the .cwasm
    if cpu_flags is not None:
        config.target = NATIVE_TARGET
        for flag in cpu_flags:
            config.cranelift_flag_enable(flag)
    return wasmtime.Engine(config)


def run_command(engine, module, request: bytes, argv: list[str], who: str) -> dict:
    """Run one WASI command instance: request on stdin, answer on stdout; traps become error answers."""
    import wasmtime

    with tempfile.TemporaryDirectory(prefix="mib-wasm-") as tmp:
        stdin, stdout, stderr = Path(tmp, "in"), Path(tmp, "out"), Path(tmp, "err")
        stdin.write_bytes(request)
        wasi = wasmtime.WasiConfig()
        wasi.argv = argv
        wasi.stdin_file = str(stdin)
        wasi.stdout_file = str(stdout)
        wasi.stderr_file = str(stderr)
        store = wasmtime.Store(engine)
        store.set_wasi(wasi)
        store.set_limits(memory_size=MEMORY_LIMIT_BYTES)
        store.set_epoch_deadline(1)
        timer = threading.Timer(DEADLINE_S, engine.increment_epoch)
        timer.start()
        code = 0
        try:
            linker = wasmtime.Linker(engine)
            linker.define_wasi()
            instance = linker.instantiate(store, module)
            start = instance.exports(store)["_start"]
            assert isinstance(start, wasmtime.Func)
            start(store)
        except wasmtime.ExitTrap as exc:
            code = exc.code
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return {"error": f"{who}: the guest trapped ({first}); the request was not classified"}
        finally:
            timer.cancel()
        return parse_cli_answer(code, stdout.read_bytes(), stderr.read_bytes(), who)


class WasmJit(GuestRuntime):
    name = "wasm-jit"
    description = "wasm guest (SIMD, optimised), wasmtime-py JIT, an instance per request"
    variant = "wasm-simd"
    instruction_set = SIMD128

    def artifact(self) -> Path:
        return optimized_wasm_path(self.cfg.name, self.variant, self.dist)

    def built_from(self) -> list[Path]:
        return _attached_module_chain(self.cfg.name, self.variant, self.dist)

    def unavailable_reason(self):
        path = self.artifact()
        return None if path.is_file() else f"{path} missing: run `invoke build`"

    def load(self) -> None:
        if getattr(self, "module", None) is None:
            import wasmtime

            self.engine = make_engine(simd=True)
            self.module = wasmtime.Module.from_file(self.engine, str(self.artifact()))

    def host_artifact(self) -> Path:
        """What the Rust wasm host runs for this runtime (bench's cold starts, fresh instances and warm loop): the
        optimised module, compiled by the host for this CPU."""
        return self.artifact()

    def call(self, request: bytes, debug: bool = False) -> dict:
        self.load()
        return run_command(self.engine, self.module, request, ["classify"] + (["--debug"] if debug else []), self.name)


class CwasmArtifact(GuestRuntime):
    """Runtimes whose artifact is the `.cwasm` made for one target wasmtime version (``target``), of the optimised
    module or, with ``preinitialised``, of its Wizer snapshot (instances start with the model loaded)."""

    target = ""
    preinitialised = False

    def aot_target_spec(self) -> AotTarget:
        return aot_target(self.target)

    def artifact(self) -> Path:
        path = preinit_cwasm_path if self.preinitialised else cwasm_path
        return path(self.cfg.name, self.aot_target_spec(), self.dist)

    def host_artifact(self) -> Path:
        """The same module compiled for the Rust host's AOT target: no epoch checks (the host bounds an instance
        with a watchdog), so it cannot load here and this one cannot load there."""
        path = preinit_cwasm_path if self.preinitialised else cwasm_path
        return path(self.cfg.name, aot_target(HOST_AOT_TARGET), self.dist)

    def built_from(self) -> list[Path]:
        variant = self.aot_target_spec().variant
        snapshot = [preinit_path(self.cfg.name, variant, self.dist)] if self.preinitialised else []
        return [*_attached_module_chain(self.cfg.name, variant, self.dist), *snapshot, self.artifact()]

    def unavailable_reason(self):
        path = self.artifact()
        if path.is_file():
            return None
        why = " (preinit runs Wizer inside the Rust wasm host, which needs the rustup nightly)"
        return f"{path} missing: run `invoke build`" + (why if self.preinitialised else "")


class WasmAot(CwasmArtifact, WasmJit):
    """The `.cwasm` for the current wasmtime Python package, loaded under an engine pinned to its baseline."""

    name = "wasm-aot"
    description = "wasm guest (SIMD), AOT .cwasm for wasmtime-py, an instance per request"
    target = PYTHON_AOT_TARGET

    def load(self) -> None:
        if getattr(self, "module", None) is None:
            import wasmtime

            target = self.aot_target_spec()
            self.engine = make_engine(simd=target.simd, cpu_flags=target.cpu_flags)
            try:
                self.module = wasmtime.Module.deserialize_file(self.engine, str(self.artifact()))
            except wasmtime.WasmtimeError as exc:
                raise StageError(
                    f"{self.artifact()} does not load under wasmtime {target.version} configured for "
                    f"{target.cpu_baseline}: {str(exc).strip().splitlines()[-1]}",
                    hint="rebuild it with `invoke aot`",
                ) from exc


class WasmPreinitAot(WasmAot):
    """The Wizer-pre-initialised SIMD module's `.cwasm`: instances start with the model already loaded."""

    name = "wasm-preinit-aot"
    description = "pre-initialised wasm guest (Wizer snapshot, SIMD), AOT .cwasm, an instance per request"
    preinitialised = True


class WasmWasinn(GuestRuntime):
    """The wasi-nn module in the Rust wasm host: the guest parses, decodes and preprocesses the request inside the
    sandbox and hands its input tensor to the host's ONNX Runtime (the pinned wheel's library) over wasi-nn; a
    fresh host process per request. Only that host offers wasi-nn (wasmtime-py cannot)."""

    name = "wasm-wasinn"
    description = "wasm guest (SIMD) inferring through wasi-nn: ONNX Runtime in the Rust host, a process per request"
    instruction_set = None  # the model runs natively, in ONNX Runtime

    def artifact(self) -> Path:
        return wasinn_cwasm_path(self.cfg.name, self.dist)

    def built_from(self) -> list[Path]:
        return [*_attached_module_chain(self.cfg.name, WASINN_VARIANT, self.dist), self.artifact()]

    def unavailable_reason(self):
        needed = (
            (host_path(self.dist), "invoke host"),
            (self.artifact(), "invoke build"),
            (onnxruntime_library_path(self.cfg.name, self.dist), "invoke build (the native-ort guest installs it)"),
        )
        return next((f"{path} missing: run `{how}`" for path, how in needed if not path.is_file()), None)

    def host_args(self) -> list[str]:
        """The model the host loads into ONNX Runtime and the library it loads it with."""
        return [
            "--nn-model",
            str(self.dist.onnx(self.cfg.name)),
            "--ort-library",
            str(onnxruntime_library_path(self.cfg.name, self.dist)),
        ]

    def host_argv(self, mode: str, *extra: str) -> list[str]:
        """`wasm-host MODE` for this module with its model offered over wasi-nn (``extra``: host options)."""
        return host_command(self.dist, mode, self.artifact(), *self.host_args(), *extra)

    def call(self, request: bytes, debug: bool = False) -> dict:
        argv = self.host_argv("run", "--timeout-s", str(int(DEADLINE_S)))
        proc = subprocess.run(
            [*argv, "--", *(["--debug"] if debug else [])], input=request, capture_output=True, timeout=DEADLINE_S + 30
        )
        return parse_cli_answer(proc.returncode, proc.stdout, proc.stderr, self.name)

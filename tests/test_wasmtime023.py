"""The rewrite of the wasm:0.1 `.cwasm` (toolchain/build/cwasm023.py) in wasmtime 0.23 itself. With address maps
cut, the module still loads, runs, and has its traps caught as wasm traps (the trap tables are intact), each frame
still naming its function, located at the function's start instead of the trapping instruction. With its hash maps
in key order, two compilations give the same bytes, and the module still reads its passive segments and names its
functions. `invoke verify` and tests/test_guest.py run the shipped guest rewritten this way."""

import json
import subprocess

from toolchain.build.aot import WORKER
from toolchain.build.cwasm023 import address_map_entries, drop_address_maps, rewrite
from toolchain.build.venvs import runtime_python
from toolchain.core.catalog import WASM01_TARGET

WAT = """
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "wasm:0.1 data segment")
  (func (export "read") (result i32) (i32.load8_u (i32.const 16)))
  (func (export "unreachable") (result i32) (i32.add (i32.const 1) (unreachable)))
  (func (export "out_of_bounds") (result i32) (i32.load (i32.const 0x7fff0000)))
)
"""

RUN = """
import json, sys, wasmtime
engine = wasmtime.Engine()
module = wasmtime.Module.deserialize(engine, open(sys.argv[1], "rb").read())
instance = wasmtime.Instance(wasmtime.Store(engine), module, [])
out = {}
for name in ("read", "unreachable", "out_of_bounds"):
    try:
        out[name] = instance.exports[name]()
    except wasmtime.Trap as trap:
        frames = [(f.func_index, f.module_offset, f.func_offset) for f in trap.frames]
        out[name] = {"trap": str(trap).splitlines()[0], "frames": frames}
print(json.dumps(out))
"""


def _compiled(tmp_path, wat: str, name: str = "m"):
    """The module, and wasmtime 0.23's `.cwasm` of it as the AOT stage makes it (its worker's `serialize`)."""
    python = str(runtime_python(WASM01_TARGET))
    module = tmp_path / f"{name}.wasm"
    convert = "import sys, wasmtime; open(sys.argv[1], 'wb').write(wasmtime.wat2wasm(sys.stdin.read()))"
    subprocess.run([python, "-c", convert, str(module)], input=wat, text=True, check=True)
    compiled = tmp_path / f"{name}.cwasm"
    subprocess.run([python, str(WORKER), "serialize", str(module), str(compiled)], check=True)
    return module, compiled


def _run(path, script: str = RUN):
    proc = subprocess.run([str(runtime_python(WASM01_TARGET)), "-c", script, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # a trap wasmtime did not recognise would kill the process
    return json.loads(proc.stdout)


def test_a_module_without_address_maps_runs_and_traps_as_wasm_in_wasmtime_0_23(tmp_path):
    module, compiled = _compiled(tmp_path, WAT)
    rewritten = drop_address_maps(compiled.read_bytes(), module.read_bytes())
    assert address_map_entries(compiled.read_bytes(), module.read_bytes()) != [1, 1, 1]  # there was more to cut
    assert address_map_entries(rewritten, module.read_bytes()) == [1, 1, 1]
    (tmp_path / "r.cwasm").write_bytes(rewritten)

    full, cut = _run(compiled), _run(tmp_path / "r.cwasm")
    assert cut["read"] == full["read"] == ord("w")
    for name, index, message in (("unreachable", 1, "unreachable"), ("out_of_bounds", 2, "out of bounds")):
        assert message in cut[name]["trap"] and cut[name]["trap"] == full[name]["trap"]
        [(func, at, into)] = full[name]["frames"]
        assert func == index and into > 0  # full maps: the trapping instruction, some way into the function
        # cut maps: the same function, located at its start (the instruction's offset minus its distance into it)
        assert cut[name]["frames"] == [[index, at - into, 0]]


# Like the guest: many empty passive segments (the guest has 1,516), one that is not empty, and named functions.
ORDERED_WAT = (
    """
(module
  (memory (export "memory") 1)
  (func $copy_passive (export "copy_passive") (result i32)
    (memory.init 40 (i32.const 64) (i32.const 0) (i32.const 5))
    (i32.load8_u (i32.const 68)))
  (func $fail (export "fail") (result i32) (unreachable))
  (func $third (result i32) (i32.const 3))
"""
    + '  (data "")\n' * 40
    + """  (data "hello")
  (data (i32.const 16) "active")
)
"""
)

RUN_ORDERED = """
import json, sys, wasmtime
engine = wasmtime.Engine()
module = wasmtime.Module.deserialize(engine, open(sys.argv[1], "rb").read())
instance = wasmtime.Instance(wasmtime.Store(engine), module, [])
out = {"copy_passive": instance.exports["copy_passive"]()}
try:
    instance.exports["fail"]()
except wasmtime.Trap as trap:
    out["fail"] = [f.func_name for f in trap.frames]
print(json.dumps(out))
"""


def test_two_compilations_give_the_same_bytes_once_the_maps_are_in_key_order(tmp_path):
    module, first = _compiled(tmp_path, ORDERED_WAT, "a")
    _, second = _compiled(tmp_path, ORDERED_WAT, "b")
    assert first.read_bytes() != second.read_bytes()  # wasmtime 0.23 writes its hash maps in random order
    ordered = [rewrite(path.read_bytes(), module.read_bytes()) for path in (first, second)]
    assert ordered[0] == ordered[1]
    (tmp_path / "o.cwasm").write_bytes(ordered[0])
    assert (
        _run(tmp_path / "o.cwasm", RUN_ORDERED)
        == _run(first, RUN_ORDERED)
        == {
            "copy_passive": ord("o"),  # "hello"[4], from the 41st segment, the one that is not empty
            "fail": ["fail"],
        }
    )

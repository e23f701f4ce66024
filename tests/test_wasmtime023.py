"""The address-map rewrite of the wasm:0.1 `.cwasm` (toolchain/build/cwasm023.py) in wasmtime 0.23 itself: the
rewritten module still loads, runs, and has its traps caught as wasm traps (the trap tables are intact), each
frame still naming its function, located at the function's start instead of the trapping instruction. `invoke verify` and tests/test_guest.py run the shipped guest rewritten this way."""

import json
import subprocess

from toolchain.build.aot import WORKER
from toolchain.build.cwasm023 import address_map_entries, drop_address_maps
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


def test_a_module_without_address_maps_runs_and_traps_as_wasm_in_wasmtime_0_23(tmp_path):
    python = str(runtime_python(WASM01_TARGET))
    module = tmp_path / "m.wasm"
    convert = "import sys, wasmtime; open(sys.argv[1], 'wb').write(wasmtime.wat2wasm(sys.stdin.read()))"
    subprocess.run([python, "-c", convert, str(module)], input=WAT, text=True, check=True)
    compiled = tmp_path / "m.cwasm"
    subprocess.run([python, str(WORKER), "serialize", str(module), str(compiled)], check=True)
    rewritten = drop_address_maps(compiled.read_bytes(), module.read_bytes())
    assert address_map_entries(compiled.read_bytes(), module.read_bytes()) != [1, 1, 1]  # there was more to cut
    assert address_map_entries(rewritten, module.read_bytes()) == [1, 1, 1]
    (tmp_path / "r.cwasm").write_bytes(rewritten)

    def run(path):
        proc = subprocess.run([python, "-c", RUN, str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr  # a trap wasmtime did not recognise would kill the process
        return json.loads(proc.stdout)

    full, cut = run(compiled), run(tmp_path / "r.cwasm")
    assert cut["read"] == full["read"] == ord("w")
    for name, index, message in (("unreachable", 1, "unreachable"), ("out_of_bounds", 2, "out of bounds")):
        assert message in cut[name]["trap"] and cut[name]["trap"] == full[name]["trap"]
        [(func, at, into)] = full[name]["frames"]
        assert func == index and into > 0  # full maps: the trapping instruction, some way into the function
        # cut maps: the same function, located at its start (the instruction's offset minus its distance into it)
        assert cut[name]["frames"] == [[index, at - into, 0]]

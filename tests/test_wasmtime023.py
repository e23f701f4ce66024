"""The address-map rewrite of the wasm:0.1 `.cwasm` (toolchain/build/cwasm023.py) in wasmtime 0.23 itself: the
rewritten module still loads, runs, and has its traps caught as wasm traps (the trap tables are intact), with each
frame still naming its function. `invoke verify` and tests/test_guest.py run the shipped guest rewritten this way."""

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
        out[name] = {"trap": str(trap).splitlines()[0], "frames": [f.func_name or f.func_index for f in trap.frames]}
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
    proc = subprocess.run([python, "-c", RUN, str(tmp_path / "r.cwasm")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # a trap wasmtime did not recognise would kill the process
    out = json.loads(proc.stdout)
    assert out["read"] == ord("w")
    assert "unreachable" in out["unreachable"]["trap"] and out["unreachable"]["frames"] == [1]
    assert "out of bounds" in out["out_of_bounds"]["trap"] and out["out_of_bounds"]["frames"] == [2]

"""The wasm:0.1 `.cwasm` rewrite (toolchain/build/cwasm023.py) on wasmtime 0.23's serialised layout, built here
field by field; tests/test_wasmtime023.py runs the rewrite's output in wasmtime 0.23 itself."""

import pytest

from toolchain.build.cwasm023 import _read, _write, active_data_segments, address_map_entries, drop_address_maps
from toolchain.core.errors import StageError


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def _module(segments: list[tuple[int, bytes]]) -> bytes:
    """Active segments, offsets as i32.const reads them (signed LEB: 64 is c0 00), and a passive one."""
    body = _leb(len(segments) + 1) + b"".join(
        b"\x00\x41" + _sleb(offset) + b"\x0b" + _leb(len(data)) + data for offset, data in segments
    )
    body += b"\x01" + _leb(4) + b"pass"
    return b"\x00asm\x01\x00\x00\x00" + b"\x0b" + _leb(len(body)) + body


def _cwasm(segments: list[tuple[int, bytes]], functions: list[tuple[list[tuple[int, int]], list[tuple[int, int]]]]):
    """Metadata and code (opaque here), the data initialisers, one record per function (traps, address map, no
    stack maps), the trailer."""
    out = b"\x07fingerprint-and-metadata\x00ELF..." + _write(len(segments))
    for offset, data in segments:
        out += _write(0) + b"\x00" + _write(offset) + _write(len(data)) + data
    out += _write(len(functions))
    for traps, instructions in functions:
        out += _write(len(traps)) + b"".join(
            _write(o) + _write(c) + (_write(300) if c == 11 else b"") for o, c in traps
        )
        out += _write(len(instructions)) + b"".join(_write(s) + _write(o) for s, o in instructions)
        out += _write(100) + _write(200) + _write(70_000) + _write(300) + _write(0)
    return out + bytes(5)


SEGMENTS = [(64, b"weights" * 40), (70_000, bytes(range(256)) * 3)]
FUNCTIONS = [
    ([(4, 1), (9, 11)], [(0xFFFFFFFF, 0), (120, 3), (70_000, 300)]),
    ([], []),
    ([(2, 9)], [(5, 0), (6, 1)]),
]


@pytest.mark.parametrize("value", [0, 250, 251, 65_535, 65_536, 2**32 - 1, 2**32])
def test_varints_round_trip(value):
    assert _read(_write(value), 0) == (value, len(_write(value)))


def test_the_modules_active_segments_are_read_in_order():
    assert active_data_segments(_module(SEGMENTS)) == SEGMENTS


def test_each_address_map_is_cut_to_its_first_entry_and_nothing_else_changes():
    module, before = _module(SEGMENTS), _cwasm(SEGMENTS, FUNCTIONS)
    after = drop_address_maps(before, module)
    assert address_map_entries(before, module) == [3, 0, 2]
    assert address_map_entries(after, module) == [1, 1, 1]
    # one entry each: code offset 0 → the function's start_srcloc (100 in `_cwasm`); traps and the rest unchanged
    assert after == _cwasm(SEGMENTS, [(traps, [(100, 0)]) for traps, _ in FUNCTIONS])


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],  # the trailer cut
        lambda b: b + b"\x00",  # bytes after it
        lambda b: b.replace(b"weights", b"WEIGHTS", 1),  # initialisers that are not the module's segments
        lambda b: b.replace(_write(9) + _write(11), _write(9) + _write(12), 1),  # an unknown trap code
        lambda b: b[: len(b) // 2],  # truncated
    ],
)
def test_a_layout_it_does_not_understand_is_refused(damage):
    with pytest.raises(StageError, match="wasmtime 0.23.0"):
        drop_address_maps(damage(_cwasm(SEGMENTS, FUNCTIONS)), _module(SEGMENTS))


def test_a_module_that_is_not_wasm_is_refused():
    with pytest.raises(StageError, match="not a wasm module"):
        active_data_segments(b"\x7fELF" + bytes(20))
    with pytest.raises(StageError, match="truncated"):
        active_data_segments(_module(SEGMENTS)[:-20])

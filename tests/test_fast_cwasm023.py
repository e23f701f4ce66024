"""The wasm:0.1 `.cwasm` rewrite (toolchain/build/cwasm023.py) on wasmtime 0.23's serialised layout, built here
field by field; tests/test_wasmtime023.py runs the rewrite's output in wasmtime 0.23 itself."""

import pytest

from toolchain.build.cwasm023 import (
    _read,
    _write,
    active_data_segments,
    address_map_entries,
    drop_address_maps,
    in_key_order,
    rewrite,
)
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


def _section(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _leb(len(body)) + body


def _module(
    segments: list[tuple[int, bytes]],
    passive: tuple[bytes, ...] = (b"pass",),
    names: tuple[bytes, ...] = (),
    elements: bytes = b"\x00\x41\x01\x0b\x02\x00\x01",  # one active segment: table 0 at 1, functions 0 and 1
) -> bytes:
    """Active segments, offsets as i32.const reads them (signed LEB: 64 is c0 00), then passive ones (data
    indices from len(segments) on); an element section; function i named names[i] in the name section."""
    data = _leb(len(segments) + len(passive)) + b"".join(
        b"\x00\x41" + _sleb(offset) + b"\x0b" + _leb(len(data)) + data for offset, data in segments
    )
    data += b"".join(b"\x01" + _leb(len(p)) + p for p in passive)
    function_names = _leb(len(names)) + b"".join(_leb(i) + _leb(len(n)) + n for i, n in enumerate(names))
    name = _leb(4) + b"name" + b"\x00\x02\x01\x00" + _section(1, function_names)  # module name "", then functions
    return b"\x00asm\x01\x00\x00\x00" + _section(9, _leb(1) + elements) + _section(11, data) + _section(0, name)


def _map(entries: list[tuple[int, bytes]]) -> bytes:
    return _write(len(entries)) + b"".join(_write(k) + _write(len(v)) + v for k, v in entries)


def _metadata(passive: list[tuple[int, bytes]], names: list[tuple[int, bytes]]) -> bytes:
    """Type tables and the module's first fields (opaque here), its three hash maps (passive elements: none)."""
    return b"\x07fingerprint-and-types" + _map([]) + _map(passive) + _map(names) + b"\x86types"


def _cwasm(
    segments: list[tuple[int, bytes]],
    functions: list[tuple[list[tuple[int, int]], list[tuple[int, int]]]],
    metadata: bytes = b"\x07fingerprint-and-metadata",
):
    """Metadata and code (opaque here), the data initialisers, one record per function (traps, address map, no
    stack maps), the trailer."""
    out = metadata + b"\x7fELF..." + _write(len(segments))
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


PASSIVE = (b"", b"pass", b"", b"x" * 300)  # data indices 2..5
NAMES = (b"_start", b"classify", b"\xc3\xa9t\xc3\xa9")


def _shuffled(order: list[int]) -> bytes:
    passive = [(2 + i, PASSIVE[i]) for i in order]
    names = [(i, NAMES[i]) for i in order if i < len(NAMES)]
    return _cwasm(SEGMENTS, FUNCTIONS, _metadata(passive, names))


def test_the_metadata_maps_are_put_in_key_order_whatever_order_wasmtime_wrote():
    module = _module(SEGMENTS, PASSIVE, NAMES)
    in_order = _shuffled([0, 1, 2, 3])
    for order in ([3, 1, 0, 2], [2, 0, 3, 1], [0, 1, 2, 3]):
        assert in_key_order(_shuffled(order), module) == in_order
    assert _shuffled([3, 1, 0, 2]) != in_order  # the check above compares different inputs
    assert rewrite(_shuffled([1, 3, 2, 0]), module) == drop_address_maps(in_order, module)


def test_a_module_without_passive_segments_or_names_is_left_as_it_is():
    cwasm = _cwasm(SEGMENTS, FUNCTIONS, _metadata([], []))
    assert in_key_order(cwasm, _module(SEGMENTS, passive=())) == cwasm


@pytest.mark.parametrize(
    "cwasm, module, message",
    [
        (_shuffled([1, 0, 2, 3]).replace(b"pass", b"PASS"), _module(SEGMENTS, PASSIVE, NAMES), "found 0 times"),
        (
            _cwasm(SEGMENTS, FUNCTIONS, _metadata([], [(0, b"_start")]) + _map([(0, b"_start")])),
            _module(SEGMENTS, (), (b"_start",)),
            "found 2 times",
        ),
        (_shuffled([0, 1, 2, 3]), _module(SEGMENTS, PASSIVE, NAMES, elements=b"\x01\x00\x00"), "element segments"),
        (_shuffled([0, 1, 2, 3]).replace(b"\x7fELF", b"\x00ELF"), _module(SEGMENTS, PASSIVE, NAMES), "no machine code"),
    ],
    ids=["map-not-the-modules", "map-twice", "passive-elements", "no-elf"],
)
def test_maps_it_cannot_find_exactly_once_are_refused(cwasm, module, message):
    with pytest.raises(StageError, match=message):
        in_key_order(cwasm, module)

"""wasmtime 0.23's `.cwasm` without its per-instruction address maps: the wasm:0.1 zip's bytes.

wasmtime 0.23 serialises a compiled module with bincode (variable-length integers): the module's metadata, the
machine code (an ELF object), unwind information, the data initialisers, then one record per function: its trap
table, its address map (one entry per machine instruction: code offset → wasm offset) and its stack maps. The
address maps serve one purpose, the wasm offset of each frame in a trap's backtrace; for the no-SIMD guest they
were 11.9 MB of the 67.8 MB file, 6.5 MB deflated, 17 % of OpenWhisk's code limit after base64. Reducing each
map to one entry (code offset 0 → the function's own wasm offset) makes a frame report where its function starts
instead of the instruction, and nothing else changes: the code, relocations, trap tables (which let wasmtime tell a wasm trap from a crash), unwind information
and data are the compiler's bytes, and the engine fingerprint that `Module::deserialize` checks is untouched.

The rewrite understands exactly one layout, wasmtime 0.23.0's (crates/jit/src/instantiate.rs
`CompilationArtifacts`, crates/environ `FunctionAddressMap`, cranelift 0.70 `TrapCode`), and refuses any file it
cannot parse to the last byte: the data initialisers must be the module's active data segments byte for byte,
and the function records must end exactly where the file's five trailing zero fields begin.

It also puts the module metadata's hash maps in key order. wasmtime 0.23 keeps a module's passive data segments
and function names in `HashMap`s and serialises them in the map's order, which is random per process: two
compilations of the guest (1,516 empty passive segments: Wizer keeps the module's own segments that way)
differed in ~4,000 bytes, so the wasm:0.1 zip was not reproducible. Deserialising reads the entries back into a
map, so their order carries no meaning. Each map is found by its content, which the module determines (its
passive segments' indices and bytes, its name section's function names), and must be found exactly once before
the machine code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from toolchain.core.errors import StageError

_TRAILER = bytes(5)  # native_debug_info_present, has_unparsed_debuginfo, debug_info: None, modules: [], type_tables: 0
_TRAP_CODE_USER = 11  # cranelift 0.70 TrapCode::User(u16), the one variant with a payload; 0..=10 have none


class _Unparsed(Exception):
    pass


def _read(buf: bytes, at: int) -> tuple[int, int]:
    """One bincode varint (< 251: itself; 251/252/253: a u16/u32/u64 follows)."""
    try:
        tag = buf[at]
        if tag < 251:
            return tag, at + 1
        if tag == 251:
            return struct.unpack_from("<H", buf, at + 1)[0], at + 3
        if tag == 252:
            return struct.unpack_from("<I", buf, at + 1)[0], at + 5
        if tag == 253:
            return struct.unpack_from("<Q", buf, at + 1)[0], at + 9
    except (IndexError, struct.error) as exc:
        raise _Unparsed(f"truncated at byte {at}") from exc
    raise _Unparsed(f"not a bincode varint at byte {at} (tag {tag})")


def _write(value: int) -> bytes:
    if value < 251:
        return bytes([value])
    if value < 1 << 16:
        return b"\xfb" + struct.pack("<H", value)
    if value < 1 << 32:
        return b"\xfc" + struct.pack("<I", value)
    return b"\xfd" + struct.pack("<Q", value)


@dataclass(frozen=True)
class _ModuleFacts:
    """What the rewrite needs of the wasm module the `.cwasm` was compiled from."""

    active: list[tuple[int, bytes]]  # (offset, bytes) of the active data segments for memory 0, in order
    passive: dict[int, bytes]  # data index → bytes of each passive data segment
    function_names: dict[int, bytes]  # function index → name, from the name section
    passive_elements: int  # element segments that may be passive or declared (any but the plain active form)


def active_data_segments(module: bytes) -> list[tuple[int, bytes]]:
    """(offset, bytes) of a wasm module's active data segments for memory 0, in order."""
    return _module_facts(module).active


def _module_facts(module: bytes) -> _ModuleFacts:
    if module[:8] != b"\0asm\x01\0\0\0":
        raise StageError("not a wasm module (version 1)")
    try:
        return _read_module(module)
    except IndexError as exc:
        raise StageError("a truncated wasm module: its data segments cannot be read") from exc


def _read_module(module: bytes) -> _ModuleFacts:
    def leb(at: int, signed: bool = False) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = module[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                if signed and byte & 0x40:
                    value -= 1 << shift
                return value, at

    def i32_const(p: int, what: str) -> tuple[int, int]:
        if module[p] != 0x41:
            raise StageError(f"{what}'s offset is not an i32.const: cannot match it")
        value, p = leb(p + 1, signed=True)
        if module[p] != 0x0B:
            raise StageError(f"{what}'s offset expression is not a single i32.const")
        return value & 0xFFFFFFFF, p + 1  # wasmtime 0.23 keeps it as u32 as usize

    at, active, passive, names, passive_elements = 8, [], {}, {}, 0
    while at < len(module):
        section, (size, body) = module[at], leb(at + 1)
        if section == 11:
            count, p = leb(body)
            for index in range(count):
                flags, p = leb(p)
                offset = None
                if flags == 0:  # active, memory 0, `i32.const offset; end` (Wizer's and LLVM's segments)
                    offset, p = i32_const(p, "a data segment")
                elif flags != 1:
                    raise StageError(f"data segment flags {flags} are not handled")
                length, p = leb(p)
                if offset is None:  # passive: not a data initialiser in wasmtime 0.23, an entry of its map
                    passive[index] = module[p : p + length]
                else:
                    active.append((offset, module[p : p + length]))
                p += length
        elif section == 9:
            count, p = leb(body)
            for _ in range(count):
                flags, p = leb(p)
                if flags != 0:  # only `(elem (i32.const n) func...)` is read; anything else may be passive
                    passive_elements += 1
                    break
                _, p = i32_const(p, "an element segment")
                functions, p = leb(p)
                for _ in range(functions):
                    _, p = leb(p)
        elif section == 0:
            length, p = leb(body)
            if module[p : p + length] == b"name":
                p += length
                while p < body + size:
                    kind, (sub_size, sub) = module[p], leb(p + 1)
                    if kind == 1:  # function names: vec(index, name)
                        count, q = leb(sub)
                        for _ in range(count):
                            index, q = leb(q)
                            length, q = leb(q)
                            names[index] = module[q : q + length]
                            q += length
                    p = sub + sub_size
        at = body + size
    return _ModuleFacts(active, passive, names, passive_elements)


def _data_initializers_end(cwasm: bytes, start: int, segments: list[tuple[int, bytes]]) -> int:
    count, at = _read(cwasm, start)
    if count != len(segments):
        raise _Unparsed("segment count")
    for offset, data in segments:
        memory, at = _read(cwasm, at)
        base, at = _read(cwasm, at)  # Option<GlobalIndex>: 0 is None
        if memory != 0 or base != 0:
            raise _Unparsed("segment location")
        got_offset, at = _read(cwasm, at)
        length, at = _read(cwasm, at)
        if (got_offset, length) != (offset, len(data)) or cwasm[at : at + length] != data:
            raise _Unparsed("segment bytes")
        at += length
    return at


@dataclass(frozen=True)
class _Function:
    start: int  # the record: trap table, address map, stack maps
    address_map: int  # where the address map's instruction list starts
    after_instructions: int  # where its start/end source locations start
    end: int
    instructions: int  # the address map's entries
    start_srcloc: int  # the function's own wasm offset


def _functions(cwasm: bytes, at: int) -> tuple[list[_Function], int]:
    count, at = _read(cwasm, at)
    functions = []
    for _ in range(count):
        start = at
        traps, at = _read(cwasm, at)
        for _ in range(traps):
            _, at = _read(cwasm, at)  # code offset
            code, at = _read(cwasm, at)
            if code == _TRAP_CODE_USER:
                _, at = _read(cwasm, at)
            elif code > _TRAP_CODE_USER:
                raise _Unparsed(f"trap code {code}")
        address_map = at
        instructions, at = _read(cwasm, at)
        for _ in range(2 * instructions):  # (srcloc, code offset) per machine instruction
            _, at = _read(cwasm, at)
        after = at
        start_srcloc, at = _read(cwasm, at)
        for _ in range(3):  # end_srcloc, body_offset, body_len
            _, at = _read(cwasm, at)
        stack_maps, at = _read(cwasm, at)
        if stack_maps:
            raise _Unparsed("stack maps (reference types) are not handled")
        functions.append(_Function(start, address_map, after, at, instructions, start_srcloc))
    return functions, at


def _parse(cwasm: bytes, module: bytes) -> tuple[int, list[_Function], int]:
    segments = active_data_segments(module)
    if not segments:
        raise _Unparsed("the module has no active data segment to find the initialisers by")
    # the initialisers begin with their count, then the first one: memory 0, base None, offset, length, bytes
    offset, data = segments[0]
    head = _write(len(segments)) + b"\x00\x00" + _write(offset) + _write(len(data)) + data[:256]
    search = 0
    while (begin := cwasm.find(head, search)) >= 0:
        search = begin + 1
        try:
            end = _data_initializers_end(cwasm, begin, segments)
            functions, after = _functions(cwasm, end)
        except _Unparsed:
            continue
        if cwasm[after:] == _TRAILER:
            return end, functions, after
    raise _Unparsed("no layout matched")


def _refusal(exc: _Unparsed) -> StageError:
    return StageError(
        f"this is not the wasmtime 0.23.0 .cwasm layout the rewrite understands ({exc})",
        hint="the wasm:0.1 target must stay pinned to wasmtime 0.23.0 (toolchain/core/versions.py)",
    )


def _layout(cwasm: bytes, module: bytes) -> tuple[int, list[_Function], int]:
    try:
        return _parse(cwasm, module)
    except _Unparsed as exc:
        raise _refusal(exc) from exc


def _map_entries(cwasm: bytes, at: int, expected: dict[int, bytes]) -> tuple[list[tuple[int, bytes]], int] | None:
    """The serialised map at `at` as (key, encoded entry) in key order, and where it ends, if it holds exactly
    `expected` (key → bytes or string value; bincode writes both as a length and the bytes); None if it does not."""
    try:
        count, p = _read(cwasm, at)
        if count != len(expected):
            return None
        entries: dict[int, bytes] = {}
        for _ in range(count):
            start = p
            key, p = _read(cwasm, p)
            length, p = _read(cwasm, p)
            if expected.get(key) != cwasm[p : p + length] or key in entries:
                return None
            p += length
            entries[key] = cwasm[start:p]
        return sorted(entries.items()), p
    except _Unparsed:
        return None


def _in_key_order(cwasm: bytes, before: int, expected: dict[int, bytes], what: str) -> bytes:
    if not expected:  # an empty map: nothing to order (and nothing to find it by)
        return cwasm
    count = _write(len(expected))
    found = []
    at = cwasm.find(count, 0, before)
    while at >= 0:
        if (parsed := _map_entries(cwasm, at, expected)) is not None:
            found.append((at, *parsed))
        at = cwasm.find(count, at + 1, before)
    if len(found) != 1:
        raise _Unparsed(f"the {what} map was found {len(found)} times, not once")
    at, entries, end = found[0]
    ordered = count + b"".join(entry for _, entry in entries)
    return cwasm[:at] + ordered + cwasm[end:]


def in_key_order(cwasm: bytes, module: bytes) -> bytes:
    """The `.cwasm` with the module metadata's passive-data and function-name maps in key order (see the module
    docstring); refused if the module has passive element segments, whose map is not located."""
    facts = _module_facts(module)
    try:
        if facts.passive_elements:
            raise _Unparsed("element segments other than active function lists are not handled")
        machine_code = cwasm.find(b"\x7fELF")
        if machine_code < 0:
            raise _Unparsed("no machine code (ELF image) found")
        ordered = _in_key_order(cwasm, machine_code, facts.passive, "passive data")
        return _in_key_order(ordered, machine_code, facts.function_names, "function name")
    except _Unparsed as exc:
        raise _refusal(exc) from exc


def rewrite(cwasm: bytes, module: bytes) -> bytes:
    """What the AOT stage does to a wasmtime 0.23 `.cwasm`: maps in key order, address maps cut."""
    return drop_address_maps(in_key_order(cwasm, module), module)


def drop_address_maps(cwasm: bytes, module: bytes) -> bytes:
    """The `.cwasm` with each function's address map cut to one entry, the function's start (see the module
    docstring); `module` is the wasm module it was compiled from (its data segments locate the function records)."""
    end_of_data, functions, after = _layout(cwasm, module)
    out = bytearray(cwasm[:end_of_data])
    _, at = _read(cwasm, end_of_data)
    out += cwasm[end_of_data:at]  # the function count
    for f in functions:
        out += cwasm[f.start : f.address_map]
        out += _write(1) + _write(f.start_srcloc) + _write(0)  # code offset 0: the whole body maps to the function
        out += cwasm[f.after_instructions : f.end]
    out += cwasm[after:]
    return bytes(out)


def address_map_entries(cwasm: bytes, module: bytes) -> list[int]:
    """How many entries each function's address map has (for checks: 1 after `drop_address_maps`)."""
    return [f.instructions for f in _layout(cwasm, module)[1]]

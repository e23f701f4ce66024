"""The bad-input corpus: requests every entry point must answer with the error contract (or, where noted,
a valid classification) — never a crash, trap, hang or stack trace."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import numpy as np
from PIL import Image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (RGB8) and whose data is a few bytes: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def encoded(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_request(data: bytes) -> bytes:
    return json.dumps({"image": b64(data)}).encode()


_photo = (np.indices((64, 48)).sum(axis=0)[..., None] * np.array([3, 5, 7])).astype(np.uint8)
JPEG = encoded(_photo, "JPEG", quality=90)
PNG = encoded(_photo, "PNG")


def pil_encoded(mode: str, fmt: str, size=(40, 30), **kw) -> bytes:
    im = Image.fromarray(_photo).convert("RGB").resize(size)
    if mode == "I;16":
        im = Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257)
    else:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


GIF = pil_encoded("P", "GIF")
WEBP = pil_encoded("RGB", "WEBP", quality=80)


def corrupt(data: bytes, at: float = 0.5) -> bytes:
    """The same bytes with a run in the middle overwritten: a damaged file of plausible length."""
    i = int(len(data) * at)
    return data[:i] + b"\xff\x00" * 16 + data[i + 32 :]


def nested(depth: int) -> bytes:
    return b'{"image": ' + b"[" * depth + b"]" * depth + b"}"


# (name, request bytes, what must come back: "error" or "result")
CORPUS: list[tuple[str, bytes, str]] = [
    ("empty input", b"", "error"),
    ("invalid JSON", b"{not json", "error"),
    ("invalid UTF-8", b'{"image": "\xff\xfe"}', "error"),
    ("JSON array", b"[1, 2, 3]", "error"),
    ("JSON number", b"42", "error"),
    ("JSON string", b'"hello"', "error"),
    ("JSON null", b"null", "error"),
    ("missing image", b'{"picture": "abc"}', "error"),
    ("image is a number", b'{"image": 123}', "error"),
    ("image is null", b'{"image": null}', "error"),
    ("image is an object", b'{"image": {"data": "abc"}}', "error"),
    ("empty base64", b'{"image": ""}', "error"),
    ("invalid base64", b'{"image": "!!!not base64!!!"}', "error"),
    ("partial base64", json.dumps({"image": b64(JPEG)[:-3]}).encode(), "error"),
    ("base64 of text", json.dumps({"image": b64(b"hello, not an image")}).encode(), "error"),
    ("truncated JPEG", image_request(JPEG[: len(JPEG) // 2]), "error"),
    ("JPEG header only", image_request(JPEG[:20]), "error"),
    ("truncated PNG", image_request(PNG[: len(PNG) // 2]), "error"),
    ("PNG signature only", image_request(PNG[:8]), "error"),
    ("0x0 PNG header", image_request(png_header_only(0, 0)), "error"),
    ("bomb: 100000x100000 PNG header", image_request(png_header_only(100_000, 100_000)), "error"),
    ("bomb: 9000x1 PNG header", image_request(png_header_only(9000, 1)), "error"),
    (
        "both image and tensor",
        json.dumps({"image": b64(PNG), "tensor": {"shape": [1], "f32le_b64": ""}}).encode(),
        "error",
    ),
    (
        "tensor with wrong shape",
        json.dumps({"tensor": {"shape": [1, 2, 2, 3], "f32le_b64": b64(b"\0" * 48)}}).encode(),
        "error",
    ),
    (
        "tensor with short data",
        json.dumps({"tensor": {"shape": [1, 224, 224, 3], "f32le_b64": b64(b"\0" * 16)}}).encode(),
        "error",
    ),
    ("tensor shape not a list", b'{"tensor": {"shape": "1,224,224,3", "f32le_b64": ""}}', "error"),
    ("1x1 PNG", image_request(encoded(np.zeros((1, 1, 3), np.uint8), "PNG")), "result"),
    ("1x300 PNG", image_request(encoded(np.zeros((1, 300, 3), np.uint8), "PNG")), "result"),
    ("extra fields are ignored", json.dumps({"image": b64(PNG), "extra": [1, 2]}).encode(), "result"),
    ("data URL prefix", json.dumps({"image": "data:image/png;base64," + b64(PNG)}).encode(), "result"),
    ("data URL of another type", json.dumps({"image": "data:text/plain;base64," + b64(PNG)}).encode(), "error"),
    ("data URL without base64", json.dumps({"image": "data:image/png," + b64(PNG)}).encode(), "error"),
    ("data URL without comma", b'{"image": "data:image/png;base64"}', "error"),
    (
        "base64 with line breaks",
        json.dumps({"image": "\n".join(b64(PNG)[i : i + 76] for i in range(0, len(b64(PNG)), 76))}).encode(),
        "error",
    ),
    (
        "URL-safe base64 alphabet",
        json.dumps({"image": b64(JPEG).replace("+", "-").replace("/", "_")}).encode(),
        "error",
    ),
    ("corrupt JPEG", image_request(corrupt(JPEG)), "result-or-error"),
    ("corrupt PNG (bad CRC)", image_request(corrupt(PNG)), "error"),
    ("truncated GIF", image_request(GIF[: len(GIF) // 2]), "error"),
    ("truncated WebP", image_request(WEBP[: len(WEBP) // 2]), "error"),
    ("GIF, palette", image_request(GIF), "result"),
    ("WebP", image_request(WEBP), "result"),
    ("CMYK JPEG", image_request(pil_encoded("CMYK", "JPEG")), "result"),
    ("grayscale JPEG", image_request(pil_encoded("L", "JPEG")), "result"),
    ("16-bit grayscale PNG", image_request(pil_encoded("I;16", "PNG")), "result"),
    ("palette PNG", image_request(pil_encoded("P", "PNG")), "result"),
    ("RGBA PNG", image_request(pil_encoded("RGBA", "PNG")), "result"),
    ("grayscale + alpha PNG", image_request(pil_encoded("LA", "PNG")), "result"),
    ("extreme aspect ratio 8000x1 PNG", image_request(encoded(np.zeros((1, 8000, 3), np.uint8), "PNG")), "result"),
    ("bomb: 8192x8192 PNG header", image_request(png_header_only(8192, 8192)), "error"),
    ("deeply nested JSON", nested(10_000), "error"),
    ("image is a list", b'{"image": ["abc"]}', "error"),
    ("tensor is a string", b'{"tensor": "abc"}', "error"),
    ("debug is a string", json.dumps({"image": b64(PNG), "debug": "yes"}).encode(), "error"),
    ("invalid UTF-8 in an extra field", b'{"image": "' + b64(PNG).encode() + b'", "x": "\xc3\x28"}', "error"),
]


def check_answer(name: str, expected: str, answer: dict) -> None:
    """The contract: exactly {"error": "<message>"}, or a result with five predictions; never anything else
    (a host's "trapped" or "broke the contract" report is a failure too)."""
    is_error = set(answer) == {"error"} and isinstance(answer["error"], str) and answer["error"] != ""
    is_result = "error" not in answer and len(answer.get("top5", [])) == 5
    assert is_error or is_result, (name, answer)
    if is_error:
        assert "trapped" not in answer["error"] and "broke the contract" not in answer["error"], (name, answer)
    if expected != "result-or-error":
        assert (is_error and expected == "error") or (is_result and expected == "result"), (name, expected, answer)

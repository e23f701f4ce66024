"""Machine-readable outputs are plain JSON: numpy numbers that slip into a report become JSON numbers."""

import json
from dataclasses import asdict

import numpy as np
import pytest

from toolchain.core.fsutil import canonical_json, json_text
from toolchain.measure.verify import RuntimeParity, report_json


def test_numpy_scalars_and_arrays_become_json_numbers():
    doc = {"f32": np.float32(0.25), "i64": np.int64(7), "arr": np.arange(3, dtype=np.uint8), "plain": 1.5}
    assert json.loads(json_text(doc)) == {"f32": 0.25, "i64": 7, "arr": [0, 1, 2], "plain": 1.5}
    assert json.loads(canonical_json(doc)) == json.loads(json_text(doc))


def test_other_objects_are_still_an_error():
    with pytest.raises(TypeError, match="object"):
        json_text({"x": object()})


def test_verify_report_with_numpy_deltas_is_json():
    row = RuntimeParity(
        "wasm-aot",
        tensor_max_abs=np.float32(1e-6),
        image_max_abs=np.float32(2e-6),
        decode_max_abs=np.int16(0),
        resize_max_abs=np.float64(0.0),
    )
    report = {"model": "m", "runtimes": [{**asdict(row), "ok": row.ok}], "ok": True}
    assert json.loads(report_json(report))["runtimes"][0]["decode_max_abs"] == 0

"""Golden parity over the runtime registry, for both models, with real engines."""

import numpy as np
import pytest

from toolchain.core.errors import DivergenceError
from toolchain.measure.verify import check_runtime, format_table, raise_on_divergence, verify
from toolchain.runtimes import make_runtime, select_runtimes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("which", ["default_model", "small_model"])
def test_verify_all_python_runtimes_agree(which, request, dist):
    cfg = request.getfixturevalue(which)
    report = verify(cfg, dist, ["tf", "onnxruntime-1t", "onnxruntime", "tract-py"])
    print(format_table(report))
    assert report["ok"], format_table(report)
    assert {r["runtime"] for r in report["runtimes"]} == {"tf", "onnxruntime-1t", "onnxruntime", "tract-py"}
    for r in report["runtimes"]:
        assert r["top1_agree"] == r["cases"] == report["goldens"] >= 17


def test_verify_catches_a_divergent_runtime(small_model, dist):
    """The check can fail: a runtime whose outputs are perturbed beyond tolerance is reported."""
    rt = make_runtime("onnxruntime-1t", small_model, dist)
    real_infer = rt.infer

    def perturbed(tensor):
        p = real_infer(tensor).copy()
        p[::-1] = p.copy()  # reversed class order: a realistic label-offset bug
        return p

    rt.infer = perturbed
    from toolchain.build.golden import load_goldens

    parity = check_runtime(rt, load_goldens(small_model, dist), small_model)
    assert not parity.ok and parity.tensor_max_abs > small_model.tensor_tolerance
    with pytest.raises(DivergenceError, match="onnxruntime-1t"):
        raise_on_divergence({"ok": parity.ok, "runtimes": [{"runtime": rt.name, "ok": parity.ok}]})


def test_unavailable_runtimes_are_listed_with_a_reason(small_cfg, tmp_path):
    from toolchain.core.catalog import DistLayout

    ready, missing = select_runtimes(small_cfg, DistLayout(tmp_path))
    assert not ready and "invoke model" in missing["tf"]


def test_classify_error_contract(small_model, dist):
    rt = make_runtime("tract-py", small_model, dist)
    assert "error" in rt.classify(b"not an image")
    ok = rt.classify((dist.golden_dir(small_model.name) / "images" / "chelsea.png").read_bytes())
    assert set(ok) == {"label", "confidence", "index", "top5"} and len(ok["top5"]) == 5
    assert np.isclose(ok["confidence"], ok["top5"][0]["confidence"])

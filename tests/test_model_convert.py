"""model → convert on the real TF / tf2onnx / ONNX Runtime stack, both models, plus bad inputs."""

import json
import subprocess
import sys
from collections import Counter

import onnx
import pytest

from toolchain.build.convert import convert_pb_to_onnx
from toolchain.build.golden import load_goldens
from toolchain.build.model import ensure_frozen_model
from toolchain.build.model_cost import count_macs
from toolchain.core.catalog import DistLayout
from toolchain.core.config import REPO_ROOT
from toolchain.core.errors import InputError
from toolchain.core.preprocess import top_k

pytestmark = pytest.mark.slow


def test_default_model_facts(default_model, dist):
    facts = json.loads(dist.model_report(default_model.name).read_text())
    assert facts["parameters"] == 6_158_505  # Keras MobileNetV2(alpha=1.4, classes=1001)
    # the published cost of MobileNetV2 1.4 at 224 (TF-slim's table: 582 M MACs), counted on our ONNX graph
    assert round(count_macs(dist.onnx(default_model.name)) / 1e6) == 582
    assert dist.onnx(default_model.name).stat().st_size > 20e6


def test_the_depthwise_batch_norms_are_folded(default_model, dist):
    """tf2onnx leaves each depthwise convolution's batch norm as a Mul and an Add; the conversion folds all 17
    into the convolutions (toolchain/build/onnx_rewrite.py), and every depthwise convolution then has a bias."""
    graph = onnx.load(dist.onnx(default_model.name)).graph
    ops = Counter(node.op_type for node in graph.node)
    assert ops["Mul"] == 0 and ops["Add"] == 10  # the 10 residual connections remain
    depthwise = [
        n for n in graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
    ]
    assert len(depthwise) == 17 and all(len(n.input) == 3 for n in depthwise)


def test_default_model_is_non_degenerate(default_model, dist):
    photos = [g for g in load_goldens(default_model, dist) if g.kind == "photo"]
    assert len(photos) >= 8
    top1 = [g.tf_result for g in photos]
    assert min(r["confidence"] for r in top1) >= 0.15
    assert len({r["index"] for r in top1}) >= len(photos) / 2


def test_model_build_is_byte_identical(small_cfg, tmp_path):
    a, b = DistLayout(tmp_path / "a"), DistLayout(tmp_path / "b")
    ensure_frozen_model(small_cfg, a)
    ensure_frozen_model(small_cfg, b, force=True)
    assert a.frozen_pb(small_cfg.name).read_bytes() == b.frozen_pb(small_cfg.name).read_bytes()


def test_onnx_is_canonical_across_processes(small_model, dist, tmp_path):
    """tf2onnx names differ per run; the canonicalised file must not — even from a fresh interpreter."""
    other = DistLayout(tmp_path)
    other.model_dir().mkdir(parents=True)
    other.frozen_pb(small_model.name).write_bytes(dist.frozen_pb(small_model.name).read_bytes())
    code = (
        "from toolchain.core.config import load_model_config; from toolchain.core.catalog import DistLayout; "
        "from toolchain.build.convert import convert_pb_to_onnx; "
        f"convert_pb_to_onnx(load_model_config({str(small_model.config_path)!r}), DistLayout({str(tmp_path)!r}))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=REPO_ROOT)
    assert other.onnx(small_model.name).read_bytes() == dist.onnx(small_model.name).read_bytes()


def test_up_to_date_stage_says_so(small_model, dist, capsys):
    convert_pb_to_onnx(small_model, dist)
    assert "up to date" in capsys.readouterr().err


def test_small_model_has_its_own_shape_and_labels(small_model, dist):
    goldens = load_goldens(small_model, dist)
    assert goldens[0].tensor.shape == (1, 128, 128, 3)
    assert 0.0 <= goldens[0].tensor.min() and goldens[0].tensor.max() <= 1.0  # mean 0, std 255
    assert goldens[0].tf_probabilities.shape == (10,)
    r = top_k(goldens[0].tf_probabilities, small_model, small_model.labels())
    assert r["label"] in small_model.labels()


def _convert_expecting(cfg, tmp_path, pb_bytes, message):
    d = DistLayout(tmp_path / "dist")
    if pb_bytes is not None:
        d.model_dir().mkdir(parents=True)
        d.frozen_pb(cfg.name).write_bytes(pb_bytes)
    with pytest.raises(InputError, match=message):
        convert_pb_to_onnx(cfg, d)
    assert not d.onnx(cfg.name).exists()
    assert not [p for p in d.root.rglob("*.tmp")]


def test_convert_missing_pb(small_cfg, tmp_path):
    _convert_expecting(small_cfg, tmp_path, None, "does not exist.*invoke model")


def test_convert_not_a_graphdef(small_cfg, tmp_path):
    _convert_expecting(small_cfg, tmp_path, b"\xff\xfe definitely not protobuf " * 10, "not a TensorFlow GraphDef")


def test_convert_wrong_tensor_names(small_model, dist, tmp_path):
    from dataclasses import replace

    cfg = replace(small_model, output_name="no/such/tensor")
    _convert_expecting(
        cfg, tmp_path, dist.frozen_pb(small_model.name).read_bytes(), "no output tensor named 'no/such/tensor'"
    )


def test_convert_output_shape_disagrees(small_model, dist, tmp_path):
    from dataclasses import replace

    cfg = replace(small_model, classes=11)
    _convert_expecting(cfg, tmp_path, dist.frozen_pb(small_model.name).read_bytes(), "config says 11 classes")


def test_user_pb_plugs_in_with_a_config_only(small_model, dist, tmp_path):
    """A user's own frozen .pb: a config with [source] kind = "file" and no code change."""
    from toolchain.core.config import load_model_config

    pb = tmp_path / "users_model_frozen.pb"
    pb.write_bytes(dist.frozen_pb(small_model.name).read_bytes())
    text = small_model.config_path.read_text()
    text = text.replace(
        'kind = "generator"\ngenerator = "mobilenet_v2"\nalpha = 0.35\nseed = 7', f'kind = "file"\npath = "{pb}"'
    ).replace('name = "small_mobilenet_v2_0.35_128"', 'name = "users_model"')
    cfg_path = tmp_path / "users_model.toml"
    cfg_path.write_text(text)
    (tmp_path / "ten_labels.txt").write_text(small_model.labels_path.read_text())
    cfg = load_model_config(cfg_path)
    d = DistLayout(tmp_path / "dist")
    ensure_frozen_model(cfg, d)
    out = convert_pb_to_onnx(cfg, d)
    assert out.read_bytes() == dist.onnx(small_model.name).read_bytes()

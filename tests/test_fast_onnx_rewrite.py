"""The ONNX graph rewrite (toolchain/build/onnx_rewrite.py) on small graphs: the same answers from ONNX Runtime
with fewer nodes, and nothing folded where folding would change or lose something."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from toolchain.build.onnx_rewrite import fold_depthwise_scale_shift

C = 6
RNG = np.random.default_rng(7)


def _graph(*, bias=False, scale_shape=(1, C, 1, 1), extra_reader=False, group=C) -> onnx.ModelProto:
    """x → Conv(3×3, group) → Mul(scale) → Add(shift) → Clip(0, 6) → y (and optionally the Mul's output too)."""
    w = RNG.normal(size=(C, C // group, 3, 3)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(RNG.uniform(5, 20, size=scale_shape).astype(np.float32), "scale"),
        numpy_helper.from_array(RNG.normal(size=(1, C, 1, 1)).astype(np.float32), "shift"),
        numpy_helper.from_array(np.array(0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6, np.float32), "hi"),
    ]
    conv_inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(RNG.normal(size=(C,)).astype(np.float32), "b"))
        conv_inputs.append("b")
    nodes = [
        helper.make_node("Conv", conv_inputs, ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=group),
        helper.make_node("Mul", ["c", "scale"], ["m"]),
        helper.make_node("Add", ["m", "shift"], ["a"]),
        helper.make_node("Clip", ["a", "lo", "hi"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, C, 8, 8])]
    if extra_reader:
        nodes.append(helper.make_node("Relu", ["m"], ["r"]))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, C, 8, 8]))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, 8, 8])], outputs, inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("scale_shape", [(1, C, 1, 1), (C, 1, 1), ()])
def test_a_depthwise_scale_and_shift_fold_into_the_convolution(bias, scale_shape):
    model = _graph(bias=bias, scale_shape=scale_shape)
    x = RNG.normal(size=(1, C, 8, 8)).astype(np.float32)
    before = _run(model, x)
    assert fold_depthwise_scale_shift(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Conv", "Clip"]
    assert sorted(i.name for i in model.graph.initializer) == sorted(
        ["hi", "lo", "c__folded_w", "c__folded_b"]
    )  # the unfolded weights, scale, shift and bias are gone
    after = _run(model, x)
    np.testing.assert_allclose(after[0], before[0], rtol=1e-5, atol=1e-5)


def test_nothing_is_folded_where_another_node_reads_the_product():
    model = _graph(extra_reader=True)
    assert fold_depthwise_scale_shift(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Conv", "Mul", "Add", "Clip", "Relu"]


def test_an_ordinary_convolution_is_left_to_tf2onnx():
    model = _graph(group=1)
    assert fold_depthwise_scale_shift(model) == 0
    assert len(model.graph.node) == 4


def test_a_scale_that_is_not_per_channel_is_not_folded():
    model = _graph(scale_shape=(1, C, 8, 8))
    assert fold_depthwise_scale_shift(model) == 0
    assert len(model.graph.node) == 4

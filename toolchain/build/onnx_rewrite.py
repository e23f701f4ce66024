"""Graph rewrites applied to the converted ONNX model before it is canonicalised: exact in arithmetic, fewer ops
for every engine.

tf2onnx folds a batch normalisation into an ordinary convolution's weights and bias, but after a depthwise one
(``Conv`` with ``group`` > 1) it leaves the normalisation as a per-channel ``Mul`` and ``Add``. tract keeps those
as a separate pass over the activations (with the ReLU6 clip that follows, an ``OptBinChain`` of four ops), which
in the no-SIMD wasm:0.1 guest cost ~21 ms of a ~320 ms activation. Folded, the scale multiplies the
convolution's weights and the shift becomes its bias, which tract's depthwise kernel adds itself; what remains
is the clip. ONNX Runtime does the same fusion at session start (``ConvMulFusion``, ``ConvAddFusion``).
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, NodeProto, numpy_helper


def _per_channel(value: np.ndarray | None, channels: int) -> np.ndarray | None:
    """``value`` as one number per output channel, if it broadcasts that way against an NCHW output."""
    if value is None or value.dtype != np.float32:
        return None
    if value.size == 1:
        return np.full(channels, value.reshape(()), dtype=np.float32)
    if value.size == channels and value.shape in ((channels, 1, 1), (1, channels, 1, 1)):
        return value.reshape(channels)
    return None


def fold_depthwise_scale_shift(model: ModelProto) -> int:
    """Fold ``Conv(group > 1) → Mul(constant) → Add(constant)`` into the ``Conv`` (weights × scale, bias =
    bias × scale + shift) wherever the convolution's and the multiplication's outputs have no other reader.
    Returns how many were folded; the graph is changed in place."""
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    readers: dict[str, list[NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    graph_outputs = {v.name for v in graph.output}

    def only_reader(value: str, op_type: str) -> NodeProto | None:
        nodes = readers.get(value, [])
        if len(nodes) != 1 or nodes[0].op_type != op_type or value in graph_outputs:
            return None
        return nodes[0]

    def constant_other_input(node: NodeProto, value: str) -> np.ndarray | None:
        others = [name for name in node.input if name != value]
        if len(node.input) != 2 or len(others) != 1 or others[0] not in inits:
            return None
        return numpy_helper.to_array(inits[others[0]])

    removed: list[NodeProto] = []
    detached: set[str] = set()  # initializers and values the folded nodes read or wrote
    for conv in list(graph.node):
        group = next((a.i for a in conv.attribute if a.name == "group"), 1)
        if conv.op_type != "Conv" or group <= 1 or len(conv.input) < 2 or conv.input[1] not in inits:
            continue
        weights = numpy_helper.to_array(inits[conv.input[1]])
        channels = weights.shape[0]
        mul = only_reader(conv.output[0], "Mul")
        add = only_reader(mul.output[0], "Add") if mul is not None else None
        if mul is None or add is None:
            continue
        scale = _per_channel(constant_other_input(mul, conv.output[0]), channels)
        shift = _per_channel(constant_other_input(add, mul.output[0]), channels)
        if scale is None or shift is None or weights.dtype != np.float32:
            continue
        if len(conv.input) > 2 and conv.input[2]:
            if conv.input[2] not in inits:
                continue
            bias = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float32)
        else:
            bias = np.zeros(channels, dtype=np.float32)
        folded_weights = (weights * scale.reshape((channels,) + (1,) * (weights.ndim - 1))).astype(np.float32)
        folded_bias = (bias * scale + shift).astype(np.float32)
        # New initializers (the old ones may be shared with other nodes); canonicalise_onnx renames them.
        w_name, b_name = f"{conv.output[0]}__folded_w", f"{conv.output[0]}__folded_b"
        graph.initializer.extend(
            [numpy_helper.from_array(folded_weights, w_name), numpy_helper.from_array(folded_bias, b_name)]
        )
        detached.update(conv.input[1:])
        detached.update([*mul.input, *add.input, conv.output[0], mul.output[0]])
        conv.input[:] = [conv.input[0], w_name, b_name]
        conv.output[0] = add.output[0]
        removed += [mul, add]
    for node in removed:
        graph.node.remove(node)
    # what no node reads any more: the unfolded weights, the scales and shifts, the values between the nodes
    gone = detached - {name for node in graph.node for name in (*node.input, *node.output)}
    for field in (graph.initializer, graph.value_info):
        kept = [item for item in field if item.name not in gone]
        del field[:]
        field.extend(kept)
    return len(removed) // 2

"""The arithmetic of one forward pass, counted on the converted ONNX graph, so it holds for every model (the
generated one and a user's frozen graph alike): the manifest records it and the bench divides it by the
warm time (GMAC/s)."""

from __future__ import annotations

from math import prod
from pathlib import Path


def count_macs(onnx_path: Path) -> int:
    """Multiply-accumulates of one image: Conv (grouped and depthwise too), Gemm and MatMul, from the shapes
    ONNX's shape inference gives (a free batch dimension counts as 1)."""
    import onnx
    from onnx import shape_inference

    graph = shape_inference.infer_shapes(onnx.load(str(onnx_path), load_external_data=False)).graph
    shapes = {
        v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]
        for v in [*graph.input, *graph.value_info, *graph.output]
    }
    shapes.update({t.name: list(t.dims) for t in graph.initializer})
    macs = 0
    for node in graph.node:
        if node.op_type == "Conv":
            out, weight = shapes[node.output[0]], shapes[node.input[1]]
            macs += prod(out) * prod(weight[1:])  # weight: (out channels, in channels / group, kh, kw)
        elif node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            weight = shapes[node.input[1]]
            macs += prod(shapes[node.output[0]]) * (weight[1] if trans_b else weight[0])
        elif node.op_type == "MatMul":
            macs += prod(shapes[node.output[0]]) * shapes[node.input[0]][-1]
    return int(macs)

"""TensorFlow on the frozen GraphDef: the reference the build checks its own outputs against (the ONNX
conversion, the goldens) and that the `tf` runtime adapter wraps for verify and bench."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from toolchain.core.config import ModelConfig
from toolchain.core.errors import InputError


def load_graph_def(path: Path):
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except DecodeError as exc:
        raise InputError(
            f"{path} is not a TensorFlow GraphDef ({exc})",
            hint="pass a frozen .pb (a GraphDef with constants), not a SavedModel or checkpoint",
        ) from exc
    if not graph_def.node:
        raise InputError(f"{path} holds an empty GraphDef", hint="pass a frozen .pb with the model's nodes")
    return graph_def


class FrozenGraph:
    """The model's output tensor for an input tensor, by TensorFlow on the frozen graph ``pb``."""

    def __init__(self, pb: Path, cfg: ModelConfig):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        graph_def = load_graph_def(pb)
        wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
        try:
            self._fn = wrapped.prune(f"{cfg.input_name}:0", f"{cfg.output_name}:0")
        except (KeyError, ValueError) as exc:
            raise InputError(
                f"tensor names {cfg.input_name!r} / {cfg.output_name!r} are not in the graph ({exc})",
                hint=f"fix [input] name / [output] name in {cfg.config_path.name}",
            ) from exc
        self._tf = tf

    def run(self, tensor: np.ndarray) -> np.ndarray:
        return self._fn(self._tf.constant(np.ascontiguousarray(tensor, dtype=np.float32))).numpy()

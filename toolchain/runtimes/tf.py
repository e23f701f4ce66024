"""TensorFlow on the frozen GraphDef: the reference every other runtime is compared with."""

from __future__ import annotations

import os

import numpy as np

from toolchain.core.errors import InputError
from toolchain.runtimes.base import PythonPipeline


class TensorFlowRuntime(PythonPipeline):
    name = "tf"
    description = "TensorFlow, frozen GraphDef (reference)"

    def unavailable_reason(self):
        pb = self.dist.frozen_pb(self.cfg.name)
        return None if pb.is_file() else f"{pb} missing: run `invoke model`"

    def _load(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        graph_def = load_graph_def(self.dist.frozen_pb(self.cfg.name))
        wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
        try:
            self._fn = wrapped.prune(f"{self.cfg.input_name}:0", f"{self.cfg.output_name}:0")
        except (KeyError, ValueError) as exc:
            raise InputError(f"tensor names {self.cfg.input_name!r} / {self.cfg.output_name!r} are not in the graph "
                             f"({exc})", hint=f"fix [input] name / [output] name in {self.cfg.config_path.name}") from exc
        self._tf = tf

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        return self._fn(self._tf.constant(tensor)).numpy()


def load_graph_def(path):
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except DecodeError as exc:
        raise InputError(f"{path} is not a TensorFlow GraphDef ({exc})",
                         hint="pass a frozen .pb (a GraphDef with constants), not a SavedModel or checkpoint") from exc
    if not graph_def.node:
        raise InputError(f"{path} holds an empty GraphDef", hint="pass a frozen .pb with the model's nodes")
    return graph_def

"""TensorFlow on the frozen GraphDef: the reference every other runtime is compared with."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.build.reference import FrozenGraph
from toolchain.runtimes.base import PythonPipeline


class TensorFlowRuntime(PythonPipeline):
    name = "tf"
    description = "TensorFlow, frozen GraphDef (reference)"

    def artifact(self) -> Path:
        return self.dist.frozen_pb(self.cfg.name)

    def unavailable_reason(self):
        pb = self.artifact()
        return None if pb.is_file() else f"{pb} missing: run `invoke model`"

    def _load(self) -> None:
        self._graph = FrozenGraph(self.dist.frozen_pb(self.cfg.name), self.cfg)

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        return self._graph.run(tensor)

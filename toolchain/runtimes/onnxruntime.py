"""ONNX Runtime on the converted model, single-threaded (``onnxruntime-1t``) and default (``onnxruntime``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.runtimes.base import PythonPipeline


class OnnxRuntime1T(PythonPipeline):
    name = "onnxruntime-1t"
    description = "ONNX Runtime, 1 intra-op thread"
    threads = 1

    def artifact(self) -> Path:
        return self.dist.onnx(self.cfg.name)

    def unavailable_reason(self):
        path = self.artifact()
        return None if path.is_file() else f"{path} missing: run `invoke convert`"

    def _load(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(self.dist.onnx(self.cfg.name)), opts, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: tensor})[0]


class OnnxRuntimeDefault(OnnxRuntime1T):
    name = "onnxruntime"
    description = "ONNX Runtime, default threads"
    threads = 0

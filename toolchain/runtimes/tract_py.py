"""tract through its PyPI bindings, on the same ONNX file the guest embeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.runtimes.base import PythonPipeline


class TractPython(PythonPipeline):
    name = "tract-py"
    description = "tract (PyPI bindings), optimised plan"

    def artifact(self) -> Path:
        return self.dist.onnx(self.cfg.name)

    def unavailable_reason(self):
        path = self.artifact()
        return None if path.is_file() else f"{path} missing: run `invoke convert`"

    def _load(self) -> None:
        import tract

        # Run by position: tract may report other tensor names than the ONNX file.
        model = tract.onnx().load(str(self.dist.onnx(self.cfg.name)))
        model.set_input_fact(0, f"{','.join(map(str, self.cfg.input_shape))},f32")
        self._plan = model.into_model().into_runnable()

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        return self._plan.run([tensor])[0].to_numpy()

"""The one interface every runtime adapter implements; verify and bench only talk to this."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.core.catalog import DistLayout
from toolchain.core.config import ModelConfig
from toolchain.core.errors import InputError
from toolchain.core.isa import InstructionSet
from toolchain.core.preprocess import image_to_tensor, to_probabilities, top_k


class Runtime:
    """``name`` is the stable name used in verify tables, bench results and ``--runtime``."""

    name = "?"
    description = ""
    # what its kernels run on (the bench's share of peak); None: the widest FMA the CPU has, chosen at run time
    instruction_set: InstructionSet | None = None

    def __init__(self, cfg: ModelConfig, dist: DistLayout):
        self.cfg = cfg
        self.dist = dist

    def unavailable_reason(self) -> str | None:
        """None when this runtime can run here; otherwise what is missing and how to get it."""
        return None

    def artifact(self) -> Path | None:
        """The built file this runtime runs (the Python engines: the model file they load)."""
        return None

    def built_from(self) -> list[Path]:
        """The built files the artifact is made of, in build order, itself included (the bench adds up their
        recorded build times)."""
        return []

    def load(self) -> None:
        """Load the model (once); ``infer``/``classify`` call it lazily."""

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """The model's probability vector for one input tensor (softmax applied if the model lacks it)."""
        raise NotImplementedError

    def classify(self, image_bytes: bytes) -> dict:
        """The result contract for one encoded image, or the error contract ``{"error": ...}``."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class PythonPipeline(Runtime):
    """Runtimes driven from Python: the reference preprocessing, then the engine, then top-5."""

    _loaded = False

    def _run(self, tensor: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def load(self) -> None:
        if not self._loaded:
            self._load()
            self._loaded = True

    def _load(self) -> None:
        raise NotImplementedError

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        self.load()
        return to_probabilities(self._run(np.ascontiguousarray(tensor, dtype=np.float32)), self.cfg)

    def classify(self, image_bytes: bytes) -> dict:
        try:
            tensor = image_to_tensor(image_bytes, self.cfg)
        except InputError as exc:
            return {"error": str(exc)}
        return top_k(self.infer(tensor), self.cfg, self.cfg.labels())

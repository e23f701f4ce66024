"""Shared fixtures: a session-wide dist/ in a temp dir, built once per model by the real stages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from toolchain.core.catalog import DistLayout
from toolchain.core.config import DEFAULT_MODEL, load_model_config

TESTS = Path(__file__).resolve().parent
SMALL_MODEL = TESTS / "models" / "small_mobilenet_v2_0.35_128.toml"


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> DistLayout:
    return DistLayout(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def default_cfg():
    return load_model_config(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def small_cfg():
    return load_model_config(SMALL_MODEL)


def _prepared(cfg, dist):
    from toolchain.build.convert import convert_pb_to_onnx
    from toolchain.build.golden import make_goldens
    from toolchain.build.model import ensure_frozen_model

    ensure_frozen_model(cfg, dist)
    convert_pb_to_onnx(cfg, dist)
    make_goldens(cfg, dist)
    return cfg


@pytest.fixture(scope="session")
def default_model(default_cfg, dist):
    """The embedded default model taken through model → convert → golden."""
    return _prepared(default_cfg, dist)


@pytest.fixture(scope="session")
def small_model(small_cfg, dist):
    return _prepared(small_cfg, dist)


@pytest.fixture(scope="session")
def built(default_model, dist):
    """Every build stage of the default model (guest variants, wasm-opt, Wizer, .cwasm, the Rust host), as
    `invoke build` runs them; cargo's target dirs and the stages' stamps make repeats cheap."""
    from toolchain.pipeline import build_all

    build_all(default_model, dist)
    return default_model

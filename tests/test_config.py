"""The shipped model configs load with the facts the rest of the toolchain relies on (error paths: test_fast_config)."""

import pytest

from toolchain.core.config import load_model_config
from toolchain.core.errors import ConfigError


def test_default_config_facts(default_cfg):
    assert default_cfg.input_shape == (1, 224, 224, 3)
    assert default_cfg.output_name == "MobilenetV2/Predictions/Reshape_1"
    assert default_cfg.classes == 1001 and default_cfg.output_is_softmax
    assert default_cfg.label_of(0) == "background"
    assert default_cfg.label_of(282) == "tabby"  # TF-slim: Keras class 281 shifted by the background entry
    assert default_cfg.central_crop == 0.875 and default_cfg.mean == (127.5,) * 3


def test_small_config_differs(small_cfg):
    assert small_cfg.input_shape == (1, 128, 128, 3) and small_cfg.classes == 10
    assert small_cfg.label_of(0) == "airplane"


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ConfigError, match="mobilenet_v2_1.4_224"):
        load_model_config("no_such_model")

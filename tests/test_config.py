import pytest

from toolchain.core.config import load_model_config
from toolchain.core.errors import ConfigError

GOOD = (
    __import__("pathlib").Path(__file__).resolve().parent.parent / "models" / "mobilenet_v2_1.4_224.toml"
).read_text()


def write(tmp_path, text, labels=None):
    (tmp_path / "imagenet_1001_labels.txt").write_text(labels if labels is not None else "x\n" * 1001)
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


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


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("central_crop = 0.875", "central_crop = 1.5", "central_crop"),
        ('resize = "bilinear"', 'resize = "lanczos"', "not supported"),
        ('layout = "NHWC"', 'layout = "NCHW"', "NHWC"),
        ('kind = "generator"', 'kind = "http"', "kind must be"),
        ('name = "input"\n', "", "missing key 'name'"),
        ("[tolerance]", "[tolerance\n", "not valid TOML"),
        ("central_crop = 0.875", "centrl_crop = 0.875", "unknown key 'centrl_crop'.*did you mean 'central_crop'"),
        ("[limits]", "[limit]", r"unknown section \[limit\].*did you mean \[limits\]"),
        ("offset = 0", 'offset = 0\ncolour = "rgb"', "unknown key 'colour'.*takes file, offset"),
    ],
)
def test_invalid_configs_are_refused(tmp_path, old, new, message):
    assert old in GOOD
    with pytest.raises(ConfigError, match=message):
        load_model_config(write(tmp_path, GOOD.replace(old, new, 1)))


def test_too_few_labels(tmp_path):
    with pytest.raises(ConfigError, match="has 10 lines"):
        load_model_config(write(tmp_path, GOOD, labels="x\n" * 10))

"""Fast tests of load_model_config's error paths, on copies of the default model's TOML edited in a temp dir."""

from __future__ import annotations

import re
import shutil

import pytest

from toolchain.core.config import DEFAULT_MODEL, MODELS_DIR, REPO_ROOT, load_model_config
from toolchain.core.errors import ConfigError
from toolchain.core.jpeg import JPEG_DECODERS
from toolchain.core.resize import RESIZE_FILTERS

GOOD_PATH = MODELS_DIR / f"{DEFAULT_MODEL}.toml"
GOOD = GOOD_PATH.read_text(encoding="utf-8")
LABELS = "imagenet_1001_labels.txt"


@pytest.fixture
def write(tmp_path):
    """Write an edited copy of the default config (and its label file) into tmp_path; return its path."""
    shutil.copy(MODELS_DIR / LABELS, tmp_path / LABELS)

    def write_config(text: str, name: str = "edited.toml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write_config


def edited(old: str, new: str) -> str:
    assert GOOD.count(old) >= 1, old
    return GOOD.replace(old, new, 1)


def refused(path) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        load_model_config(path)
    assert exc.value.exit_code == 2
    return exc.value


def test_an_unedited_copy_loads_like_the_original(write):
    copy = load_model_config(write(GOOD))
    original = load_model_config(DEFAULT_MODEL)
    assert copy.config_path != original.config_path
    assert (copy.name, copy.input_shape, copy.central_crop, copy.resize, copy.mean, copy.std, copy.classes) == (
        original.name,
        original.input_shape,
        original.central_crop,
        original.resize,
        original.mean,
        original.std,
        original.classes,
    )
    assert copy.labels_path == (write(GOOD).parent / LABELS).resolve()


# --- not TOML --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace("[tolerance]", "[tolerance", 1),
        GOOD.replace('resize = "tf2-bilinear"', 'resize = "tf2-bilinear', 1),
        GOOD + "\nshape = [1, 2]\n[input]\n",  # a table defined twice
        "not = toml = at all",
    ],
)
def test_bad_toml_is_a_config_error_naming_the_file(write, text):
    path = write(text)
    err = refused(path)
    assert err.message.startswith(f"{path}: not valid TOML (")
    assert err.hint == "fix the syntax"


# --- missing keys -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "section", ["model", "source", "input", "output", "labels", "preprocess", "limits", "tolerance"]
)
def test_a_missing_section_is_named(write, section):
    start = GOOD.index(f"[{section}]")
    end = GOOD.find("\n[", start + 1)
    text = GOOD[:start] + (GOOD[end + 1 :] if end != -1 else "")  # the section and its keys left out
    path = write(text)
    err = refused(path)
    assert err.message == f"{path}: missing key '{section}'"
    assert "mobilenet_v2_1.4_224.toml" in err.hint


@pytest.mark.parametrize(
    "line,where",
    [
        ('kind = "generator"\n', "[source]"),
        ('generator = "mobilenet_v2"\n', "[source]"),
        ("shape = [1, 224, 224, 3]\n", "[input]"),
        ("classes = 1001\n", "[output]"),
        ("softmax = true", "[output]"),
        ('file = "imagenet_1001_labels.txt"', "[labels]"),
        ("central_crop = 0.875\n", "[preprocess]"),
        ('resize = "tf2-bilinear"', "[preprocess]"),
        ('name = "mobilenet_v2_1.4_224"\n', "[model]"),
    ],
)
def test_a_missing_key_is_named_with_its_section(write, line, where):
    key = line.split("=")[0].strip()
    path = write(edited(line, ""))
    assert refused(path).message == f"{path} {where}: missing key '{key}'"


@pytest.mark.parametrize("line", ["max_pixels = 8388608", "tensor_max_abs = 2e-3", "mean = [127.5, 127.5, 127.5]"])
def test_a_missing_limit_tolerance_or_mean_is_named(write, line):
    key = line.split("=")[0].strip()
    err = refused(write(edited(line, "")))
    assert f"missing key '{key}'" in err.message


def test_a_file_source_needs_a_path(write):
    path = write(edited('kind = "generator"', 'kind = "file"'))
    assert refused(path).message == f"{path} [source]: missing key 'path'"


def test_an_unknown_source_kind(write):
    err = refused(write(edited('kind = "generator"', 'kind = "url"')))
    assert "kind must be 'generator' or 'file', not 'url'" in err.message


# --- central crop ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("crop", ["0.0", "-0.5", "1.0001", "2", "nan", "inf"])
def test_a_central_crop_outside_0_1_is_refused(write, crop):
    path = write(edited("central_crop = 0.875", f"central_crop = {crop}"))
    err = refused(path)
    assert err.message.startswith(f"{path} [preprocess]: central_crop must be in (0, 1], got ")


@pytest.mark.parametrize("crop,value", [("1.0", 1.0), ("1", 1.0), ("0.001", 0.001)])
def test_central_crops_in_0_1_are_accepted(write, crop, value):
    assert load_model_config(write(edited("central_crop = 0.875", f"central_crop = {crop}"))).central_crop == value


# --- resize ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resize", ['"nearest"', '"Bilinear"', '"bicubic"', '"tf2-area"', '""'])
def test_an_unknown_resize_is_refused_with_the_supported_list(write, resize):
    path = write(edited('resize = "tf2-bilinear"', f"resize = {resize}"))
    err = refused(path)
    assert err.message == (
        f"{path} [preprocess]: resize {resize.strip(chr(34))!r} is not supported "
        f"(supported: {', '.join(RESIZE_FILTERS)})"
    )


def test_the_resize_filters_name_their_library():
    assert list(RESIZE_FILTERS) == ["tf2-bilinear", "tf1-bilinear", "pil-nearest", "pil-bilinear", "pil-bicubic"]
    assert {f.name.split("-")[0] for f in RESIZE_FILTERS.values()} == {"tf2", "tf1", "pil"}
    assert all(f.library in ("tensorflow", "pillow") for f in RESIZE_FILTERS.values())


@pytest.mark.parametrize("name", ["tf2-bilinear", "tf1-bilinear", "pil-nearest", "pil-bilinear", "pil-bicubic"])
def test_every_resize_filter_is_accepted(write, name):
    assert load_model_config(write(edited('resize = "tf2-bilinear"', f'resize = "{name}"'))).resize == name


def test_the_old_name_bilinear_still_means_tensorflow_2s_kernel(write):
    assert load_model_config(write(edited('resize = "tf2-bilinear"', 'resize = "bilinear"'))).resize == "tf2-bilinear"


def test_the_guest_accepts_exactly_the_configs_filters():
    """The filter names live in toolchain/core/resize.py and in the guest's `Resize` enum: they must agree."""
    source = (REPO_ROOT / "guest/classifier/src/resize.rs").read_text()
    assert re.findall(r'#\[serde\(rename = "([a-z0-9-]+)"\)\]', source) == list(RESIZE_FILTERS)


def with_jpeg_decoder(value: str) -> str:
    return edited('jpeg_decoder = "pil"', f"jpeg_decoder = {value}")


def test_a_config_without_jpeg_decoder_decodes_as_pil(write):
    assert load_model_config(write(edited('jpeg_decoder = "pil"', ""))).jpeg_decoder == "pil"


@pytest.mark.parametrize("name", ["pil", "tf-integer-accurate", "tf-integer-fast"])
def test_every_jpeg_decoder_is_accepted(write, name):
    assert load_model_config(write(with_jpeg_decoder(f'"{name}"'))).jpeg_decoder == name


@pytest.mark.parametrize("value", ['"libjpeg"', '"tf"', '"PIL"', '""'])
def test_an_unknown_jpeg_decoder_is_refused_with_the_supported_list(write, value):
    path = write(with_jpeg_decoder(value))
    assert refused(path).message == (
        f"{path} [preprocess]: jpeg_decoder {value.strip(chr(34))!r} is not supported "
        f"(supported: {', '.join(JPEG_DECODERS)})"
    )


def test_the_jpeg_decoders_name_their_library():
    assert {d.library for d in JPEG_DECODERS.values()} == {"pillow", "tensorflow"}
    assert all(d.name.startswith("pil" if d.library == "pillow" else "tf-") for d in JPEG_DECODERS.values())


def test_the_guest_accepts_exactly_the_configs_jpeg_decoders():
    """The decoder names live in toolchain/core/jpeg.py and in the guest's `jpeg::Decoder` enum: they must agree."""
    source = (REPO_ROOT / "guest/classifier/src/jpeg.rs").read_text()
    assert re.findall(r'#\[serde\(rename = "([a-z0-9-]+)"\)\]', source) == list(JPEG_DECODERS)


def test_a_jpeg_tolerance_is_no_longer_a_setting(write):
    """Decoding is exact now (issue #18), so the old per-model allowance is refused rather than silently ignored."""
    path = write(edited("tensor_max_abs", "jpeg_decode_max_abs = 8\ntensor_max_abs"))
    assert "jpeg_decode_max_abs" in refused(path).message


# --- other validation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("shape = [1, 224, 224, 3]", "shape = [1, 3, 224, 224]", "only NHWC [1, H, W, 3]"),
        ("shape = [1, 224, 224, 3]", "shape = [2, 224, 224, 3]", "only NHWC [1, H, W, 3]"),
        ("shape = [1, 224, 224, 3]", "shape = [224, 224, 3]", "only NHWC [1, H, W, 3]"),
        ('layout = "NHWC"', 'layout = "NCHW"', "layout NCHW"),
        ("std = [127.5, 127.5, 127.5]", "std = [127.5, 0, 127.5]", "std non-zero"),
        ("mean = [127.5, 127.5, 127.5]", "mean = [127.5, 127.5]", "mean and std need 3 values each"),
        ("offset = 0", "offset = -1", "with offset -1 need 1000"),
        ("offset = 0", "offset = 1", "has 1001 lines, but 1001 classes with offset 1 need 1002"),
        ("classes = 1001", "classes = 1002", "need 1002"),
        ('file = "imagenet_1001_labels.txt"', 'file = "no_such_labels.txt"', "does not exist"),
    ],
)
def test_other_invalid_values_are_refused(write, old, new, message):
    assert message in refused(write(edited(old, new))).message


def test_a_relative_file_source_is_resolved_against_the_config(write, tmp_path):
    cfg = load_model_config(write(edited('kind = "generator"', 'kind = "file"\npath = "graphs/m.pb"')))
    assert cfg.source.kind == "file" and cfg.source.path == tmp_path / "graphs" / "m.pb"


def test_a_missing_config_file_lists_the_known_models(tmp_path):
    err = refused(tmp_path / "absent.toml")
    assert err.message == f"no model config at {tmp_path / 'absent.toml'}"
    assert DEFAULT_MODEL in err.hint
    err = refused("no_such_model")
    assert err.message == f"no model config at {MODELS_DIR / 'no_such_model.toml'}"


# --- unknown sections and keys (a typo must not silently fall back to a default) --------------------------------


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("central_crop = 0.875", "centrl_crop = 0.875", "unknown key 'centrl_crop'.*did you mean 'central_crop'"),
        ("[limits]", "[limit]", r"unknown section \[limit\].*did you mean \[limits\]"),
        ("offset = 0", 'offset = 0\ncolour = "rgb"', "unknown key 'colour'.*takes file, offset"),
    ],
)
def test_unknown_sections_and_keys_are_refused_with_a_hint(write, old, new, message):
    with pytest.raises(ConfigError, match=message):
        load_model_config(write(edited(old, new)))


# --- wrong types and ranges: a ConfigError naming the key, never a TypeError ------------------------------------


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("mean = [127.5, 127.5, 127.5]", "mean = 127.5", r"\[preprocess\]: mean = 127.5 is not a list of numbers"),
        ("shape = [1, 224, 224, 3]", "shape = 224", r"\[input\]: shape = 224 is not a list of integers"),
        ("shape = [1, 224, 224, 3]", 'shape = [1, "224", 224, 3]', "shape = .* is not a list of integers"),
        ("central_crop = 0.875", 'central_crop = "big"', "central_crop = 'big' is not a number"),
        ("softmax = true", 'softmax = "yes"', r"\[output\]: softmax = 'yes' is not true or false"),
        ("classes = 1001", "classes = 0", r"\[output\]: classes = 0 is not a positive integer"),
        ("max_pixels = 8388608", "max_pixels = -1", r"\[limits\]: max_pixels = -1 is not a positive integer"),
        ("max_side = 8192", "max_side = 0", "max_side = 0 is not a positive integer"),
        ("image_max_abs = 2e-3", "image_max_abs = -0.1", r"\[tolerance\]: image_max_abs = -0.1 is not a number ≥ 0"),
        ('name = "mobilenet_v2_1.4_224"', 'name = "../../etc"', r"\[model\]: name = '../../etc' is not a usable"),
        ('name = "mobilenet_v2_1.4_224"', "name = 3", r"\[model\]: name = 3 is not a usable model name"),
        ("seed = 20261125", 'seed = "x"', r"\[source\]: seed = 'x' is not an integer"),
    ],
)
def test_wrong_types_and_ranges_name_the_key(write, old, new, message):
    with pytest.raises(ConfigError, match=message) as exc:
        load_model_config(write(edited(old, new)))
    assert exc.value.exit_code == 2


def test_a_section_that_is_not_a_table_is_refused(write):
    with pytest.raises(ConfigError, match=r"\[model\] must be a table"):
        load_model_config(write("model = 3\n" + GOOD.split("[source]", 1)[1].join(["[source]", ""])))

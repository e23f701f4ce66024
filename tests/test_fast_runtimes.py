"""Fast tests of the runtime registry: names, lookup errors, and availability on an empty dist/ (nothing is
loaded or built: every runtime only checks for its artifact)."""

from __future__ import annotations

import pytest

from toolchain.core.catalog import DistLayout
from toolchain.core.config import load_model_config
from toolchain.core.errors import ConfigError
from toolchain.runtimes import REGISTRY, make_runtime, runtime_names, select_runtimes

EXPECTED = [
    "tf",
    "onnxruntime-1t",
    "onnxruntime",
    "tract-py",
    "native-tract",
    "wasm-jit",
    "wasm-aot",
    "wasm-preinit-aot",
    "wasm-wasinn",
    "wasm01-aot",
    "actionloop-exec",
    "container",
    "native-ort",
]


@pytest.fixture(scope="module")
def cfg():
    return load_model_config()


def test_runtime_names_are_unique_and_in_registry_order():
    names = runtime_names()
    assert len(names) == len(set(names))
    assert names == [cls.name for cls in REGISTRY]
    assert names == EXPECTED


def test_every_runtime_has_a_real_name_and_a_description():
    for cls in REGISTRY:
        assert cls.name != "?" and cls.name == cls.name.strip().lower() and " " not in cls.name
        assert cls.description


def test_make_runtime_by_name(cfg, tmp_path):
    dist = DistLayout(tmp_path)
    for name in runtime_names():
        rt = make_runtime(name, cfg, dist)
        assert rt.name == name and rt.cfg is cfg and rt.dist == dist


def test_make_runtime_of_an_unknown_name_lists_the_known_ones(cfg, tmp_path):
    with pytest.raises(ConfigError) as exc:
        make_runtime("wasm-magic", cfg, DistLayout(tmp_path))
    err = exc.value
    assert err.message == "unknown runtime 'wasm-magic'"
    assert err.hint == "choose one of: " + ", ".join(EXPECTED)
    assert err.exit_code == 2


def test_names_are_matched_exactly(cfg, tmp_path):
    for wrong in ("TF", " tf", "wasm", "onnxruntime-", ""):
        with pytest.raises(ConfigError):
            make_runtime(wrong, cfg, DistLayout(tmp_path))


def test_nothing_is_available_on_an_empty_dist(cfg, tmp_path):
    ready, missing = select_runtimes(cfg, DistLayout(tmp_path))
    assert ready == []
    assert list(missing) == EXPECTED  # every runtime, in registry order
    for name, reason in missing.items():
        assert isinstance(reason, str) and "missing" in reason and "invoke" in reason, (name, reason)
        assert str(tmp_path) in reason, (name, reason)  # it names the file it looked for


@pytest.mark.parametrize(
    "name,needs",
    [
        ("tf", "invoke model"),
        ("onnxruntime-1t", "invoke convert"),
        ("onnxruntime", "invoke convert"),
        ("tract-py", "invoke convert"),
        ("native-tract", "invoke build"),
        ("wasm-jit", "invoke build"),
        ("wasm-aot", "invoke build"),
        ("wasm-preinit-aot", "invoke build"),
        ("wasm01-aot", "invoke build"),
        ("actionloop-exec", "invoke package"),
        ("container", "invoke package"),
        ("native-ort", "invoke package"),
    ],
)
def test_each_missing_reason_says_which_task_makes_the_artifact(cfg, tmp_path, name, needs):
    _, missing = select_runtimes(cfg, DistLayout(tmp_path), [name])
    assert needs in missing[name]


def test_select_a_subset_by_name(cfg, tmp_path):
    ready, missing = select_runtimes(cfg, DistLayout(tmp_path), ["wasm-aot", "tf"])
    assert ready == [] and list(missing) == ["wasm-aot", "tf"]


def test_select_an_unknown_name_raises(cfg, tmp_path):
    with pytest.raises(ConfigError, match="unknown runtime 'nope'"):
        select_runtimes(cfg, DistLayout(tmp_path), ["tf", "nope"])


def test_a_runtime_becomes_ready_when_its_artifact_exists(cfg, tmp_path):
    dist = DistLayout(tmp_path)
    dist.onnx(cfg.name).parent.mkdir(parents=True)
    dist.onnx(cfg.name).write_bytes(b"not really onnx")  # availability only checks that the file is there
    ready, missing = select_runtimes(cfg, dist)
    assert [rt.name for rt in ready] == ["onnxruntime-1t", "onnxruntime", "tract-py"]
    assert "tf" in missing and "onnxruntime" not in missing
    assert len(ready) + len(missing) == len(EXPECTED)

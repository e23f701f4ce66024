import json

import jsonschema
import pytest

from toolchain.core.artifact import KINDS, SCHEMA_PATH
from toolchain.package.manifest import build_manifest, validate_manifest, write_manifest

pytestmark = pytest.mark.slow


def test_manifest_lists_every_artifact_and_is_stable(default_model, small_model, dist):
    first = write_manifest(dist).read_bytes()
    second = write_manifest(dist).read_bytes()
    assert first == second
    manifest = json.loads(first)
    kinds = {(a["model"], a["kind"]) for a in manifest["artifacts"]}
    for model in (default_model.name, small_model.name):
        assert {(model, "frozen-pb"), (model, "onnx"), (model, "golden-set")} <= kinds
        assert manifest["models"][model]["pb_sha256"] in {a["sha256"] for a in manifest["artifacts"]}
    assert manifest["models"][default_model.name]["parameters"] == 6_158_505
    for tool in ("tensorflow-cpu", "tf2onnx", "onnxruntime", "tract", "wasmtime", "rustc", "wasm-opt"):
        assert tool in manifest["tools"], tool


def test_schema_kinds_match_code():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert tuple(schema["properties"]["artifacts"]["items"]["properties"]["kind"]["enum"]) == KINDS


@pytest.mark.parametrize(
    "breakage",
    [
        lambda m: m["artifacts"][0].update(kind="renamed-kind"),
        lambda m: m["artifacts"][0].update(sha256="abc"),
        lambda m: m["artifacts"][0].pop("bytes"),
        lambda m: m.update(extra=1),
    ],
)
def test_schema_rejects_broken_manifests(default_model, dist, breakage):
    manifest = build_manifest(dist)
    validate_manifest(manifest)
    breakage(manifest)
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(manifest)


def test_artifacts_are_world_readable(default_model, dist):
    import stat

    for path in (dist.frozen_pb(default_model.name), dist.onnx(default_model.name), write_manifest(dist)):
        assert stat.S_IMODE(path.stat().st_mode) & 0o444 == 0o444, path

"""Fast tests of the pure parts of the OpenWhisk deploy description: memory limits from a measured peak,
the wskdeploy manifest text, the wsk command text, the payload-limit check and the measurement image."""

from __future__ import annotations

import dataclasses
import io

import pytest
from PIL import Image

from toolchain.core.catalog import DistLayout, deploy_paths
from toolchain.core.config import load_model_config
from toolchain.core.errors import StageError
from toolchain.measure.peaks import plan_actions
from toolchain.package.deploy import (
    MEMORY_HEADROOM,
    MEMORY_MAX_MB,
    MEMORY_MIN_MB,
    PAYLOAD_LIMIT,
    TIMEOUT_MS,
    ActionPlan,
    largest_accepted_image,
    memory_limit_mb,
    wsk_commands,
    wskdeploy_yaml,
)


@pytest.fixture(scope="module")
def cfg():
    return load_model_config()


@pytest.fixture(scope="module")
def tiny_cfg(cfg):
    """The default model's config with a small pixel limit, so the measurement image is cheap to make."""
    return dataclasses.replace(cfg, max_pixels=10_000, max_side=1_000)


PLANS = [
    ActionPlan("m-wasm", "m-wasmtime.zip", "wasm:0.1", 150.2, 192, "a JPEG"),
    ActionPlan("m-exec", "m-exec.zip", "native", 90.0, 128, "a JPEG"),
    ActionPlan("m-container", "m-image.tar", "docker", 200.0, 256, "a JPEG", image="reg/m:0.1.0"),
]


# --- memory limits -----------------------------------------------------------------------------------------


def test_openwhisk_memory_range_and_headroom_constants():
    assert (MEMORY_MIN_MB, MEMORY_MAX_MB) == (128, 512)
    assert MEMORY_HEADROOM == 1.25
    assert TIMEOUT_MS == 60_000
    assert PAYLOAD_LIMIT == 1024 * 1024


@pytest.mark.parametrize(
    "peak,limit",
    [
        (0.0, 128),  # floor: OpenWhisk's minimum
        (50.0, 128),  # 62.5 -> 64, still under the floor
        (102.4, 128),  # 128.0 exactly: no rounding up
        (102.5, 160),  # 128.125 -> next multiple of 32
        (128.0, 160),  # 160.0 exactly
        (128.1, 192),
        (200.0, 256),  # 250 -> 256
        (409.6, 512),  # 512.0 exactly: the largest peak that fits
    ],
)
def test_memory_limit_is_peak_with_headroom_rounded_up_to_32_mb(peak, limit):
    assert memory_limit_mb(peak, "action") == limit


def test_memory_limit_is_a_multiple_of_32_covering_the_headroom():
    for tenth in range(0, 4097):
        peak = tenth / 10
        got = memory_limit_mb(peak, "a")
        assert got % 32 == 0 and MEMORY_MIN_MB <= got <= MEMORY_MAX_MB
        assert got >= peak * MEMORY_HEADROOM
        assert got == MEMORY_MIN_MB or got - 32 < peak * MEMORY_HEADROOM  # the smallest such multiple


@pytest.mark.parametrize("peak", [409.7, 450.0, 1000.0])
def test_memory_limit_over_openwhisk_maximum_is_a_build_error(peak):
    with pytest.raises(StageError) as exc:
        memory_limit_mb(peak, "m-exec")
    err = exc.value
    assert "m-exec" in err.message and "512 MB" in err.message
    assert "max_pixels" in err.hint
    assert err.exit_code == 4


def test_memory_limit_error_names_the_needed_size():
    with pytest.raises(StageError, match="needs 544 MB"):
        memory_limit_mb(420.0, "x")  # 525 -> 544


# --- wskdeploy manifest ------------------------------------------------------------------------------------


def test_wskdeploy_yaml_exact_text(cfg):
    expected = f"""\
# wskdeploy manifest for mobilenet_v2_1.4_224, written by `invoke package`.
# Memory limits: measured peak RSS on the largest accepted image x 1.25, rounded up to 32 MB.
# The container actions need their images in a registry the invokers can pull from:
#   podman load -i m-image.tar && podman push reg/m:0.1.0 <registry>/reg/m:0.1.0
packages:
  mobilenet:
    actions:
      m-wasm:  # peak 150.2 MB
        function: m-wasmtime.zip
        runtime: wasm:0.1
        limits:
          memorySize: 192
          timeout: 60000
      m-exec:  # peak 90.0 MB
        function: m-exec.zip
        native: true
        limits:
          memorySize: 128
          timeout: 60000
      m-container:  # peak 200.0 MB
        docker: reg/m:0.1.0
        limits:
          memorySize: 256
          timeout: {TIMEOUT_MS}
"""
    assert wskdeploy_yaml(cfg, PLANS) == expected


def test_wskdeploy_yaml_without_docker_actions_has_no_podman_lines(cfg):
    text = wskdeploy_yaml(cfg, PLANS[:2])
    assert "podman" not in text and "docker:" not in text
    assert text.endswith("timeout: 60000\n")


def test_wskdeploy_yaml_one_block_per_action_in_plan_order(cfg):
    text = wskdeploy_yaml(cfg, PLANS)
    action_lines = [ln for ln in text.splitlines() if ln.startswith("      ") and not ln.startswith("       ")]
    assert [ln.split(":")[0].strip() for ln in action_lines] == ["m-wasm", "m-exec", "m-container"]
    assert text.count("\n          memorySize: ") == 3 and text.count("\n        limits:\n") == 3


def test_wskdeploy_yaml_with_no_plans_is_still_a_manifest(cfg):
    text = wskdeploy_yaml(cfg, [])
    assert text.splitlines()[-3:] == ["packages:", "  mobilenet:", "    actions:"]


# --- wsk commands ------------------------------------------------------------------------------------------


def test_wsk_commands_exact_text():
    assert wsk_commands(PLANS) == (
        "#!/bin/sh\n"
        "# The wsk commands for these actions (written by `invoke package`). Run from this directory.\n"
        "set -eu\n"
        "wsk action update m-wasm m-wasmtime.zip --kind wasm:0.1 --memory 192 --timeout 60000\n"
        "wsk action update m-exec m-exec.zip --native --memory 128 --timeout 60000\n"
        "#   or, on an actionloop runtime (the model stays loaded between activations):\n"
        "#   wsk action update m-exec m-exec.zip --kind go:1.23 --memory 128 --timeout 60000\n"
        "#   wsk action update m-exec m-exec.zip --docker openwhisk/actionloop-base --memory 128 --timeout 60000\n"
        "wsk action update m-container --docker reg/m:0.1.0 --memory 256 --timeout 60000\n"
    )


def test_wsk_commands_refuse_an_unknown_action_kind():
    with pytest.raises(KeyError):
        wsk_commands([ActionPlan("x", "x.zip", "nodejs:20", 1.0, 128, "")])


def test_wsk_commands_with_no_plans_is_only_the_preamble():
    assert wsk_commands([]).splitlines() == [
        "#!/bin/sh",
        "# The wsk commands for these actions (written by `invoke package`). Run from this directory.",
        "set -eu",
    ]


def test_deploy_paths_are_per_model_in_the_openwhisk_dir(tmp_path):
    dist = DistLayout(tmp_path)
    paths = deploy_paths("m", dist)
    assert paths == {
        "wskdeploy": tmp_path / "openwhisk" / "m-manifest.yaml",
        "commands": tmp_path / "openwhisk" / "m-deploy.sh",
        "plan": tmp_path / "openwhisk" / "m-actions.json",
    }


# --- the measurement image and the payload-limit check ------------------------------------------------------


def test_largest_accepted_image_is_a_jpeg_at_the_pixel_limit(tiny_cfg):
    data = largest_accepted_image(tiny_cfg)
    assert data[:2] == b"\xff\xd8"
    assert len(data) <= tiny_cfg.max_image_bytes
    w, h = Image.open(io.BytesIO(data)).size
    assert (w, h) == (200, 50)  # w = min(max_side, isqrt(10000) * 2), h = 10000 // w
    assert w * h <= tiny_cfg.max_pixels and max(w, h) <= tiny_cfg.max_side


def test_largest_accepted_image_keeps_within_the_side_limit(cfg):
    narrow = dataclasses.replace(cfg, max_pixels=40_000, max_side=150)
    w, h = Image.open(io.BytesIO(largest_accepted_image(narrow))).size
    assert (w, h) == (150, 150)  # 40000 // 150 = 266, clipped to the side limit


def test_largest_accepted_image_lowers_quality_to_fit_the_byte_limit(tiny_cfg):
    best = largest_accepted_image(tiny_cfg)
    squeezed = dataclasses.replace(tiny_cfg, max_image_bytes=len(best) - 1)
    data = largest_accepted_image(squeezed)
    assert len(data) < len(best) and Image.open(io.BytesIO(data)).size == (200, 50)


def test_largest_accepted_image_that_cannot_fit_is_a_build_error(tiny_cfg):
    with pytest.raises(StageError, match="cannot make a 200x50 JPEG under 100 bytes"):
        largest_accepted_image(dataclasses.replace(tiny_cfg, max_image_bytes=100))


def test_a_request_within_the_payload_limit_goes_on_to_the_artifacts(tiny_cfg, tmp_path):
    # the payload check passes, so the first thing missing is the wasm:0.1 zip (nothing is measured)
    with pytest.raises(StageError, match="wasmtime.zip missing") as exc:
        plan_actions(tiny_cfg, DistLayout(tmp_path))
    assert "invoke package" in exc.value.hint


def test_a_request_over_the_payload_limit_is_refused(tiny_cfg, tmp_path, monkeypatch):
    # The real limit (1 MiB) needs a multi-megapixel image; the check is the same against a smaller limit.
    request_len = len('{"image": ""}') + 4 * -(-len(largest_accepted_image(tiny_cfg)) // 3)
    monkeypatch.setitem(plan_actions.__globals__, "PAYLOAD_LIMIT", request_len - 1)
    with pytest.raises(StageError, match="payload limit") as exc:
        plan_actions(tiny_cfg, DistLayout(tmp_path))
    assert f"{request_len:,} bytes" in exc.value.message
    assert "max_image_bytes" in exc.value.hint
    monkeypatch.setitem(plan_actions.__globals__, "PAYLOAD_LIMIT", request_len)  # at the limit: accepted
    with pytest.raises(StageError, match="missing"):
        plan_actions(tiny_cfg, DistLayout(tmp_path))

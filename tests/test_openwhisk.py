"""OpenWhisk protocol conformance of the packaged native actions, adapted from OpenWhisk's runtime test suite
(BasicActionRunnerTests): the action image under the podman CLI and through the Docker SDK (against podman's
Docker-compatible service), the same server bare, and the actionloop exec over pipes. Real artifacts, real
processes, real HTTP on localhost."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from toolchain.core.errors import StageError
from toolchain.package.zips import ACTIONLOOP_IMAGES
from toolchain.runtimes.actions import (
    SENTINEL,
    ExecAction,
    ServerAction,
    extract_exec,
    init_like_actionloop_proxy,
    load_image,
    remove_image,
)

pytestmark = pytest.mark.slow

REINIT = {"error": "Cannot initialize the action more than once."}


@pytest.fixture(scope="module")
def packaged(default_model, dist):
    from toolchain.build.golden import load_goldens
    from toolchain.build.guest import build_guest
    from toolchain.build.payload import attach_guests
    from toolchain.package.image import build_action_image
    from toolchain.package.zips import package_exec_zip

    build_guest(dist, ["native", "native-ort"])
    attach_guests(default_model, dist, ["native", "native-ort"])
    exec_zip = package_exec_zip(default_model, dist)
    image, image_id = build_action_image(default_model, dist)
    build_action_image(default_model, dist, "onnxruntime")
    goldens = [g for g in load_goldens(default_model, dist) if g.kind == "photo"]
    return {
        "cfg": default_model,
        "dist": dist,
        "exec_zip": exec_zip,
        "image": image,
        "image_id": image_id,
        "goldens": goldens,
    }


@pytest.fixture(scope="module")
def loaded_image(packaged):
    image_id = load_image(packaged["image"])
    assert image_id == packaged["image_id"]
    yield image_id
    remove_image(image_id)


@pytest.fixture(scope="module")
def docker_loaded_image(packaged, docker_api):
    """The same image loaded through the Docker SDK (`docker load` over the Engine API)."""
    image_id = docker_api.load(packaged["image"])
    assert image_id == packaged["image_id"] and docker_api.exists(image_id)
    yield image_id
    docker_api.remove(image_id)
    assert not docker_api.exists(image_id)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def near_limit_jpeg(max_bytes: int) -> bytes:
    """A noisy JPEG just under the image byte limit (about 1 MB): a large but acceptable input."""
    from PIL import Image

    rng = np.random.default_rng(7)
    side = 1100
    while True:
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
        if buf.tell() <= max_bytes:
            assert buf.tell() > 0.6 * max_bytes
            return buf.getvalue()
        side -= 10


# ---------------------------------------------------------------------------------------------------------
# The action server: in its image under podman, and bare
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded_ort_image(packaged):
    """The ONNX Runtime engine's image (`native-ort`): the same protocol tests run against it."""
    from toolchain.core.catalog import image_path

    image_id = load_image(image_path(packaged["cfg"].name, packaged["dist"], "onnxruntime"))
    yield image_id
    remove_image(image_id)


@pytest.fixture(params=["podman", "docker-sdk", "bare", "podman-onnxruntime"])
def server(request, packaged):
    """A fresh action server per test (so init/run order is the test's own); removed even on failure."""
    if request.param == "podman":
        srv = ServerAction.in_podman(request.getfixturevalue("loaded_image"))
    elif request.param == "docker-sdk":
        srv = request.getfixturevalue("docker_api").run_server(request.getfixturevalue("docker_loaded_image"))
    elif request.param == "podman-onnxruntime":
        srv = ServerAction.in_podman(request.getfixturevalue("loaded_ort_image"))
    else:
        from toolchain.core.catalog import native_cli_path

        srv = ServerAction.bare(native_cli_path(packaged["cfg"].name, packaged["dist"]))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.close()


def test_a_docker_sdk_container_has_its_limits_pid_and_logs(docker_api, docker_loaded_image, packaged):
    """What the podman CLI path gives the benchmarks, the Docker path gives too: the memory limit, the server's
    host PID (peak RSS), and its stdout/stderr split (the activation sentinels)."""
    srv = docker_api.run_server(docker_loaded_image, memory_mb=768)
    try:
        srv.wait_ready()
        assert srv.init().status == 200
        g = packaged["goldens"][0]
        assert srv.run({"image": b64(g.image_bytes)}).body["index"] == g.tf_result["index"]
        assert srv.stdout.wait_for(1).count(SENTINEL) == 1 and srv.stderr.wait_for(1).count(SENTINEL) == 1
        assert (srv.peak_rss_kib() or 0) > 20_000
        container = srv.process.container  # type: ignore[attr-defined]
        container.reload()
        assert container.attrs["HostConfig"]["Memory"] == 768 * 2**20
        # Docker names them "nofile", podman's compatible service "RLIMIT_NOFILE"
        ulimits = container.attrs["HostConfig"]["Ulimits"]
        limits = {u["Name"].lower().removeprefix("rlimit_"): u["Hard"] for u in ulimits}
        assert limits == {"nofile": 1024, "nproc": 1024}
    finally:
        srv.close()
    assert srv.process.exit_code() is not None  # removed


def test_run_before_init_is_served(server, packaged):
    g = packaged["goldens"][0]
    answer = server.run({"image": b64(g.image_bytes)})
    assert answer.status == 200 and answer.body["index"] == g.tf_result["index"]


def test_init_once_then_refused_and_no_sentinel_after_init(server, packaged):
    first = server.init()
    assert (first.status, first.body) == (200, {"ok": True})
    again = server.init()
    assert (again.status, again.body) == (403, REINIT)
    g = packaged["goldens"][1]
    assert server.run({"image": b64(g.image_bytes)}).status == 200
    out, err = server.stdout.wait_for(1), server.stderr.wait_for(1)
    # exactly one activation happened, so exactly one sentinel per stream: none came from the two inits
    assert out.count(SENTINEL) == 1 and err.count(SENTINEL) == 1, (out, err)


def test_results_match_tensorflow_and_sentinels_follow_every_run(server, packaged):
    server.init()
    goldens = packaged["goldens"]
    for g in goldens:
        answer = server.run({"image": b64(g.image_bytes)})
        assert answer.status == 200, answer
        assert answer.body["index"] == g.tf_result["index"] and answer.body["label"] == g.tf_result["label"]
        assert abs(answer.body["confidence"] - g.tf_result["confidence"]) < packaged["cfg"].image_tolerance
    n = len(goldens)
    assert server.stdout.wait_for(n).count(SENTINEL) == n
    assert server.stderr.wait_for(n).count(SENTINEL) == n


@pytest.mark.parametrize("value", [[1, 2, 3], "just a string", 42, None])
def test_a_value_that_is_not_an_object_gets_the_error_contract(server, value):
    answer = server.run(value)
    assert answer.status == 200 and set(answer.body) == {"error"} and "JSON object" in answer.body["error"]


def test_unicode_params(server, packaged):
    g = packaged["goldens"][0]
    ok = server.run({"image": b64(g.image_bytes), "note": "❄ ☃ ❄"})
    assert ok.status == 200 and ok.body["index"] == g.tf_result["index"]
    bad = server.run({"image": "❄ ☃ ❄"})
    assert bad.status == 200 and "base64" in bad.body["error"]


def test_large_inputs(server, packaged):
    not_an_image = server.run({"image": "a" * 1_048_560})  # about OpenWhisk's "echo a large input" size, valid base64
    assert not_an_image.status == 200 and "not a recognised image" in not_an_image.body["error"]
    big = near_limit_jpeg(packaged["cfg"].max_image_bytes)
    accepted = server.run({"image": b64(big)})
    assert accepted.status == 200 and len(accepted.body["top5"]) == 5, accepted


def test_bodies_over_the_limit_get_413_and_the_server_keeps_serving(server, packaged):
    too_big = server.post("/run", b'{"value": {"image": "' + b"A" * (2 * 1024 * 1024) + b'"}}')
    assert too_big.status == 413 and "limit" in too_big.body["error"]
    g = packaged["goldens"][0]
    assert server.run({"image": b64(g.image_bytes)}).body["index"] == g.tf_result["index"]


def test_activation_fields_reach_the_action(server, packaged):
    g = packaged["goldens"][0]
    server.run({"image": b64(g.image_bytes)}, activation_id="act-4711", action_name="/guest/mobilenet")
    logs = [json.loads(line) for line in server.stderr.wait_for(1) if line.startswith("{")]
    assert any(e["activation_id"] == "act-4711" and e["action_name"] == "/guest/mobilenet" for e in logs), logs


def test_concurrent_requests_are_all_answered_correctly(server, packaged):
    goldens = packaged["goldens"]
    jobs = [goldens[i % len(goldens)] for i in range(12)]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda g: server.run({"image": b64(g.image_bytes)}), jobs))
    assert [a.body.get("index") for a in answers] == [g.tf_result["index"] for g in jobs]
    assert server.stdout.wait_for(len(jobs)).count(SENTINEL) == len(jobs)


def test_bad_image_then_good_request(server, packaged):
    g = packaged["goldens"][0]
    truncated = server.run({"image": b64(g.image_bytes[: len(g.image_bytes) // 2])})
    assert truncated.status == 200 and set(truncated.body) == {"error"}
    assert server.run({"image": b64(g.image_bytes)}).body["index"] == g.tf_result["index"]


def test_malformed_http_gets_json_errors(server):
    assert server.post("/run", b"{not json").status == 400
    assert server.post("/run", {"no_value": 1}).body["error"].startswith("activation has no")
    assert server.post("/nowhere", {}).status == 404


# ---------------------------------------------------------------------------------------------------------
# The actionloop exec, over pipes as the Go proxy drives it
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def exec_action(packaged, tmp_path):
    action = ExecAction(extract_exec(packaged["exec_zip"], tmp_path))
    yield action
    action.close()


def test_exec_acks_then_answers_one_line_per_activation(exec_action, packaged):
    assert exec_action.ack == {"ok": True}
    for g in packaged["goldens"][:3]:
        assert exec_action.activate({"image": b64(g.image_bytes)})["index"] == g.tf_result["index"]
    assert exec_action.close() == 0  # stdin closed: a clean exit


def test_exec_refuses_bad_activations_and_keeps_going(exec_action, packaged):
    g = packaged["goldens"][0]
    assert "JSON object" in exec_action.activate([1, 2])["error"]
    assert "not valid JSON" in exec_action.activate_raw(b"{not json")["error"]
    assert 'no "value"' in exec_action.activate_raw(b'{"namespace": "x"}')["error"]
    assert "base64" in exec_action.activate({"image": "❄ ☃ ❄"})["error"]
    assert "not a recognised image" in exec_action.activate({"image": "a" * 1_048_560})["error"]
    over = exec_action.activate_raw(b'{"value": {"image": "' + b"A" * (2 * 1024 * 1024) + b'"}}')
    assert "limit" in over["error"]
    assert exec_action.activate({"image": b64(g.image_bytes)})["index"] == g.tf_result["index"]


def test_exec_sees_activation_fields_as_ow_variables(exec_action, packaged):
    g = packaged["goldens"][0]
    exec_action.activate({"image": b64(g.image_bytes)}, activation_id="act-0815", action_name="/g/m")
    exec_action.close()
    logs = [json.loads(line) for line in exec_action.stderr.snapshot() if line.startswith("{")]
    assert any(e["activation_id"] == "act-0815" and e["action_name"] == "/g/m" for e in logs), logs


def test_exec_without_fd3_answers_once_like_the_docker_skeleton(packaged, tmp_path):
    exe = extract_exec(packaged["exec_zip"], tmp_path)
    for g in packaged["goldens"]:
        value = json.dumps({"image": b64(g.image_bytes)})
        # the skeleton passes the value as argv[1] too, when it fits an argument (< 128 KiB)
        argv = [str(exe), value] if len(value) < 131072 else [str(exe)]
        proc = subprocess.run(argv, input=value.encode(), capture_output=True, timeout=120, env={})
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.splitlines()[-1])["index"] == g.tf_result["index"]


def test_exec_zip_layout(packaged):
    import zipfile

    from toolchain.package.zips import EXEC_ENV

    with zipfile.ZipFile(packaged["exec_zip"]) as zf:
        assert zf.namelist() == ["exec", "exec.env"]
        assert (zf.getinfo("exec").external_attr >> 16) & 0o777 == 0o755
        head = zf.open("exec").read(20)
        assert zf.read("exec.env") == f"{EXEC_ENV}\n".encode()
    assert head[:4] == b"\x7fELF" and head[4] == 2  # a 64-bit ELF


@pytest.mark.parametrize("image", ACTIONLOOP_IMAGES, ids=lambda i: i.deploy)
def test_exec_zip_starts_as_each_actionloop_image_runs_it(packaged, image, tmp_path):
    """The Go proxy's /init replayed with each image's environment (the golang images check exec.env)."""
    action = init_like_actionloop_proxy(packaged["exec_zip"].read_bytes(), tmp_path, image)
    try:
        assert action.ack == ({"ok": True} if image.wait_for_ack else None)
        g = packaged["goldens"][0]
        assert action.activate({"image": b64(g.image_bytes)})["index"] == g.tf_result["index"]
    finally:
        action.close()


def test_a_golang_image_refuses_an_exec_zip_without_exec_env(packaged, tmp_path):
    """What README's old advice (`--kind go:1.22` with a bare `exec`) met: /init answers 502."""
    import zipfile

    from toolchain.package.archive import Entry, zip_bytes

    with zipfile.ZipFile(packaged["exec_zip"]) as zf:
        bare = zip_bytes([Entry("exec", zf.read("exec"), 0o755)], 0, compress=True)
    golang = next(i for i in ACTIONLOOP_IMAGES if i.execution_env)
    with pytest.raises(StageError, match="502.*exec.env is None"):
        init_like_actionloop_proxy(bare, tmp_path, golang)


def test_image_is_deterministic_and_labelled(packaged):
    from toolchain.package.archive import source_date_epoch
    from toolchain.package.image import image_files, image_spec
    from toolchain.package.oci import docker_archive

    cfg = packaged["cfg"]
    spec = image_spec(cfg, image_files(cfg, packaged["dist"], "tract"), source_date_epoch())
    again, image_id = docker_archive(spec, source_date_epoch())
    assert image_id == packaged["image_id"] and again == packaged["image"].read_bytes()
    assert spec.labels["org.opencontainers.image.revision"] and spec.entrypoint[-1] == "serve"


def test_packaged_actions_match_tensorflow(packaged, loaded_image):
    from toolchain.measure.verify import format_table, verify

    report = verify(packaged["cfg"], packaged["dist"], ["actionloop-exec", "container", "native-ort"])
    print(format_table(report))
    assert report["ok"], format_table(report)
    assert [r["runtime"] for r in report["runtimes"]] == ["actionloop-exec", "container", "native-ort"]
    for row in report["runtimes"]:
        assert row["resize_max_abs"] == 0.0 and row["top1_agree"] == row["cases"]


# ---------------------------------------------------------------------------------------------------------
# The bad-input corpus through both protocols
# ---------------------------------------------------------------------------------------------------------


def test_bad_inputs_through_the_action_server(server, packaged):
    from bad_inputs import CORPUS, check_answer

    for name, request, expected in CORPUS:
        answer = server.post("/run", b'{"value": ' + request + b', "activation_id": "corpus"}')
        assert answer.status in (200, 400), (name, answer)
        check_answer(name, expected, answer.body)
    g = packaged["goldens"][0]
    assert server.run({"image": b64(g.image_bytes)}).body["index"] == g.tf_result["index"]  # still serving


def test_bad_inputs_through_the_exec(exec_action, packaged):
    from bad_inputs import CORPUS, check_answer

    for name, request, expected in CORPUS:
        check_answer(name, expected, exec_action.activate_raw(b'{"value": ' + request.replace(b"\n", b" ") + b"}"))
    g = packaged["goldens"][0]
    assert exec_action.activate({"image": b64(g.image_bytes)})["index"] == g.tf_result["index"]


def test_exec_memory_is_flat_after_warm_up(exec_action, packaged):
    """A warm action serves for hours: RSS must not trend up over mixed activations (glibc's heap grew
    ~7 MB per activation here, an OOM kill under OpenWhisk's limit). The allocator returns memory lazily,
    so RSS fluctuates: compare the peak of the last window with the peak of the first."""
    goldens = packaged["goldens"]

    def rss_kib():
        for line in open(f"/proc/{exec_action.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

    def window(start: int) -> int:
        peak = 0
        for i in range(start, start + 20):
            exec_action.activate({"image": b64(goldens[i % len(goldens)].image_bytes)}, activation_id=f"a{i}" * (i + 1))
            peak = max(peak, rss_kib())
        return peak

    window(0)  # warm-up: every image size, several times
    first, _, last = window(20), window(40), window(60)
    assert last - first < 16 * 1024, (first, last)


def test_a_short_load_run_answers_everything_and_stays_flat(packaged):
    """`invoke load` bounded to a few seconds (the minute-long run is opt-in; README has its numbers)."""
    from toolchain.measure.load import LoadSettings, run_load

    result = run_load(packaged["cfg"], packaged["dist"], LoadSettings(seconds=6, clients=2, target="server"))
    assert result["ok"] and result["failed"] == 0 and result["requests"]["bad"] > 0

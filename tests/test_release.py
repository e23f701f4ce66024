"""`invoke release` (issue #19): the release directory from a packaged dist/, with checksums that `sha256sum -c`
accepts, SBOMs that the CycloneDX project's validator accepts and that list tract and wasmtime at their locked
versions, and nothing half-written when it cannot be made."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import tomllib
import urllib.request

import jsonschema
import pytest

from toolchain.build.cargo import GUEST_DIR, HOST_DIR
from toolchain.build.golden import load_goldens
from toolchain.core.catalog import ENGINES, deploy_paths, image_reference
from toolchain.core.config import REPO_ROOT
from toolchain.core.errors import InputError, StageError
from toolchain.core.programs import DOCKER_REGISTRY
from toolchain.measure.verify import verify
from toolchain.package.oci import archive_image_id
from toolchain.pipeline import package_all
from toolchain.release.release import make_release
from toolchain.release.sbom import components_named, sbom, validate
from toolchain.runtimes.actions import PODMAN_GLOBAL, SENTINEL, ServerAction, free_port

pytestmark = pytest.mark.slow


def locked(lock, name: str) -> list[str]:
    return [p["version"] for p in tomllib.loads(lock.read_text())["package"] if p["name"] == name]


@pytest.fixture(scope="module")
def packaged(built, dist):
    package_all(built, dist)  # with the deploy files, which a release with --registry rewrites
    report = verify(built, dist, ["tf", "native-tract", "wasm-aot"])
    assert report["ok"]
    return built, dist, report


@pytest.fixture(scope="module")
def release(packaged, tmp_path_factory):
    cfg, dist, report = packaged
    return make_release(cfg, dist, report, tmp_path_factory.mktemp("rel") / "release")


def test_every_manifest_artifact_ships_and_the_checksums_verify(release, packaged):
    _, dist, _ = packaged
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest == json.loads(dist.manifest.read_text())
    for a in manifest["artifacts"]:
        assert (release / "artifacts" / a["path"]).stat().st_size == a["bytes"]
    check = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=release, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = {line.split("  ", 1)[1] for line in (release / "SHA256SUMS").read_text().splitlines()}
    on_disk = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert listed == on_disk


def test_a_changed_file_fails_the_checksums(release, tmp_path):
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(release), str(copy)], check=True)
    (copy / "RELEASE-NOTES.md").write_text("edited\n")
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=copy, capture_output=True).returncode != 0


def test_the_sboms_validate_and_list_tract_and_wasmtime_at_their_locked_versions(release):
    docs = {p.name: json.loads(p.read_text()) for p in (release / "sbom").glob("*.cdx.json")}
    assert set(docs) == {"guest-crates.cdx.json", "wasm-host-crates.cdx.json", "python-toolchain.cdx.json"}
    for name, doc in docs.items():
        validate(doc, name)  # the CycloneDX 1.6 strict JSON schema
    assert components_named(docs["guest-crates.cdx.json"], "tract-onnx") == locked(
        GUEST_DIR / "Cargo.lock", "tract-onnx"
    )
    assert components_named(docs["guest-crates.cdx.json"], "tract-onnx") == ["0.23.9"]
    assert components_named(docs["wasm-host-crates.cdx.json"], "wasmtime") == locked(
        HOST_DIR / "Cargo.lock", "wasmtime"
    )
    assert components_named(docs["wasm-host-crates.cdx.json"], "wasmtime") == ["50.0.1"]
    pinned = (REPO_ROOT / "requirements.lock").read_text()
    for name in ("wasmtime", "tensorflow-cpu", "tract"):
        [version] = components_named(docs["python-toolchain.cdx.json"], name)
        assert f"\n{name}=={version} " in pinned, name


def test_the_validator_is_not_a_rubber_stamp():
    doc = sbom("x", "1", [], 0)
    validate(doc, "good")
    for broken in ({**doc, "bomFormat": "SPDX"}, {**doc, "components": [{"name": "no type"}]}):
        with pytest.raises(StageError, match="not valid CycloneDX"):
            validate(broken, "broken")


def test_the_release_is_reproducible_and_notes_carry_the_verify_table(packaged, release, tmp_path):
    cfg, dist, report = packaged
    again = make_release(cfg, dist, report, tmp_path / "again")
    assert (again / "SHA256SUMS").read_text() == (release / "SHA256SUMS").read_text()
    notes = (release / "RELEASE-NOTES.md").read_text()
    assert "native-tract" in notes and f"model {cfg.name}" in notes


def test_nothing_is_half_written_and_an_old_release_survives(packaged, tmp_path):
    cfg, dist, report = packaged
    out = tmp_path / "release"
    out.mkdir()
    (out / "old").write_text("previous release")
    with pytest.raises(StageError, match="verify diverged"):
        make_release(cfg, dist, {**report, "ok": False}, out)
    victim = dist.root / json.loads(dist.manifest.read_text())["artifacts"][0]["path"]
    saved = victim.read_bytes()
    try:
        victim.write_bytes(saved + b"changed")
        with pytest.raises(StageError, match="does not match dist/manifest.json"):
            make_release(cfg, dist, report, out)
    finally:
        victim.write_bytes(saved)
    assert [p.name for p in tmp_path.iterdir()] == ["release"]  # no partial directory left beside it
    assert [p.name for p in out.iterdir()] == ["old"]


# --- a real registry on localhost (Debian's docker-registry, the distribution API's reference implementation) ----


def start_registry(root, read_only: bool = False):
    port = free_port()
    config = root / "config.yml"
    maintenance = "  maintenance:\n    readonly:\n      enabled: true\n" if read_only else ""
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n{maintenance}"
        f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n"
    )
    proc = subprocess.Popen([DOCKER_REGISTRY.require(), "serve", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as answer:
                assert answer.status == 200
                return proc, f"localhost:{port}"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(f"the registry did not start: {proc.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    proc, address = start_registry(tmp_path_factory.mktemp("registry"))
    yield address
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def pushed_release(packaged, registry, tmp_path_factory):
    cfg, dist, report = packaged
    return make_release(cfg, dist, report, tmp_path_factory.mktemp("pushed") / "release", f"{registry}/mib")


def test_the_images_are_pushed_by_digest_into_manifest_and_deploy_files(pushed_release, packaged, registry):
    cfg, dist, _ = packaged
    manifest = json.loads((pushed_release / "manifest.json").read_text())
    jsonschema.validate(manifest, json.loads((REPO_ROOT / "schemas" / "manifest.schema.json").read_text()))
    pushed = manifest.pop("pushed_images")
    assert manifest == json.loads(dist.manifest.read_text())
    assert {p["local"] for p in pushed} == {image_reference(cfg, engine) for engine in ENGINES}
    deploy = {p.name: p.read_text() for p in (pushed_release / "deploy").iterdir()}
    assert set(deploy) == {p.name for p in deploy_paths(cfg.name, dist).values()}
    for image in pushed:
        assert image["reference"].startswith(f"{registry}/mib/") and "@sha256:" in image["reference"]
        texts = "".join(deploy.values())
        assert image["reference"] in texts and image["local"] not in texts
    check = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=pushed_release, capture_output=True)
    assert check.returncode == 0


def test_a_pushed_image_pulled_back_by_digest_answers_as_the_built_one(pushed_release, packaged):
    cfg, dist, _ = packaged
    [image] = [
        p
        for p in json.loads((pushed_release / "manifest.json").read_text())["pushed_images"]
        if "onnx" not in p["local"]
    ]
    built_id = archive_image_id(dist.root / image["artifact"])
    subprocess.run([*PODMAN_GLOBAL, "rmi", "-f", built_id], capture_output=True)
    pull = subprocess.run(
        [*PODMAN_GLOBAL, "pull", "--tls-verify=false", image["reference"]], capture_output=True, text=True
    )
    assert pull.returncode == 0, pull.stderr
    pulled_id = subprocess.run(
        [*PODMAN_GLOBAL, "image", "inspect", "--format", "{{.Id}}", image["reference"]], capture_output=True, text=True
    ).stdout.strip()
    assert pulled_id == built_id.removeprefix("sha256:")  # the same config digest: the same image
    # The conformance the loaded image passes (tests/test_openwhisk.py), on the pulled one: /init once, every
    # golden answered as TensorFlow answers it with the activation sentinels, the bad-input corpus refused
    # with the error contract, and still serving after it.
    from bad_inputs import CORPUS, check_answer

    server = ServerAction.in_podman(pulled_id)
    try:
        server.wait_ready()
        assert server.init().status == 200 and server.init().status == 403
        goldens = load_goldens(cfg, dist)
        for golden in goldens:
            answer = server.run({"image": base64.b64encode(golden.image_bytes).decode()}).body
            assert answer["index"] == golden.tf_result["index"], (golden.name, answer)
        assert server.stdout.wait_for(len(goldens)).count(SENTINEL) == len(goldens)
        for name, request, expected in CORPUS:
            answer = server.post("/run", b'{"value": ' + request + b"}")
            assert answer.status in (200, 400), (name, answer)
            check_answer(name, expected, answer.body)
        first = goldens[0]
        answer = server.run({"image": base64.b64encode(first.image_bytes).decode()}).body
        assert answer["index"] == first.tf_result["index"], answer
    finally:
        server.close()


def test_an_unreachable_registry_is_a_clear_error_and_writes_nothing(packaged, tmp_path):
    cfg, dist, report = packaged
    with pytest.raises(StageError, match="cannot be reached"):
        make_release(cfg, dist, report, tmp_path / "release", f"localhost:{free_port()}/mib")
    assert list(tmp_path.iterdir()) == []


def test_a_registry_that_refuses_the_push_is_a_clear_error_and_writes_nothing(packaged, tmp_path):
    cfg, dist, report = packaged
    (tmp_path / "ro").mkdir()
    proc, address = start_registry(tmp_path / "ro", read_only=True)
    try:
        with pytest.raises(StageError, match="refused the push"):
            make_release(cfg, dist, report, tmp_path / "release", f"{address}/mib")
    finally:
        proc.terminate()
    assert not (tmp_path / "release").exists()


@pytest.mark.parametrize("bad", ["mib", "localhost:5000", "localhost:5000/", "http://localhost:5000/mib", "h/UPPER"])
def test_a_malformed_registry_is_refused_before_anything_runs(packaged, tmp_path, bad):
    cfg, dist, report = packaged
    with pytest.raises(InputError, match="HOST\\[:PORT\\]/NAMESPACE"):
        make_release(cfg, dist, report, tmp_path / "release", bad)

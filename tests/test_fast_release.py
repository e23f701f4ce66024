"""Pure functions of the release layer: the --registry syntax, the crates an SBOM takes from a Cargo.lock, and
SBOMs that are the same bytes for the same inputs."""

from __future__ import annotations

import pytest

from toolchain.core.errors import InputError
from toolchain.release.registry import check_registry
from toolchain.release.sbom import Component, cargo_components, sbom

LOCK = """
version = 4

[[package]]
name = "classifier"
version = "0.1.0"

[[package]]
name = "tract-onnx"
version = "0.23.9"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "ab12"

[[package]]
name = "from-git"
version = "1.0.0"
source = "git+https://example.invalid/x#abc"
"""


@pytest.mark.parametrize(
    "registry,parts",
    [
        ("localhost:5000/mib", ("localhost:5000", "mib")),
        ("127.0.0.1:41234/team/actions", ("127.0.0.1:41234", "team/actions")),
        ("registry.example.com/my-team", ("registry.example.com", "my-team")),
    ],
)
def test_a_registry_is_host_and_namespace(registry, parts):
    assert check_registry(registry) == parts


@pytest.mark.parametrize(
    "bad", ["mib", "localhost:5000", "localhost:5000/", "https://r.example/x", "r/Upper", "r/a//b"]
)
def test_a_malformed_registry_names_the_expected_form(bad):
    with pytest.raises(InputError, match=r"HOST\[:PORT\]/NAMESPACE"):
        check_registry(bad)


def test_an_sbom_takes_registry_crates_with_their_checksums(tmp_path):
    lock = tmp_path / "Cargo.lock"
    lock.write_text(LOCK)
    # the workspace's own crate is the SBOM's subject, a git dependency is not from a registry
    assert cargo_components(lock) == [Component("tract-onnx", "0.23.9", "pkg:cargo/tract-onnx@0.23.9", "ab12")]


def test_an_sbom_lists_a_vendored_crate_as_patched(tmp_path):
    lock = tmp_path / "Cargo.lock"
    lock.write_text(LOCK + '\n[[package]]\nname = "zune-jpeg"\nversion = "0.5.15"\n')
    (tmp_path / "vendor" / "zune-jpeg").mkdir(parents=True)
    found = {c.name: c for c in cargo_components(lock, tmp_path / "vendor")}
    assert set(found) == {"tract-onnx", "zune-jpeg"}
    assert found["zune-jpeg"].purl == "pkg:cargo/zune-jpeg@0.5.15"
    assert "vendor/zune-jpeg" in (found["zune-jpeg"].patched or "")
    assert found["zune-jpeg"].as_cyclonedx()["pedigree"]["notes"] == found["zune-jpeg"].patched


def test_the_same_inputs_give_the_same_sbom_and_others_another():
    parts = [Component("a", "1", "pkg:pypi/a@1")]
    assert sbom("x", "1", parts, 0) == sbom("x", "1", parts, 0)
    assert sbom("x", "1", parts, 0)["serialNumber"] != sbom("x", "1", [], 0)["serialNumber"]
    assert sbom("x", "1", parts, 86400)["metadata"]["timestamp"] == "1970-01-02T00:00:00Z"

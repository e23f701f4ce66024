"""Fuzzing: a short bounded run of every cargo fuzz target builds, executes many inputs, reaches the decoders and
the model payload's parser and finds nothing; the seeds it starts from are inputs the native guest classifies."""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzzed(default_model, dist):
    from toolchain.measure.fuzz import fuzz_problem, run_fuzzing

    if fuzz_problem():  # the same nightly the wasm host needs; without it `invoke fuzz` says so
        pytest.skip(fuzz_problem())
    return {r.target: r for r in run_fuzzing(default_model, dist, seconds=20)}


# Coverage well beyond the seeds' happy path: the libFuzzer log names more edges as it mutates. The payload parser
# is JSON and a few checks, so it reaches fewer edges than the image decoders.
@pytest.mark.parametrize("target, edges, inputs", [("request", 2000, 5), ("image", 2000, 5), ("payload", 300, 2)])
def test_bounded_fuzz_run_finds_nothing(fuzzed, target, edges, inputs, dist):
    r = fuzzed[target]
    assert r.findings == ()
    assert r.executions > 500, r  # instrumented code + ASAN: hundreds of inputs a second at least
    assert r.coverage > edges, r
    assert r.corpus_inputs >= inputs, r
    results = json.loads((dist.root / "fuzz" / "results.json").read_text())
    assert {x["target"] for x in results["results"]} == {"request", "image", "payload"}


def test_fuzz_seeds_are_images_the_guest_classifies(built, dist):
    from toolchain.core.catalog import native_cli_path
    from toolchain.measure.fuzz import seed_inputs

    cli = native_cli_path(built.name, dist)
    for name, body in seed_inputs("request", built).items():
        if name == "tensor.json":  # a wrongly shaped tensor: the seed of the error path
            continue
        if name == "ow-value.json":
            body = json.dumps(json.loads(body)["value"]).encode()
        out = subprocess.run([str(cli)], input=body, capture_output=True, timeout=120)
        assert out.returncode == 0, (name, out.stdout[-300:])
        assert "label" in json.loads(out.stdout), name

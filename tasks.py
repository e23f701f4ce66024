"""invoke tasks: parse flags, call toolchain functions. `invoke --list` explains each; `invoke --help TASK` its flags."""

from __future__ import annotations

import functools
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ start-up chatter hides the task's own output

from invoke import Exit, task

from toolchain.build.aot import precompile_cwasm
from toolchain.build.convert import convert_pb_to_onnx
from toolchain.build.golden import make_goldens
from toolchain.build.guest import build_guest
from toolchain.build.host import build_wasm_host
from toolchain.build.model import ensure_frozen_model
from toolchain.build.optimize import optimize_guest
from toolchain.build.payload import attach_guests
from toolchain.build.preinit import preinitialize_guests
from toolchain.core.catalog import DistLayout
from toolchain.core.config import DEFAULT_MODEL, load_model_config
from toolchain.core.errors import ToolchainError
from toolchain.measure.audit import audit_dependencies
from toolchain.measure.bench.report import format_summary
from toolchain.measure.bench.run import BenchSettings, run_and_write
from toolchain.measure.bench.wasm_builds import compare_wasm_builds
from toolchain.measure.classify import classify_file
from toolchain.measure.fuzz import TARGETS, run_fuzzing
from toolchain.measure.load import LoadSettings, run_load
from toolchain.measure.reproduce import verify_reproducible
from toolchain.measure.verify import format_table, raise_on_divergence, report_json
from toolchain.measure.verify import verify as run_verify
from toolchain.pipeline import build_all, clean_dist, package_all
from toolchain.release.release import make_release
from toolchain.runtimes import OnnxRuntime1T

MODEL_HELP = {"model": f"model config name in models/ or a path to a .toml (default: {DEFAULT_MODEL})"}


def cli_errors(fn):
    """Turn toolchain errors into one clear line and the error's exit code, never a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ToolchainError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise Exit(code=exc.exit_code) from None

    return wrapper


def _setup(model):
    return load_model_config(model), DistLayout.default()


@task(help={**MODEL_HELP, "force": "rebuild even if the inputs are unchanged"})
@cli_errors
def model(c, model=DEFAULT_MODEL, force=False):
    """Produce dist/model/<model>.pb: build the embedded default with TF, or take the config's frozen .pb."""
    ensure_frozen_model(*_setup(model), force=force)


@task(help={**MODEL_HELP, "force": "convert even if the inputs are unchanged"})
@cli_errors
def convert(c, model=DEFAULT_MODEL, force=False):
    """Convert the frozen .pb to ONNX (tf2onnx, checker, canonical names) and check it against TF."""
    convert_pb_to_onnx(*_setup(model), force=force)


@task(help={**MODEL_HELP, "force": "regenerate even if the inputs are unchanged"})
@cli_errors
def golden(c, model=DEFAULT_MODEL, force=False):
    """Write golden inputs (photos + edge cases) and TensorFlow's reference outputs to dist/golden/."""
    make_goldens(*_setup(model), force=force)


VARIANT_HELP = {
    "variant": "only these variants (repeatable): native, native-ort, wasm-simd, wasm-nosimd, "
    "wasm-relaxed (opt-in); default: the shipped ones",
}


@task(help=VARIANT_HELP, iterable=["variant"])
@cli_errors
def guest(c, variant=None):
    """Build the model-independent guest bases (cargo): native CLIs and wasm32-wasip1 modules → dist/guest-base/."""
    build_guest(DistLayout.default(), variants=variant or None)


@task(help=VARIANT_HELP, iterable=["variant"])
@cli_errors
def optimize(c, variant=None):
    """wasm-opt and strip each wasm base (dist/guest-base/*.opt.wasm)."""
    optimize_guest(DistLayout.default(), variants=variant or None)


@task(help={**MODEL_HELP, **VARIANT_HELP}, iterable=["variant"])
@cli_errors
def attach(c, model=DEFAULT_MODEL, variant=None):
    """Attach the model (its payload: ONNX, labels, facts) to each guest base → dist/guest/<model>/; no cargo."""
    attach_guests(*_setup(model), variants=variant or None)


@task(help={**MODEL_HELP, "force": "run Wizer even if the input module is unchanged"})
@cli_errors
def preinit(c, model=DEFAULT_MODEL, force=False):
    """Pre-initialise the wasm guests with Wizer (model parsed and optimised at build time)."""
    preinitialize_guests(*_setup(model), force=force)


@task
@cli_errors
def host(c):
    """Build the Rust wasm host (wasmtime 50 crate) the benchmark uses for wasm cold starts → dist/hosts/."""
    build_wasm_host(DistLayout.default())


@task(help=MODEL_HELP)
@cli_errors
def aot(c, model=DEFAULT_MODEL):
    """Precompile .cwasm for each target wasmtime version, each in a venv with exactly that version."""
    precompile_cwasm(*_setup(model))


@task(help=MODEL_HELP)
@cli_errors
def build(c, model=DEFAULT_MODEL):
    """Run every build stage in order: model → convert → golden → guest → optimize → host → attach → preinit → aot."""
    build_all(*_setup(model))


@task(help={**MODEL_HELP, "measure": "measure peak memory and write the deploy files (default: yes)"})
@cli_errors
def package(c, model=DEFAULT_MODEL, measure=True):
    """OpenWhisk zips, the action image, deploy files with measured memory limits; then dist/manifest.json."""
    package_all(*_setup(model), measure=measure)


@task(
    help={
        **MODEL_HELP,
        "out": "the release directory (default: dist/release/); written whole or not at all",
        "registry": "push the action images to HOST[:PORT]/NAMESPACE first and name them by digest in the release",
    }
)
@cli_errors
def release(c, model=DEFAULT_MODEL, out=None, registry=None):
    """build, package and verify, then the release directory: artifacts, SHA256SUMS, SBOMs, release notes."""
    cfg, dist = _setup(model)
    build_all(cfg, dist)
    package_all(cfg, dist)
    report = run_verify(cfg, dist)
    print(format_table(report))
    raise_on_divergence(report)
    print(f"release: {make_release(cfg, dist, report, Path(out) if out else None, registry)}")


@task(
    help={
        **MODEL_HELP,
        "runtime": "only these runtimes (repeatable); default: every available one",
        "json": "print the parity report as JSON instead of a table",
        "reproducible": "instead: a second clean build elsewhere must give byte-identical artifacts (~30 min)",
    },
    iterable=["runtime"],
)
@cli_errors
def verify(c, model=DEFAULT_MODEL, runtime=None, json=False, reproducible=False):
    """Run the goldens through every available runtime; fail on divergence from TensorFlow."""
    if reproducible:
        verify_reproducible(model, DistLayout.default())
        return
    report = run_verify(*_setup(model), runtimes=runtime or None)
    print(report_json(report) if json else format_table(report))
    raise_on_divergence(report)


@task(
    help={"image": "path of a JPEG or PNG file", **MODEL_HELP, "runtime": "runtime name (see `invoke verify`)"},
    positional=["image"],
)
@cli_errors
def classify(c, image, model=DEFAULT_MODEL, runtime=OnnxRuntime1T.name):
    """Classify one image file on one runtime and print the result JSON."""
    print(classify_file(image, *_setup(model), runtime))


@task(
    help={
        **MODEL_HELP,
        "all": "every runtime (default): TF, ONNX Runtime, tract, wasm JIT + AOT, wasm through wasi-nn, wasm:0.1, exec, container",
        "jit": "of the wasm runtimes only the JIT one (the original benchmark's --jit)",
        "aot": "of the wasm runtimes only the AOT ones (the original benchmark's --aot)",
        "runs": "warm samples per runtime (default 30; --quick: 6)",
        "rounds": "interleaving rounds, one cold start per runtime each (default 5; --quick: 2)",
        "runtime": "only these runtimes (repeatable)",
        "pin": "pin the benchmark and its children to these CPUs, e.g. 1 or 0,1",
        "hybrid": "run the hybrid simulation and the real dispatcher (default; --no-hybrid skips them)",
        "quick": "a small run (what the tests use)",
        "wasm_builds": "instead: compare wasm-opt -O3/-Oz and relaxed SIMD builds of the guest",
    },
    iterable=["runtime"],
)
@cli_errors
def bench(
    c,
    model=DEFAULT_MODEL,
    all=False,
    jit=False,
    aot=False,
    runs=None,
    rounds=None,
    runtime=None,
    pin=None,
    hybrid=True,
    quick=False,
    wasm_builds=False,
):
    """Compare the runtimes (warm, cold, throughput, memory, hybrid bridge): dist/bench/results.json + report."""
    cfg, dist = _setup(model)
    if wasm_builds:
        for row in compare_wasm_builds(cfg, dist, runs=int(runs or 20)):
            print(f"{row['module']:<36} {row['bytes']:>12,} bytes  warm median {row['warm_median_ms']:.1f} ms")
        return
    if sum((all, jit, aot)) > 1:
        raise Exit("choose one of --all, --jit, --aot", code=2)
    base = BenchSettings.quick() if quick else BenchSettings()
    settings = BenchSettings(
        runs=int(runs or base.runs),
        rounds=int(rounds or base.rounds),
        throughput_requests=base.throughput_requests,
        wasm="jit" if jit else "aot" if aot else "all",
        runtimes=tuple(runtime or ()),
        pin_cpus=tuple(int(x) for x in pin.split(",")) if pin else (),
        hybrid=hybrid,
        command=shlex.join(["invoke", "bench", *sys.argv[sys.argv.index("bench") + 1 :]])
        if "bench" in sys.argv
        else "invoke bench",
    )
    print(format_summary(run_and_write(cfg, dist, settings)))


@task(
    help={
        **MODEL_HELP,
        "seconds": "how long the clients run (default 60)",
        "clients": "concurrent clients (2)",
        "target": "container (the image under podman, default) or server (the bare binary)",
    }
)
@cli_errors
def load(c, model=DEFAULT_MODEL, seconds=60, clients=2, target="container"):
    """Bounded load test on localhost: good and bad requests mixed; fails on any wrong answer or RSS growth."""
    if target not in ("container", "server"):
        raise Exit("--target is container or server", code=2)
    run_load(*_setup(model), LoadSettings(seconds=float(seconds), clients=int(clients), target=target))


@task(
    help={
        **MODEL_HELP,
        "seconds": "time per target (default 60)",
        "target": f"{', '.join(TARGETS)} or all (default all)",
    }
)
@cli_errors
def fuzz(c, model=DEFAULT_MODEL, seconds=60, target="all"):
    """Coverage-guided fuzzing of the guest's input path and model payload parser (cargo fuzz) → dist/fuzz/."""
    targets = TARGETS if target == "all" else (target,)
    run_fuzzing(*_setup(model), targets=targets, seconds=int(seconds))


@task
@cli_errors
def audit(c):
    """Dependency policy of the Rust workspaces, offline: cargo-deny licences, bans, sources (guest/deny.toml)."""
    audit_dependencies()


@task
def clean(c):
    """Remove dist/ (every build output and stamp)."""
    clean_dist(DistLayout.default())


@task(
    help={
        "k": "only tests matching this pytest -k expression",
        "fast": "skip tests marked slow",
        "wasm_unit_tests": "also build the guest's unit tests for wasm and run them in the Rust host (~6 min more)",
    }
)
def test(c, k=None, fast=False, wasm_unit_tests=False):
    """Run the test suite (pytest)."""
    args = ["-m", "not slow"] if fast else []
    if k:
        args += ["-k", k]
    env = {"MIB_WASM_UNIT_TESTS": "1"} if wasm_unit_tests else {}
    c.run(shlex.join([sys.executable, "-m", "pytest", *args]), pty=False, env=env)

"""invoke tasks: parse flags, call toolchain functions. `invoke --list` explains each; `invoke --help TASK` its flags."""

from __future__ import annotations

import functools
import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ start-up chatter hides the task's own output

from invoke import Exit, task

from toolchain.config import DEFAULT_MODEL, DistLayout, load_model_config
from toolchain.errors import ToolchainError

MODEL_HELP = {"model": f"model config name in models/ or a path to a .toml (default: {DEFAULT_MODEL})"}


def cli_errors(fn):
    """Turn toolchain errors into one clear line and the error's exit code, never a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ToolchainError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise Exit(code=exc.exit_code)

    return wrapper


def _setup(model):
    return load_model_config(model), DistLayout.default()


@task(help={**MODEL_HELP, "force": "rebuild even if the inputs are unchanged"})
@cli_errors
def model(c, model=DEFAULT_MODEL, force=False):
    """Produce dist/model/<model>.pb: build the embedded default with TF, or take the config's frozen .pb."""
    from toolchain.model import ensure_frozen_model

    ensure_frozen_model(*_setup(model), force=force)


@task(help={**MODEL_HELP, "force": "convert even if the inputs are unchanged"})
@cli_errors
def convert(c, model=DEFAULT_MODEL, force=False):
    """Convert the frozen .pb to ONNX (tf2onnx, checker, canonical names) and check it against TF."""
    from toolchain.convert import convert_pb_to_onnx

    convert_pb_to_onnx(*_setup(model), force=force)


@task(help={**MODEL_HELP, "force": "regenerate even if the inputs are unchanged"})
@cli_errors
def golden(c, model=DEFAULT_MODEL, force=False):
    """Write golden inputs (photos + edge cases) and TensorFlow's reference outputs to dist/golden/."""
    from toolchain.golden import make_goldens

    make_goldens(*_setup(model), force=force)


@task(help={**MODEL_HELP, "variant": "only these variants (repeatable): native, wasm-simd, wasm-nosimd, "
                                      "wasm-relaxed (opt-in); default: the shipped ones"}, iterable=["variant"])
@cli_errors
def guest(c, model=DEFAULT_MODEL, variant=None):
    """Build the guest classifier: native CLI and wasm32-wasip1 modules (the variants that ship)."""
    from toolchain.guest import build_guest

    build_guest(*_setup(model), variants=variant or None)


@task(help={**MODEL_HELP, "variant": "only these wasm variants (repeatable); default: the shipped ones"},
      iterable=["variant"])
@cli_errors
def optimize(c, model=DEFAULT_MODEL, variant=None):
    """wasm-opt and strip each wasm variant (dist/guest/<model>/*.opt.wasm)."""
    from toolchain.wasm import optimize_guest

    optimize_guest(*_setup(model), variants=variant or None)


@task(help=MODEL_HELP)
@cli_errors
def aot(c, model=DEFAULT_MODEL):
    """Precompile .cwasm for each target wasmtime version, each in a venv with exactly that version."""
    from toolchain.aot import precompile_cwasm

    precompile_cwasm(*_setup(model))


@task(help=MODEL_HELP)
@cli_errors
def build(c, model=DEFAULT_MODEL):
    """Run every build stage in order: model → convert → golden → guest → optimize → aot."""
    from toolchain.pipeline import build_all

    build_all(*_setup(model))


@task(help=MODEL_HELP)
@cli_errors
def package(c, model=DEFAULT_MODEL):
    """Run the packaging stages and write dist/manifest.json."""
    from toolchain.pipeline import package_all

    package_all(*_setup(model))


@task(help={**MODEL_HELP, "runtime": "only these runtimes (repeatable); default: every available one",
            "json": "print the parity report as JSON instead of a table"}, iterable=["runtime"])
@cli_errors
def verify(c, model=DEFAULT_MODEL, runtime=None, json=False):
    """Run the goldens through every available runtime; fail on divergence from TensorFlow."""
    from toolchain.verify import format_table, raise_on_divergence, report_json, verify as run_verify

    report = run_verify(*_setup(model), runtimes=runtime or None)
    print(report_json(report) if json else format_table(report))
    raise_on_divergence(report)


@task(help={"image": "path of a JPEG or PNG file", **MODEL_HELP, "runtime": "runtime name (see `invoke verify`)"},
      positional=["image"])
@cli_errors
def classify(c, image, model=DEFAULT_MODEL, runtime="onnxruntime-1t"):
    """Classify one image file on one runtime and print the result JSON."""
    from toolchain.classify import classify_file

    print(classify_file(image, *_setup(model), runtime))


@task(help={**MODEL_HELP, "quick": "the small comparison (the only mode so far)",
            "runs": "warm runs per runtime",
            "wasm_builds": "instead: compare wasm-opt -O3/-Oz and relaxed SIMD builds of the guest"})
@cli_errors
def bench(c, model=DEFAULT_MODEL, quick=True, runs=20, wasm_builds=False):
    """Compare the runtimes: warm latency, per-instance (cold) latency, ratios; writes dist/bench/results.json."""
    from toolchain.bench import compare_wasm_builds, format_report, run_quick_bench

    if wasm_builds:
        for row in compare_wasm_builds(*_setup(model), runs=runs):
            print(f"{row['module']:<36} {row['bytes']:>12,} bytes  warm median {row['warm_median_ms']:.1f} ms")
        return
    print(format_report(run_quick_bench(*_setup(model), runs=runs)))


@task
def clean(c):
    """Remove dist/ (every build output and stamp)."""
    from toolchain.pipeline import clean_dist

    clean_dist(DistLayout.default())


@task(help={"k": "only tests matching this pytest -k expression", "fast": "skip tests marked slow"})
def test(c, k=None, fast=False):
    """Run the test suite (pytest)."""
    args = ["-m", "not slow"] if fast else []
    if k:
        args += ["-k", k]
    c.run(shlex.join([sys.executable, "-m", "pytest", *args]), pty=False)

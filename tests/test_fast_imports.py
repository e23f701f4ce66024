"""The fast tests' modules and the registry's availability check must not import TensorFlow (or any engine):
checked in a fresh interpreter, since other tests in the same session may legitimately have imported it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from toolchain.build.optimize import wasm_opt_flags
from toolchain.core.catalog import DistLayout
from toolchain.core.config import load_model_config
from toolchain.measure.bench.report import tables
from toolchain.measure.bench.run import ratios
from toolchain.measure.bench.stats import percentile
from toolchain.package.deploy import memory_limit_mb
from toolchain.package.zips import zip_within_code_limit
from toolchain.runtimes import select_runtimes

HEAVY = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "tract", "wasmtime", "matplotlib")

PROBE = """
import importlib, json, sys, tempfile
mods, config_mod, catalog_mod, runtimes_mod, heavy = json.loads(sys.argv[1])
for m in mods:
    importlib.import_module(m)
cfg = importlib.import_module(config_mod).load_model_config()
dist = importlib.import_module(catalog_mod).DistLayout(tempfile.mkdtemp())
ready, missing = importlib.import_module(runtimes_mod).select_runtimes(cfg, dist)
assert not ready and missing
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def test_modules_under_test_and_select_runtimes_import_no_tensorflow():
    mods = sorted(
        {
            f.__module__
            for f in (
                tables,
                ratios,
                percentile,
                load_model_config,
                memory_limit_mb,
                zip_within_code_limit,
                select_runtimes,
                wasm_opt_flags,
            )
        }
    )
    arg = json.dumps(
        [mods, load_model_config.__module__, DistLayout.__module__, select_runtimes.__module__, list(HEAVY)]
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", PROBE, arg], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []

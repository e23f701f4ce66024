"""A cold start of a Python-hosted runtime: a new interpreter imports the engine, loads the model and
classifies one image; the benchmark times the whole process.

    python -m toolchain.measure.bench.cold RUNTIME MODEL_CONFIG DIST IMAGE
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from toolchain.core.catalog import DistLayout
from toolchain.core.config import load_model_config
from toolchain.runtimes import make_runtime

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    runtime, config, dist, image = argv

    rt = make_runtime(runtime, load_model_config(config), DistLayout(Path(dist)))
    imported = time.perf_counter()
    rt.load()
    loaded = time.perf_counter()
    with open(image, "rb") as f:
        result = rt.classify(f.read())
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "result": result,
                "phases_ms": {
                    "import": (imported - started) * 1e3,
                    "load_model": (loaded - imported) * 1e3,
                    "first_inference": (done - loaded) * 1e3,
                },
            }
        )
    )
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

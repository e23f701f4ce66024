"""The invoke edge: tasks are listed with docstrings, and errors are one clear line plus an exit code."""

import subprocess
import sys

import pytest

from toolchain.core.config import REPO_ROOT

INVOKE = [sys.executable, "-m", "invoke"]


def run(*args, env=None):
    return subprocess.run([*INVOKE, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_every_task_is_listed_with_help():
    out = run("--list").stdout
    for name in ("model", "convert", "golden", "build", "package", "verify", "classify", "clean", "test"):
        assert f"  {name} " in out, name


def test_unknown_model_is_a_clear_error():
    res = run("convert", "--model", "no_such_model")
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error: no model config") and "Traceback" not in res.stderr


def test_convert_without_pb_says_what_to_run(tmp_path):
    import os

    res = run("convert", env={**os.environ, "MIB_DIST": str(tmp_path)})
    assert res.returncode == 3 and "invoke model" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_classify_a_photo_and_a_non_image(default_model, dist, tmp_path):
    import json
    import os

    env = {**os.environ, "MIB_DIST": str(dist.root)}
    photo = dist.golden_dir(default_model.name) / "images" / "chelsea.png"
    res = run("classify", str(photo), env=env)
    assert res.returncode == 0, res.stderr
    assert set(json.loads(res.stdout)) == {"label", "confidence", "index", "top5"}
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    res = run("classify", str(bad), env=env)
    assert res.returncode == 3 and "not a decodable image" in res.stderr and "Traceback" not in res.stderr

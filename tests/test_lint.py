"""Lint, format and type checks of the Python code, with the pinned tools from requirements.lock."""

import subprocess
import sys

import pytest

from toolchain.core.config import REPO_ROOT

CHECKS = {
    "ruff lint": [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
    "mypy": [sys.executable, "-m", "mypy", "--cache-dir", "/dev/null"],
}


@pytest.mark.parametrize("check", CHECKS)
def test_clean(check):
    proc = subprocess.run(CHECKS[check], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{check}:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"


WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
# SchemaStore's GitHub workflow schema and a rule that every job has a timeout, both carried by check-jsonschema
WORKFLOW_SCHEMAS = ("vendor.github-workflows", "custom.github-workflows-require-timeout")


def check_workflow(schema: str, *paths) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("schema", WORKFLOW_SCHEMAS)
def test_workflows_are_valid(schema):
    assert WORKFLOWS, "no workflow found"
    proc = check_workflow(schema, *WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_workflow_check_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    step:\n      - run: echo ok\n")
    assert check_workflow(WORKFLOW_SCHEMAS[0], broken).returncode != 0
    no_timeout = tmp_path / "slow.yml"
    no_timeout.write_text("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ok\n")
    assert check_workflow(WORKFLOW_SCHEMAS[0], no_timeout).returncode == 0
    assert check_workflow(WORKFLOW_SCHEMAS[1], no_timeout).returncode != 0

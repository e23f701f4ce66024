"""`invoke verify --reproducible`: a second clean build of this commit, in another directory with empty caches
and at another time, must give byte-identical artifacts (opt-in: it rebuilds everything, ~30 min here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from toolchain.core import log
from toolchain.core.catalog import DistLayout
from toolchain.core.config import REPO_ROOT
from toolchain.core.errors import DivergenceError, StageError
from toolchain.core.fsutil import canonical_json, write_atomic
from toolchain.core.programs import GIT

# Made from measurements on this machine, so they differ between builds by design.
MACHINE_DEPENDENT_KINDS = {"wskdeploy-manifest", "wsk-commands", "openwhisk-actions"}


def digests(manifest: Path) -> dict[str, str]:
    entries = json.loads(manifest.read_text())["artifacts"]
    return {e["path"]: e["sha256"] for e in entries if e["kind"] not in MACHINE_DEPENDENT_KINDS}


def rebuild_elsewhere(model: str, head: str) -> Path:
    """Clone ``head`` into a temp dir and run `invoke build package` there with fresh caches; return its
    manifest."""
    status = subprocess.run(
        [GIT.path, "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout
    if status.strip():
        log.info("warning: the working tree has uncommitted changes; the second build uses the commit only")
    root = Path(tempfile.mkdtemp(prefix="mib-rebuild-"))
    clone = root / "src"
    subprocess.run([GIT.path, "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    subprocess.run([GIT.path, "checkout", "-q", head], cwd=clone, check=True)
    env = {**os.environ, "MIB_DIST": str(root / "dist"), "MIB_CACHE": str(root / "cache"), "PIP_NO_CACHE_DIR": "0"}
    with log.step(f"second clean build of {head[:12]} in {clone}"):
        proc = subprocess.run(
            [sys.executable, "-m", "invoke", "build", "--model", model, "package", "--model", model, "--no-measure"],
            cwd=clone,
            env=env,
        )
    if proc.returncode != 0:
        raise StageError(f"the second build failed (exit {proc.returncode}); its tree is kept at {root}")
    return root / "dist" / "manifest.json"


def _packaged_revision(manifest: Path) -> str | None:
    return json.loads(manifest.read_text()).get("source_revision") if manifest.is_file() else None


def verify_reproducible(model: str, dist: DistLayout) -> dict:
    """Compare dist/ (built and packaged at HEAD) with a second clean build of HEAD; write the report to
    dist/reproducible.json."""
    head = subprocess.run(
        [GIT.path, "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    if _packaged_revision(dist.manifest) != head:
        raise StageError(
            f"{dist.manifest} was not packaged at HEAD ({head[:12]})",
            hint="run `invoke build package` first, and leave dist/ alone while this runs",
        )
    second = rebuild_elsewhere(model, head)
    # Read now: dist/ must still be the build of HEAD after the hour the second build takes.
    if _packaged_revision(dist.manifest) != head:
        raise StageError(
            f"{dist.manifest} changed to another commit while the second build ran",
            hint=f"compare again by hand with {second}",
        )
    report = {"revision": head, **compare(digests(dist.manifest), digests(second))}
    write_atomic(dist.root / "reproducible.json", canonical_json(report))
    return report


def compare(first: dict[str, str], second: dict[str, str]) -> dict:
    differ = sorted(p for p in first.keys() & second.keys() if first[p] != second[p])
    # opt-in variants (wasm-relaxed) may exist in one dist only; that is reported, not a failure
    only_in_one = sorted(first.keys() ^ second.keys())
    report = {"compared": len(first.keys() & second.keys()), "differ": differ, "only_in_one": only_in_one}
    if only_in_one:
        log.info(f"note: only in one build: {', '.join(only_in_one)}")
    if differ:
        raise DivergenceError(
            f"builds differ: {len(differ)} of {report['compared']} artifacts differ: {', '.join(differ)}"
        )
    log.info(f"reproducible: {report['compared']} artifacts byte-identical across two clean builds")
    return report

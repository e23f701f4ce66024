"""Small file helpers shared by every stage: digests, atomic writes, up-to-date stamps."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from toolchain.core import log


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only if the block succeeds,
    so a failed stage never leaves a half-written artifact in dist/."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o644)  # mkstemp's 0600 would leak into dist/; callers may chmod further
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_atomic(final: Path, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def _plain(value):
    """json's fallback: numpy scalars and arrays (which results built from numpy maths easily carry) become
    Python numbers and lists; anything else is still an error."""
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_text(obj, indent: int | None = 2, sort_keys: bool = True) -> str:
    """The one JSON writer of every machine-readable output (reports, results, stamps): plain JSON numbers."""
    return json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False, default=_plain)


def canonical_json(obj) -> bytes:
    return (json_text(obj) + "\n").encode("utf-8")


def digest_inputs(paths: list[Path], extra: dict | None = None) -> dict:
    """What a stage's output depends on: file digests plus any settings."""
    return {"files": {str(p): sha256_file(p) for p in paths}, "settings": extra or {}}


def is_up_to_date(stamp: Path, inputs: dict, outputs: list[Path]) -> bool:
    if not stamp.is_file() or not all(p.is_file() for p in outputs):
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except ValueError:
        return False
    return recorded.get("inputs") == inputs and recorded.get("outputs") == {str(p): sha256_file(p) for p in outputs}


def record_stamp(stamp: Path, inputs: dict, outputs: list[Path]) -> None:
    write_atomic(stamp, canonical_json({"inputs": inputs, "outputs": {str(p): sha256_file(p) for p in outputs}}))


@dataclass(frozen=True)
class Incremental:
    """One stage's up-to-date logic: skip when its inputs' digests and its outputs are as the stamp recorded them;
    after a build, record the stamp (and how long the build took)."""

    stage: str  # for the log line, e.g. "aot"
    stamp: Path
    inputs: dict
    outputs: tuple[Path, ...]
    subject: str = ""  # what the log line names; the first output's file name by default

    def up_to_date(self, force: bool = False) -> bool:
        if force or not is_up_to_date(self.stamp, self.inputs, list(self.outputs)):
            return False
        log.info(f"{self.stage}: {self.subject or self.outputs[0].name} is up to date")
        return True

    def record(self, dist_root: Path | None = None, started: float | None = None) -> None:
        """Record the stamp; with ``started`` (a perf_counter reading), also the first output's build seconds."""
        record_stamp(self.stamp, self.inputs, list(self.outputs))
        if dist_root is not None and started is not None:
            record_build_seconds(dist_root, self.outputs[0], time.perf_counter() - started)


def record_build_seconds(dist_root: Path, artifact: Path, seconds: float) -> None:
    """Remember how long the last build of ``artifact`` took (the benchmark reports it; incremental builds
    are faster than clean ones, so the number says which it was only together with the build log)."""
    path = dist_root / ".stamps" / "build-seconds.json"
    try:
        times = json.loads(path.read_text())
    except (OSError, ValueError):
        times = {}
    times[artifact.relative_to(dist_root).as_posix()] = round(seconds, 1)
    write_atomic(path, canonical_json(times))


def build_seconds(dist_root: Path) -> dict[str, float]:
    try:
        return json.loads((dist_root / ".stamps" / "build-seconds.json").read_text())
    except (OSError, ValueError):
        return {}

"""Deterministic archives: the same inputs give the same bytes (sorted entries, fixed times, owners, modes).

Times come from SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/), else the
commit time of HEAD, else 0, so two clean builds of one commit produce identical zips and images.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
import zipfile
from dataclasses import dataclass

from toolchain.core.config import REPO_ROOT
from toolchain.core.programs import GIT


def source_date_epoch() -> int:
    if "SOURCE_DATE_EPOCH" in os.environ:
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(
            [GIT.path, "log", "-1", "--format=%ct"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        return int(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def source_revision() -> str:
    """The commit being built (for image labels); "unknown" outside a git checkout."""
    try:
        return subprocess.run(
            [GIT.path, "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class Entry:
    name: str  # path inside the archive, no leading slash
    data: bytes | None  # None: a directory
    mode: int = 0o644


def tar_bytes(entries: list[Entry], mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in sorted(entries, key=lambda e: e.name):
            info = tarfile.TarInfo(e.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
            info.mode = e.mode
            if e.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


def zip_bytes(entries: list[Entry], mtime: int, compress: bool) -> bytes:
    # zip times have 2-second resolution and start in 1980
    date_time = time.gmtime(max(mtime, 315532800))[:6]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for e in sorted(entries, key=lambda e: e.name):
            info = zipfile.ZipInfo(e.name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            info.create_system = 3  # unix, so external_attr carries the mode
            info.external_attr = (0o100000 | e.mode) << 16
            zf.writestr(info, e.data or b"", compresslevel=9 if compress else None)
    return buf.getvalue()

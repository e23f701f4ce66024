"""Progress lines with durations, so long stages say what they are doing and how long it took."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


def info(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def step(what: str):
    info(f"→ {what} …")
    start = time.perf_counter()
    yield
    info(f"  done: {what} ({time.perf_counter() - start:.1f} s)")

"""Progress lines with durations, so long stages say what they are doing and how long it took."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager

# A step that runs longer than this prints a line with its elapsed time, then again at each interval, so a
# slow build (a cold cargo build takes up to ~12 min here) is never mistaken for a hung one.
HEARTBEAT_S = 30.0


def info(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def elapsed(seconds: float) -> str:
    """``42 s`` or ``3 min 07 s``."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


@contextmanager
def step(what: str, heartbeat_s: float = HEARTBEAT_S):
    info(f"→ {what} …")
    start = time.perf_counter()
    finished = threading.Event()

    def beat() -> None:
        while not finished.wait(heartbeat_s):
            info(f"  … {what}: still running, {elapsed(time.perf_counter() - start)}")

    beater = threading.Thread(target=beat, name=f"heartbeat: {what}", daemon=True)
    beater.start()
    try:
        yield
    finally:
        finished.set()
        beater.join()
    info(f"  done: {what} ({time.perf_counter() - start:.1f} s)")

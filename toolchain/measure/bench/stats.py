"""Summaries of latency samples, and process measurement helpers shared by the probes."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from toolchain.core.programs import GNU_TIME


def percentile(sorted_samples: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of already sorted samples."""
    if not sorted_samples:
        return float("nan")
    k = (len(sorted_samples) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_samples) - 1)
    return sorted_samples[lo] + (sorted_samples[hi] - sorted_samples[lo]) * (k - lo)


def summarize(samples: list[float], keep_samples: bool = True) -> dict:
    s = sorted(samples)
    out: dict[str, float | int | list[float]] = {
        "median": percentile(s, 50),
        "p95": percentile(s, 95),
        "p99": percentile(s, 99),
        "min": s[0],
        "max": s[-1],
        "mean": statistics.fmean(s),
        "n": len(s),
    }
    out = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}
    if keep_samples:
        out["samples"] = [round(v, 3) for v in samples]
    return out


def spread(summary: dict) -> float:
    """(p95 − median) / median: how noisy the machine was for this runtime."""
    return round((summary["p95"] - summary["median"]) / summary["median"], 3) if summary["median"] else 0.0


TIME = GNU_TIME.path


def run_measured(
    argv: list[str], stdin: bytes | None = None, env: dict | None = None, timeout: float = 600
) -> tuple[float, int, bytes, bytes, int]:
    """Run a process to completion: (wall ms, exit code, stdout, stderr, peak RSS KiB).

    The peak comes from GNU time, not from our own wait4: Linux carries ru_maxrss across execve, so a child
    forked from this (large) Python process would report the parent's RSS; forked from `time`, it starts small.
    """
    import tempfile
    import threading

    rss_file = tempfile.NamedTemporaryFile(prefix="mib-rss-", delete=False)
    rss_file.close()
    argv = [TIME, "-f", "%M", "-o", rss_file.name, *argv]
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = bytearray(), bytearray()

    def pump(stream, buf):
        for chunk in iter(lambda: stream.read(65536), b""):
            buf.extend(chunk)

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, out)),
        threading.Thread(target=pump, args=(proc.stderr, err)),
    ]
    for th in threads:
        th.start()
    assert proc.stdin is not None  # opened with stdin=PIPE
    if stdin is not None:
        proc.stdin.write(stdin)
    proc.stdin.close()
    deadline = time.monotonic() + timeout
    while True:
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(f"{argv[0]} did not finish within {timeout:.0f} s")
        time.sleep(0.001)
    ms = (time.perf_counter() - t) * 1e3
    for th in threads:
        th.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        peak = int(Path(rss_file.name).read_text().split()[-1])
    except (ValueError, IndexError):  # the command could not be run; GNU time wrote why instead
        peak = 0
    finally:
        os.unlink(rss_file.name)
    return ms, proc.returncode, bytes(out), bytes(err), peak


class Progress:
    """A one-line progress bar on stderr (a plain line per step when stderr is not a terminal)."""

    def __init__(self, total: int):
        self.total, self.done, self.tty = max(total, 1), 0, sys.stderr.isatty()
        self.started = time.monotonic()

    def step(self, what: str) -> None:
        self.done += 1
        width = 30
        filled = width * self.done // self.total
        elapsed = time.monotonic() - self.started
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {elapsed:5.0f} s  {what}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:120])
            if self.done >= self.total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

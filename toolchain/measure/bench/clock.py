"""The clock a core runs at while the bench runs, measured: /proc/cpuinfo's "cpu MHz" on these VMs is the nominal
clock (2600 on an Intel Xeon that ran at ~3600 under load), so a peak built on it is no upper bound.

The probe times a chain of dependent register-to-register adds (``add %rdx, %rax``): one cycle each on every
x86-64 core, and no core renames it away (Intel's Golden Cove folds *immediate* adds, which is why the chain
adds a register). It is compiled at bench time with the C compiler rustc links with (gcc, a dependency of
Debian's rustc-web), so nothing is built or shipped for it; on other architectures there is no probe.
"""

from __future__ import annotations

import platform
import subprocess
import tempfile
from pathlib import Path

from toolchain.core.errors import StageError
from toolchain.core.programs import GCC

ADDS = 200_000_000  # ~60 ms at 3.5 GHz
ROUNDS = 5  # the fastest round: another process taking the core only ever lowers a round's clock

PROBE_C = r"""
#include <stdio.h>
#include <time.h>
int main(void) {
    long best_ns = -1;
    for (int round = 0; round < %(rounds)d; round++) {
        struct timespec a, b;
        long n = %(adds)dL, one = 1, acc = 0;
        clock_gettime(CLOCK_MONOTONIC, &a);
        __asm__ volatile(
            "1:\n"
            "add %%2, %%1\n add %%2, %%1\n add %%2, %%1\n add %%2, %%1\n"
            "add %%2, %%1\n add %%2, %%1\n add %%2, %%1\n add %%2, %%1\n"
            "sub $8, %%0\n jnz 1b\n"
            : "+r"(n), "+r"(acc) : "r"(one));
        clock_gettime(CLOCK_MONOTONIC, &b);
        long ns = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
        if (best_ns < 0 || ns < best_ns) best_ns = ns;
    }
    printf("%%.1f\n", %(adds)d.0 / best_ns * 1000.0);
    return 0;
}
"""


def measured_clock_mhz() -> float | None:
    """One core's clock in MHz under a scalar load (the highest a core reaches: wide vector work may run
    slower, never faster), or None where there is no probe (not x86-64)."""
    if platform.machine() != "x86_64":
        return None
    with tempfile.TemporaryDirectory(prefix="mib-clock-") as tmp:
        src, exe = Path(tmp) / "clock.c", Path(tmp) / "clock"
        src.write_text(PROBE_C % {"rounds": ROUNDS, "adds": ADDS})
        compiled = subprocess.run([GCC.require(), "-O1", "-o", str(exe), str(src)], capture_output=True, text=True)
        if compiled.returncode != 0:
            raise StageError(f"the clock probe did not compile: {compiled.stderr.strip()[-1500:]}")
        ran = subprocess.run([str(exe)], capture_output=True, text=True)
        if ran.returncode != 0:
            raise StageError(f"the clock probe failed (exit {ran.returncode}): {ran.stderr.strip()[-1500:]}")
    return float(ran.stdout)

"""`invoke load`: a bounded load test of the action server on localhost (the image under podman, or the bare
binary): concurrent clients for a fixed time, good and bad requests mixed. Passes only if every good request
got its correct class, every bad one the error contract, and RSS stayed flat after warm-up."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from typing import Any

from toolchain.build.golden import load_goldens
from toolchain.core import log
from toolchain.core.catalog import DistLayout, image_path, native_cli_path
from toolchain.core.config import ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import canonical_json, write_atomic
from toolchain.measure.bench.stats import summarize
from toolchain.runtimes.actions import ServerAction, proc_status_kib
from toolchain.runtimes.containers import container_engine

RSS_GROWTH_LIMIT_MB = 16


@dataclass(frozen=True)
class LoadSettings:
    seconds: float = 60
    clients: int = 2
    bad_every: int = 4  # one bad request in this many
    target: str = "container"  # or "server": the bare binary


def bad_values(image: bytes) -> list[dict]:
    return [
        {"image": base64.b64encode(image[: len(image) // 2]).decode()},  # truncated
        {"image": "!!! not base64 !!!"},
        {"image": base64.b64encode(b"plain text, not an image").decode()},
        {"picture": "missing field"},
    ]


def run_load(cfg: ModelConfig, dist: DistLayout, s: LoadSettings) -> dict:
    goldens = [g for g in load_goldens(cfg, dist) if g.kind == "photo"]
    good = [({"image": base64.b64encode(g.image_bytes).decode()}, g.tf_result["index"]) for g in goldens]
    bad = bad_values(goldens[0].image_bytes)
    image_id = None
    if s.target == "container":
        runner = container_engine()
        image_id = runner.load(image_path(cfg.name, dist))
        server = runner.run_server(image_id)
    else:
        server = ServerAction.bare(native_cli_path(cfg.name, dist))
    latencies, failures, counts = [], [], {"good": 0, "bad": 0}
    lock = threading.Lock()
    rss_samples = []
    try:
        server.wait_ready()
        server.init()
        pid = server.server_pid()
        # warm-up under the same load (every arena and buffer size in use), then RSS must stay flat
        warm_up = min(10.0, s.seconds / 4)
        started = time.monotonic()
        deadline = started + warm_up + s.seconds

        def client(k: int):
            i = 0
            while time.monotonic() < deadline:
                i += 1
                is_bad = i % s.bad_every == 0
                value, want = (bad[i % len(bad)], None) if is_bad else good[(i + k) % len(good)]
                t = time.perf_counter()
                answer = server.run(value)
                ms = (time.perf_counter() - t) * 1e3
                with lock:
                    counts["bad" if is_bad else "good"] += 1
                    if is_bad:
                        if answer.status != 200 or set(answer.body) != {"error"}:
                            failures.append(f"bad request answered {answer}")
                    else:
                        latencies.append(ms)
                        if answer.status != 200 or answer.body.get("index") != want:
                            failures.append(f"good request answered {str(answer)[:300]}")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(s.clients)]
        for th in threads:
            th.start()
        time.sleep(warm_up)
        rss_samples.append((round(time.monotonic() - started, 1), _rss_mb(pid)))
        while any(th.is_alive() for th in threads):
            time.sleep(min(5, s.seconds / 4))
            rss_samples.append((round(time.monotonic() - started, 1), _rss_mb(pid)))
        for th in threads:
            th.join()
    finally:
        server.close()
        if image_id:
            runner.remove(image_id)
    # the allocator returns memory lazily, so RSS fluctuates: a leak shows as the end above every early peak
    early = [mb for _, mb in rss_samples[: max(1, len(rss_samples) // 2)]]
    growth = rss_samples[-1][1] - max(early)
    result: dict[str, Any] = {
        "target": s.target,
        "seconds": s.seconds,
        "warm_up_s": round(warm_up, 1),
        "clients": s.clients,
        "requests": counts,
        "failed": len(failures),
        "failures": failures[:10],
        "latency_ms": summarize(latencies, keep_samples=False),
        "rss_mb": rss_samples,
        "rss_growth_mb": round(growth, 1),
        "ok": not failures and growth < RSS_GROWTH_LIMIT_MB,
    }
    write_atomic(dist.root / "load" / f"{s.target}.json", canonical_json(result))
    log.info(
        f"load: {counts['good']} good + {counts['bad']} bad requests, {len(failures)} failed, "
        f"p50 {result['latency_ms']['median']:.1f} ms, p99 {result['latency_ms']['p99']:.1f} ms, "
        f"RSS {rss_samples[0][1]:.0f} → {rss_samples[-1][1]:.0f} MB"
    )
    if not result["ok"]:
        raise StageError(
            f"load test failed: {len(failures)} failures, RSS grew {growth:.1f} MB "
            f"(limit {RSS_GROWTH_LIMIT_MB}); see {dist.root / 'load' / (s.target + '.json')}"
        )
    return result


def _rss_mb(pid: int) -> float:
    kib = proc_status_kib(pid, "VmRSS")
    if kib is None:
        raise StageError(f"process {pid} is gone")
    return round(kib / 1024, 1)

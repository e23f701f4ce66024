"""Coverage-guided fuzzing of the guest's input path: cargo fuzz + libFuzzer (AddressSanitizer), opt-in
(`invoke fuzz`), bounded by time.

Three targets live in guest/fuzz: `request` takes whole request bodies (JSON → fields → base64 → image decode →
preprocessing, no inference), `image` feeds raw bytes to the decoders and `payload` to the model payload's
parser (what the toolchain attaches to a guest). The first two read the model's facts from its payload
(CLASSIFIER_PAYLOAD). The corpus grows in the cache from run
to run; a finding (panic, abort, leak, allocation over the limit, timeout) is written to dist/fuzz/findings/ and
fails the run. Fix it, then add the input to the bad-input corpus (tests/bad_inputs.py), which every entry
point is tested with.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from toolchain.build.cargo import (
    FUZZ_DIR,
    GUEST_DIR,
    ensure_cargo_subcommand,
    nightly_command,
    nightly_problem,
    reproducible_cargo_env,
)
from toolchain.build.payload import encode_payload, payload_header, write_payload
from toolchain.core import log
from toolchain.core.catalog import DistLayout
from toolchain.core.config import CACHE_DIR, ModelConfig
from toolchain.core.errors import StageError
from toolchain.core.fsutil import canonical_json, write_atomic
from toolchain.core.versions import CARGO_FUZZ_VERSION

TARGETS = ("request", "image", "payload")
# A request's image is at most a few MB, but coverage comes from small inputs; libFuzzer grows lengths slowly.
MAX_INPUT_BYTES = 64 * 1024
# Per input: the guest caps decoded pixels, so a slow input is a finding, not a big image.
INPUT_TIMEOUT_S = 10
RSS_LIMIT_MB = 2048


@dataclass(frozen=True)
class FuzzResult:
    target: str
    seconds: int
    executions: int
    execs_per_second: int
    coverage: int  # libFuzzer's `cov:`: instrumented edges reached
    corpus_inputs: int
    peak_rss_mb: int
    findings: tuple[str, ...]  # paths of inputs that crashed, leaked or timed out
    command: str


def fuzz_problem() -> str | None:
    """None if cargo fuzz can run here (it needs the rustup nightly for its instrumentation)."""
    return nightly_problem()


def ensure_cargo_fuzz() -> None:
    ensure_cargo_subcommand("fuzz", CARGO_FUZZ_VERSION)


def _encoded(mode: str, fmt: str, size: tuple[int, int] = (24, 16), **kw) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(len(mode) * 31 + len(fmt))
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def seed_images() -> dict[str, bytes]:
    """Small valid images of every format and colour model the guest accepts: starting points from which
    libFuzzer reaches each decoder's deeper paths."""
    return {
        "rgb.jpg": _encoded("RGB", "JPEG", quality=90),
        "gray.jpg": _encoded("L", "JPEG"),
        "cmyk.jpg": _encoded("CMYK", "JPEG"),
        "progressive.jpg": _encoded("RGB", "JPEG", progressive=True),
        "422-restart.jpg": _encoded("RGB", "JPEG", subsampling="4:2:2", restart_marker_blocks=1),
        "444-progressive.jpg": _encoded("RGB", "JPEG", subsampling="4:4:4", progressive=True),
        "rgb.png": _encoded("RGB", "PNG"),
        "rgba.png": _encoded("RGBA", "PNG"),
        "palette.png": _encoded("P", "PNG"),
        "gray16.png": _encoded("I;16", "PNG"),
        "palette.gif": _encoded("P", "GIF"),
        "lossy.webp": _encoded("RGB", "WEBP", quality=60),
        "lossless.webp": _encoded("RGBA", "WEBP", lossless=True),
    }


def seed_payloads(cfg: ModelConfig) -> dict[str, bytes]:
    """The model's payload header with a few stand-in model bytes (the parser does not read the model), and
    one with too few labels."""
    header = payload_header(cfg, 4)
    short = {**header, "labels": header["labels"][:1]}
    return {"model.payload": encode_payload(header, b"onnx"), "short-labels.payload": encode_payload(short, b"onnx")}


def seed_inputs(target: str, cfg: ModelConfig) -> dict[str, bytes]:
    if target == "payload":
        return seed_payloads(cfg)
    images = seed_images()
    if target == "image":
        return images
    b64 = {name: base64.b64encode(data).decode() for name, data in images.items()}
    seeds = {f"{name}.json": json.dumps({"image": s}).encode() for name, s in b64.items()}
    seeds["data-url.json"] = json.dumps({"image": "data:image/png;base64," + b64["rgb.png"], "debug": True}).encode()
    seeds["tensor.json"] = json.dumps({"tensor": {"shape": [1, 2, 2, 3], "f32le_b64": "AACAPw=="}}).encode()
    seeds["ow-value.json"] = json.dumps({"value": {"image": b64["lossy.webp"]}}).encode()
    return seeds


def corpus_dir(target: str) -> Path:
    return CACHE_DIR / "fuzz-corpus" / target


def fuzz_env(cfg: ModelConfig, dist: DistLayout) -> dict[str, str]:
    env = reproducible_cargo_env()
    env.update(
        {
            "CLASSIFIER_PAYLOAD": str(write_payload(cfg, dist)),
            "CARGO_TERM_PROGRESS_WHEN": "never",
        }
    )
    return env


def _cargo_fuzz(*args: str) -> list[str]:
    return nightly_command(
        "cargo", "fuzz", *args, "--fuzz-dir", str(FUZZ_DIR), "--target-dir", str(CACHE_DIR / "cargo-target" / "fuzz")
    )


def build_fuzz_targets(cfg: ModelConfig, dist: DistLayout) -> None:
    ensure_cargo_fuzz()
    with log.step("cargo fuzz build (AddressSanitizer, coverage instrumentation)"):
        proc = subprocess.run(
            _cargo_fuzz("build"), cwd=GUEST_DIR, env=fuzz_env(cfg, dist), capture_output=True, text=True
        )
    if proc.returncode != 0:
        raise StageError(f"cargo fuzz build failed:\n{proc.stderr[-3000:]}")


_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: \d+ corp: (\d+)/", re.MULTILINE)
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.MULTILINE)
_FINDING = re.compile(r"Test unit written to (\S+)")


def parse_libfuzzer_log(text: str) -> dict:
    """Executions, coverage and corpus size from libFuzzer's last status line and its final stats."""
    statuses = _STATUS.findall(text)
    stats = {k: int(v) for k, v in _STAT.findall(text)}
    last = statuses[-1] if statuses else ("0", "0", "0")
    return {
        "executions": stats.get("number_of_executed_units", int(last[0])),
        "execs_per_second": stats.get("average_exec_per_sec", 0),
        "coverage": int(last[1]),
        "corpus_inputs": int(last[2]),
        "peak_rss_mb": stats.get("peak_rss_mb", 0),
        "findings": tuple(_FINDING.findall(text)),
    }


def fuzz_target(cfg: ModelConfig, dist: DistLayout, target: str, seconds: int) -> FuzzResult:
    """Fuzz one target for ``seconds``; the corpus persists in the cache, findings go to dist/fuzz/findings/."""
    if target not in TARGETS:
        raise StageError(f"unknown fuzz target {target!r}", hint=f"choose one of {', '.join(TARGETS)}")
    corpus = corpus_dir(target)
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = dist.root / "fuzz" / "seeds" / target
    for name, data in seed_inputs(target, cfg).items():
        write_atomic(seeds / name, data)
    findings = dist.root / "fuzz" / "findings" / target
    findings.mkdir(parents=True, exist_ok=True)
    libfuzzer_args = [
        f"-max_total_time={seconds}",
        f"-max_len={MAX_INPUT_BYTES}",
        f"-timeout={INPUT_TIMEOUT_S}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        "-print_final_stats=1",
        f"-artifact_prefix={findings}/",
    ]
    cmd = _cargo_fuzz("run", target) + [str(corpus), str(seeds), "--", *libfuzzer_args]
    with log.step(f"cargo fuzz run {target} for {seconds} s"):
        proc = subprocess.run(
            cmd, cwd=GUEST_DIR, env=fuzz_env(cfg, dist), capture_output=True, text=True, timeout=seconds + 1800
        )
    write_atomic(dist.root / "fuzz" / f"{target}.log", proc.stderr.encode())
    parsed = parse_libfuzzer_log(proc.stderr)
    if proc.returncode != 0 and not parsed["findings"]:
        raise StageError(f"cargo fuzz run {target} failed without a finding:\n{proc.stderr[-2000:]}")
    return FuzzResult(target=target, seconds=seconds, command=" ".join(cmd), **parsed)


def run_fuzzing(
    cfg: ModelConfig, dist: DistLayout, targets: tuple[str, ...] = TARGETS, seconds: int = 60
) -> list[FuzzResult]:
    """Build and fuzz each target; write dist/fuzz/results.json; raise if any target found something."""
    problem = fuzz_problem()
    if problem:
        raise StageError(problem, hint="cargo fuzz needs the rustup nightly (see README)")
    build_fuzz_targets(cfg, dist)
    results = [fuzz_target(cfg, dist, t, seconds) for t in targets]
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cargo_fuzz": CARGO_FUZZ_VERSION,
        "results": [asdict(r) for r in results],
    }
    write_atomic(dist.root / "fuzz" / "results.json", canonical_json(report))
    for r in results:
        log.info(
            f"fuzz {r.target}: {r.executions:,} inputs in {r.seconds} s ({r.execs_per_second:,}/s), "
            f"coverage {r.coverage} edges, corpus {r.corpus_inputs}, peak RSS {r.peak_rss_mb} MB, "
            f"{len(r.findings)} findings"
        )
    found = [f for r in results for f in r.findings]
    if found:
        raise StageError(
            f"fuzzing found {len(found)} failing inputs: {', '.join(found)}",
            hint="reproduce with `cargo fuzz run TARGET FILE` in guest/, fix, then add the input to "
            "tests/bad_inputs.py",
        )
    return results

"""Golden-output parity: every available runtime against TensorFlow, on tensors and on images."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from toolchain.build.golden import load_goldens
from toolchain.core.catalog import DistLayout
from toolchain.core.config import ModelConfig
from toolchain.core.errors import DivergenceError, StageError
from toolchain.core.fsutil import json_text
from toolchain.core.preprocess import rgb8_to_tensor
from toolchain.runtimes import select_runtimes
from toolchain.runtimes.guest_base import debug_decoded, debug_tensor


@dataclass
class RuntimeParity:
    runtime: str
    tensor_max_abs: float = 0.0  # max |Δp| vs TF, same input tensor
    image_max_abs: float = 0.0  # max |Δp| vs TF, image in (decode + preprocess + infer)
    decode_max_abs: int | None = None  # guest runtimes: decoded pixels vs the reference decoder
    resize_max_abs: float | None = None  # guest runtimes: its tensor vs the reference preprocessing of its pixels
    top1_agree: int = 0
    top5_agree: int = 0
    cases: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def check_decode_and_resize(rt, g, cfg: ModelConfig, result: RuntimeParity) -> None:
    """Decode and preprocessing on their own: PNG pixels must be exact, JPEG within the decoder tolerance,
    and the guest's tensor must equal the reference preprocessing of the guest's own pixels."""

    answer = rt.classify_debug(g.image_bytes)
    if "error" in answer:
        result.failures.append(f"{g.name}: classify failed: {answer['error']}")
        return
    pixels = debug_decoded(answer)
    if pixels.shape != g.decoded_rgb8.shape:
        result.failures.append(f"{g.name}: decoded shape {pixels.shape} != reference {g.decoded_rgb8.shape}")
        return
    d_decode = int(np.max(np.abs(pixels.astype(np.int16) - g.decoded_rgb8.astype(np.int16))))
    if d_decode != 0:
        result.failures.append(f"{g.name}: decoded pixels differ from {cfg.jpeg_decoder} by {d_decode} (must be exact)")
    d_resize = float(np.max(np.abs(debug_tensor(answer, cfg.input_shape) - rgb8_to_tensor(pixels, cfg))))
    if d_resize != 0.0:
        result.failures.append(f"{g.name}: preprocessing differs from the reference by {d_resize:.2e} (must be exact)")
    result.decode_max_abs = max(result.decode_max_abs or 0, d_decode)
    result.resize_max_abs = max(result.resize_max_abs or 0.0, d_resize)


def check_runtime(rt, goldens, cfg: ModelConfig) -> RuntimeParity:
    result = RuntimeParity(rt.name)
    for g in goldens:
        if hasattr(rt, "classify_debug"):
            check_decode_and_resize(rt, g, cfg, result)
        result.cases += 1
        p = rt.infer(g.tensor)
        d_tensor = float(np.max(np.abs(p - g.tf_probabilities)))
        result.tensor_max_abs = max(result.tensor_max_abs, d_tensor)
        if d_tensor > cfg.tensor_tolerance:
            result.failures.append(f"{g.name}: tensor max |Δp| {d_tensor:.2e} > {cfg.tensor_tolerance:g}")
        got = rt.classify(g.image_bytes)
        if "error" in got:
            result.failures.append(f"{g.name}: classify failed: {got['error']}")
            continue
        want = g.tf_result
        d_image = float(max(abs(a["confidence"] - g.tf_probabilities[a["index"]]) for a in got["top5"]))
        result.image_max_abs = max(result.image_max_abs, d_image)
        top1 = got["index"] == want["index"]
        top5 = [t["index"] for t in got["top5"]] == [t["index"] for t in want["top5"]]
        result.top1_agree += top1
        result.top5_agree += top5
        if not top1:
            result.failures.append(
                f"{g.name}: top-1 {got['index']} ({got['label']}) != TF's {want['index']} ({want['label']})"
            )
        if d_image > cfg.image_tolerance:
            result.failures.append(f"{g.name}: image max |Δp| {d_image:.2e} > {cfg.image_tolerance:g}")
    return result


def verify(cfg: ModelConfig, dist: DistLayout, runtimes: list[str] | None = None) -> dict:
    goldens = load_goldens(cfg, dist)
    ready, missing = select_runtimes(cfg, dist, runtimes)
    if not ready:
        # each runtime's reason says what to do (a missing artifact names the task that makes it)
        why = "; ".join(f"{name}: {reason}" for name, reason in missing.items())
        raise StageError(f"no runtime is available to verify ({why})")
    rows = []
    for rt in ready:
        try:
            rows.append(check_runtime(rt, goldens, cfg))
        finally:
            rt.close()
    report = {
        "model": cfg.name,
        "tolerance": {"tensor_max_abs": cfg.tensor_tolerance, "image_max_abs": cfg.image_tolerance},
        "goldens": len(goldens),
        "runtimes": [{**asdict(r), "ok": r.ok} for r in rows],
        "unavailable": missing,
        "ok": all(r.ok for r in rows),
    }
    return report


def format_table(report: dict) -> str:
    head = (
        f"{'runtime':<18} {'tensor max|Δp|':>15} {'image max|Δp|':>14} {'decode':>7} {'resize':>8} "
        f"{'top-1':>7} {'top-5':>7}  status"
    )
    lines = [
        f"verify {report['model']}: {report['goldens']} goldens vs TensorFlow "
        f"(tolerance tensor {report['tolerance']['tensor_max_abs']:g}, image {report['tolerance']['image_max_abs']:g})",
        head,
        "-" * len(head),
    ]
    for r in report["runtimes"]:
        dec = "-" if r["decode_max_abs"] is None else str(r["decode_max_abs"])
        res = "-" if r["resize_max_abs"] is None else f"{r['resize_max_abs']:.1e}"
        lines.append(
            f"{r['runtime']:<18} {r['tensor_max_abs']:>15.2e} {r['image_max_abs']:>14.2e} {dec:>7} {res:>8} "
            f"{r['top1_agree']:>3}/{r['cases']:<3} {r['top5_agree']:>3}/{r['cases']:<3}  {'ok' if r['ok'] else 'DIVERGES'}"
        )
        lines.extend(f"    ✗ {f}" for f in r["failures"])
    for name, why in report["unavailable"].items():
        lines.append(f"{name:<18} {'skipped':>15}  ({why})")
    return "\n".join(lines)


def raise_on_divergence(report: dict) -> None:
    if not report["ok"]:
        bad = ", ".join(r["runtime"] for r in report["runtimes"] if not r["ok"])
        raise DivergenceError(
            f"runtimes diverge from TensorFlow beyond tolerance: {bad}",
            hint="see the table above for the goldens and deltas",
        )


def report_json(report: dict) -> str:
    return json_text(report)

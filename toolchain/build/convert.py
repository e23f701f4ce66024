"""Frozen GraphDef → ONNX with tf2onnx, checked, canonicalised, and compared numerically with TF."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from toolchain.build import onnx_rewrite
from toolchain.build.golden import golden_inputs
from toolchain.build.onnx_rewrite import fold_depthwise_scale_shift
from toolchain.build.reference import FrozenGraph, load_graph_def
from toolchain.core import log
from toolchain.core.catalog import DistLayout
from toolchain.core.config import ModelConfig
from toolchain.core.errors import InputError, StageError
from toolchain.core.fsutil import Incremental, atomic_path, digest_inputs
from toolchain.core.preprocess import image_to_tensor, to_probabilities
from toolchain.core.versions import ONNX_OPSET

REWRITER = Path(onnx_rewrite.__file__)  # a change to the graph rewrites re-runs the conversion


def canonicalise_onnx(model) -> None:
    """Give every node, initializer and intermediate value a name derived from its position, so the same
    .pb always gives the same bytes (tf2onnx's generated names such as const_fold_opt__NNN vary by run)."""
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    # tf2onnx's node order is stable but its initializer order is not: order them by first use.
    inits = {init.name: init for init in graph.initializer}
    first_use = [name for node in graph.node for name in node.input if name in inits]
    ordered = list(dict.fromkeys(first_use)) + sorted(set(inits) - set(first_use))
    rename: dict[str, str] = {name: f"w{i}" for i, name in enumerate(ordered)}
    sorted_inits = [inits[name] for name in ordered]
    del graph.initializer[:]
    graph.initializer.extend(sorted_inits)
    for i, node in enumerate(graph.node):
        node.name = f"n{i}_{node.op_type}"
        for j, out in enumerate(node.output):
            if out and out not in keep:
                rename.setdefault(out, f"t{i}_{j}")
    for init in graph.initializer:
        init.name = rename[init.name]
    for node in graph.node:
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    for vi in graph.value_info:
        vi.name = rename.get(vi.name, vi.name)
    graph.name = "main"
    model.doc_string = ""
    graph.doc_string = ""


def check_graph_against_config(graph_def, cfg: ModelConfig, source: Path) -> None:
    names = {n.name for n in graph_def.node}
    for what, name, key in (("input", cfg.input_name, "[input] name"), ("output", cfg.output_name, "[output] name")):
        if name not in names:
            close = sorted(
                n for n in names if n.split("/")[-1].lower() in ("input", "reshape_1", "softmax", "predictions")
            )
            raise InputError(
                f"{source}: no {what} tensor named {name!r} in the graph"
                + (f" (candidates: {', '.join(close[:5])})" if close else ""),
                hint=f"fix {key} in {cfg.config_path.name}",
            )


def convert_pb_to_onnx(cfg: ModelConfig, dist: DistLayout, force: bool = False) -> Path:
    pb = dist.frozen_pb(cfg.name)
    out = dist.onnx(cfg.name)
    if not pb.is_file():
        raise InputError(f"frozen graph {pb} does not exist", hint=f"run `invoke model --model {cfg.name}` first")
    inputs = digest_inputs([pb, cfg.config_path, REWRITER], {"opset": ONNX_OPSET})
    job = Incremental("convert", dist.stamp("convert", cfg.name), inputs, (out,))
    if job.up_to_date(force):
        return out
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import onnx
    import tf2onnx

    graph_def = load_graph_def(pb)
    check_graph_against_config(graph_def, cfg, pb)
    with log.step(f"tf2onnx {pb.name} (opset {ONNX_OPSET})"):
        try:
            model, _ = tf2onnx.convert.from_graph_def(
                graph_def, input_names=[f"{cfg.input_name}:0"], output_names=[f"{cfg.output_name}:0"], opset=ONNX_OPSET
            )
        except Exception as exc:
            raise StageError(
                f"tf2onnx could not convert {pb} ({exc})",
                hint="check that the graph is frozen and its ops are supported by tf2onnx",
            ) from exc
    dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    if dims and dims[-1] and dims[-1] != cfg.classes:
        raise InputError(
            f"{pb}: output {cfg.output_name!r} has shape {dims}, the config says {cfg.classes} classes",
            hint=f"fix [output] classes or name in {cfg.config_path.name}",
        )
    folded = fold_depthwise_scale_shift(model)
    canonicalise_onnx(model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise StageError(f"onnx.checker rejected the converted model ({exc})") from exc
    with atomic_path(out) as tmp:
        tmp.write_bytes(model.SerializeToString(deterministic=True))
        max_delta = compare_tf_onnxruntime(cfg, dist, tmp)
    log.info(
        f"convert: {out} ({out.stat().st_size} bytes; {folded} depthwise scale-and-shift pairs folded); "
        f"TF vs ONNX Runtime max |Δp| {max_delta:.2e} "
        f"(tolerance {cfg.tensor_tolerance:g})"
    )
    job.record()
    return out


def compare_tf_onnxruntime(cfg: ModelConfig, dist: DistLayout, onnx_path: Path) -> float:
    """Max |Δp| between TF and ONNX Runtime on the golden images; raises beyond the model's tolerance."""
    import onnxruntime as ort

    pb = dist.frozen_pb(cfg.name)
    reference = FrozenGraph(pb, cfg)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    in_name = session.get_inputs()[0].name
    worst = 0.0
    for g in golden_inputs():
        x = image_to_tensor(g.image_bytes, cfg)
        p_tf = to_probabilities(reference.run(x), cfg)
        out = session.run(None, {in_name: x})[0]
        if out.size != cfg.classes:
            raise InputError(
                f"{pb}: output has {out.size} values, the config says {cfg.classes} classes",
                hint=f"fix [output] in {cfg.config_path.name}",
            )
        worst = max(worst, float(np.max(np.abs(to_probabilities(out, cfg) - p_tf))))
    if worst > cfg.tensor_tolerance:
        raise StageError(
            f"ONNX Runtime diverges from TF: max |Δp| {worst:.3e} > {cfg.tensor_tolerance:g}",
            hint="inspect the graph for ops tf2onnx converts inexactly, or raise [tolerance] with a reason",
        )
    return worst

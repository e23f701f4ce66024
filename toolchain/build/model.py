"""Build the embedded default model: a real MobileNetV2 with seeded weights, frozen deterministically.

Random weights alone give a near-uniform softmax and the same class for every photo, so three things are
set on purpose (and deterministically):
- BatchNorm moving statistics come from one pass over calibration images;
- each block's projection BatchNorm is damped (gamma × RESIDUAL_DAMPING). Without it the seeded network
  is chaotic: a ±1 change on 0.6% of the pixels (another JPEG decoder's rounding) flipped its top-1,
  which no trained network does. Damped, the worst |Δp| between two JPEG decoders on the goldens is ~0.03;
- the classifier head centres the pooled features, projects them with seeded Gaussian weights and
  scales the logits until every calibration photo gets a confident top-1 (>= MIN_TOP1).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from toolchain.build.golden import photo_sources
from toolchain.core import log
from toolchain.core.catalog import DistLayout
from toolchain.core.config import ModelConfig
from toolchain.core.errors import ConfigError, InputError
from toolchain.core.fsutil import (
    Incremental,
    canonical_json,
    digest_inputs,
    sha256_file,
    write_atomic,
)
from toolchain.core.preprocess import decode_rgb8, rgb8_to_tensor

MIN_TOP1 = 0.25  # the issue asks >= 0.15 on the golden photos; aim higher so re-encodings keep it
RESIDUAL_DAMPING = 0.5  # chosen by measuring decoder sensitivity for 0.1 … 1.0 (README, "default model")
GENERATOR_VERSION = 2  # bump when the generated weights change
GENERATORS = ("mobilenet_v2",)


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _build_keras_mobilenet_v2(cfg: ModelConfig, calibration: np.ndarray):
    import keras

    tf = _tf()
    keras.backend.clear_session()  # layer-name counters restart, so graph node names are stable
    keras.utils.set_random_seed(cfg.source.seed)
    tf.config.experimental.enable_op_determinism()
    model = keras.applications.MobileNetV2(
        input_shape=(cfg.height, cfg.width, 3),
        alpha=cfg.source.alpha,
        weights=None,
        classes=cfg.classes,
        classifier_activation="softmax",
    )

    # BatchNorm: momentum 0 + one training-mode pass = moving stats equal the calibration batch's stats.
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for bn in bns:
        bn.momentum = 0.0
    model(calibration, training=True)
    for bn in bns:
        if bn.name.endswith("project_BN"):
            bn.gamma.assign(bn.gamma.numpy() * RESIDUAL_DAMPING)

    # Classifier head: centre the pooled features, project with seeded Gaussian weights, scale logits.
    head = model.layers[-1]
    features = keras.Model(model.input, head.input)(calibration, training=False).numpy().astype(np.float64)
    mu = features.mean(axis=0)
    sigma = np.full(features.shape[1], features.std(axis=0).mean())  # one scale: no tiny-variance dims blown up
    rng = np.random.default_rng(cfg.source.seed)
    proj = rng.standard_normal((features.shape[1], cfg.classes)) / np.sqrt(features.shape[1])
    base_kernel = proj / sigma[:, None]
    base_bias = -(mu / sigma) @ proj
    logits = features @ base_kernel + base_bias
    scale = 1.0
    while True:
        z = logits * scale
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        if p.max(axis=1).min() >= MIN_TOP1 or scale > 1e3:
            break
        scale *= 1.25
    head.set_weights([(base_kernel * scale).astype(np.float32), (base_bias * scale).astype(np.float32)])
    return model


def freeze_keras(model, cfg: ModelConfig) -> bytes:
    """Freeze to a GraphDef with the config's tensor names; serialized deterministically."""
    tf = _tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec(cfg.input_shape, tf.float32, name=cfg.input_name)
    )
    frozen = convert_variables_to_constants_v2(fn)
    graph_def = frozen.graph.as_graph_def()
    old_out = frozen.outputs[0].name.split(":")[0]
    for node in graph_def.node:
        if node.name == old_out:
            node.name = cfg.output_name
        node.input[:] = [cfg.output_name if i == old_out else i for i in node.input]
    graph_def = tf.compat.v1.graph_util.extract_sub_graph(graph_def, [cfg.output_name])
    return graph_def.SerializeToString(deterministic=True)


def build_default_model(cfg: ModelConfig, calibration: np.ndarray) -> tuple[bytes, dict]:
    if cfg.source.generator not in GENERATORS:
        raise ConfigError(
            f"{cfg.config_path.name}: unknown generator {cfg.source.generator!r}",
            hint=f"known generators: {', '.join(GENERATORS)}",
        )
    model = _build_keras_mobilenet_v2(cfg, calibration)
    pb = freeze_keras(model, cfg)
    return pb, {"parameters": int(model.count_params())}


def calibration_batch(cfg: ModelConfig) -> np.ndarray:
    tensors = []
    for src in photo_sources():
        rgb = decode_rgb8(src.read_bytes(), cfg)
        tensors.append(rgb8_to_tensor(rgb, cfg))
        tensors.append(rgb8_to_tensor(np.ascontiguousarray(rgb[:, ::-1]), cfg))  # mirrored
    return np.concatenate(tensors, axis=0)


def ensure_frozen_model(cfg: ModelConfig, dist: DistLayout, force: bool = False) -> Path:
    """Produce ``dist/model/<name>.pb``: built by the generator, or copied from the user's file."""
    out = dist.frozen_pb(cfg.name)
    report = dist.model_report(cfg.name)
    if cfg.source.kind == "file":
        src = cfg.source.path
        if src is None or not src.is_file():
            raise InputError(
                f"frozen graph {src} does not exist", hint=f"set [source] path in {cfg.config_path} to your frozen .pb"
            )
        job = Incremental("model", dist.stamp("model", cfg.name), digest_inputs([src, cfg.config_path]), (out, report))
        if job.up_to_date(force):
            return out
        write_atomic(out, src.read_bytes())
        facts: dict[str, object] = {"source": str(src)}
    else:
        inputs = digest_inputs([cfg.config_path, *photo_sources()], {"generator_version": GENERATOR_VERSION})
        job = Incremental("model", dist.stamp("model", cfg.name), inputs, (out, report))
        if job.up_to_date(force):
            return out
        with log.step(f"building {cfg.name} with TensorFlow (seed {cfg.source.seed})"):
            pb, facts = build_default_model(cfg, calibration_batch(cfg))
        write_atomic(out, pb)
    facts.update({"pb_bytes": out.stat().st_size, "pb_sha256": sha256_file(out)})
    write_atomic(report, canonical_json(facts))
    job.record()
    log.info(f"model: {out} ({json.dumps(facts)})")
    return out

"""The blackbox (docker) action image: the static action server alone in one layer, written daemonless.

`podman load` / `docker load` read the docker-archive; the image ID is the config digest, the same for
two builds of one commit (fixed times, owners, modes; labels from SOURCE_DATE_EPOCH and the commit).
"""

from __future__ import annotations

import time
from pathlib import Path

from toolchain import log
from toolchain.archive import Entry, source_date_epoch, source_revision
from toolchain.config import DistLayout, ModelConfig, project_version
from toolchain.errors import ConfigError, StageError
from toolchain.fsutil import write_atomic
from toolchain.guest import NATIVE_TARGET, VARIANTS, native_cli_path
from toolchain.manifest import Artifact
from toolchain.oci import ImageSpec, archive_image_id, docker_archive

ACTION_PORT = 8080  # the action-container protocol's port; ACTION_PORT in the environment moves it
BINARY_IN_IMAGE = "action/classify"


def image_path(model: str, dist: DistLayout) -> Path:
    return dist.openwhisk_dir() / f"{model}-image.tar"


def image_reference(cfg: ModelConfig) -> str:
    return f"mobilenet-infer-benchmark/{cfg.name.lower()}:{project_version()}"


def image_spec(cfg: ModelConfig, binary: bytes, epoch: int) -> ImageSpec:
    return ImageSpec(
        repo_tag=image_reference(cfg),
        files=[Entry(BINARY_IN_IMAGE, binary, 0o755)],
        entrypoint=[f"/{BINARY_IN_IMAGE}", "serve"],
        exposed_port=ACTION_PORT,
        labels={
            "org.opencontainers.image.title": f"{cfg.name} OpenWhisk action",
            "org.opencontainers.image.description": f"{cfg.description} - OpenWhisk action-container protocol "
                                                    f"on port {ACTION_PORT}, tract engine, model built in",
            "org.opencontainers.image.version": project_version(),
            "org.opencontainers.image.revision": source_revision(),
            "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
        },
    )


def build_action_image(cfg: ModelConfig, dist: DistLayout) -> tuple[Path, str]:
    """Write dist/openwhisk/<model>-image.tar; return it and the image ID."""
    binary = native_cli_path(cfg.name, dist)
    if not binary.is_file():
        raise StageError(f"{binary} missing", hint=f"run `invoke build --model {cfg.name}` first")
    data, image_id = docker_archive(image_spec(cfg, binary.read_bytes(), source_date_epoch()), source_date_epoch())
    out = image_path(cfg.name, dist)
    write_atomic(out, data)
    log.info(f"image: {out} ({len(data):,} bytes, {image_reference(cfg)}, ID {image_id[:19]})")
    return out, image_id


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    from toolchain.config import load_model_config

    path = image_path(model, dist)
    if not path.is_file():
        return []
    try:
        ref = image_reference(load_model_config(model))
    except ConfigError:  # a model in dist/ whose config is not in models/: still list the image
        ref = None
    return [Artifact(path, "oci-image", model, target=NATIVE_TARGET, runtime="openwhisk-blackbox",
                     cpu_baseline=VARIANTS["native"].cpu_baseline, features=(), image_id=archive_image_id(path),
                     image_reference=ref)]

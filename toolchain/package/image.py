"""The blackbox (docker) action images, written daemonless, one layer each: the static tract action server
alone (`tract`), or the ONNX Runtime build with the wheel's library and the glibc it links (`onnxruntime`).

`podman load` / `docker load` read the docker-archive; the image ID is the config digest, the same for
two builds of one commit (fixed times, owners, modes; labels from SOURCE_DATE_EPOCH and the commit).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from toolchain.core import log
from toolchain.core.artifact import Artifact
from toolchain.core.catalog import (
    ENGINES,
    NATIVE_TARGET,
    VARIANTS,
    DistLayout,
    image_path,
    image_reference,
    native_cli_path,
    onnxruntime_library_path,
)
from toolchain.core.config import ModelConfig, load_model_config, project_version
from toolchain.core.errors import ConfigError, StageError
from toolchain.core.fsutil import write_atomic
from toolchain.core.programs import LDD
from toolchain.package.archive import Entry, source_date_epoch, source_revision
from toolchain.package.oci import ImageSpec, archive_image_id, docker_archive

ACTION_PORT = 8080  # the action-container protocol's port; ACTION_PORT in the environment moves it
BINARY_IN_IMAGE = "action/classify"


def shared_libraries(*elf_files: Path) -> list[Path]:
    """What the dynamic loader maps for these ELF files (ldd), the loader itself included, as absolute paths."""
    found: set[Path] = set()
    for elf in elf_files:
        out = subprocess.run([LDD.require(), str(elf)], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise StageError(f"ldd {elf} failed: {out.stderr.strip()}")
        for line in out.stdout.splitlines():
            parts = line.split()
            path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
            if path.startswith("/"):
                found.add(Path(path))
    return sorted(found)


def image_files(cfg: ModelConfig, dist: DistLayout, engine: str) -> list[Entry]:
    binary = native_cli_path(cfg.name, dist, ENGINES[engine].variant)
    if not binary.is_file():
        raise StageError(f"{binary} missing", hint=f"run `invoke build --model {cfg.name}` first")
    files = [Entry(BINARY_IN_IMAGE, binary.read_bytes(), 0o755)]
    if engine == "onnxruntime":
        library = onnxruntime_library_path(cfg.name, dist)
        files.append(Entry(f"{Path(BINARY_IN_IMAGE).parent}/{library.name}", library.read_bytes(), 0o644))
        # At the paths ldd names (the loader's default directories), file contents behind any symlink.
        files += [
            Entry(str(lib).lstrip("/"), lib.resolve().read_bytes(), 0o755) for lib in shared_libraries(binary, library)
        ]
    return files


def image_spec(cfg: ModelConfig, files: list[Entry], epoch: int, engine: str = "tract") -> ImageSpec:
    return ImageSpec(
        repo_tag=image_reference(cfg, engine),
        files=files,
        entrypoint=[f"/{BINARY_IN_IMAGE}", "serve"],
        exposed_port=ACTION_PORT,
        labels={
            "org.opencontainers.image.title": f"{cfg.name} OpenWhisk action",
            "org.opencontainers.image.description": f"{cfg.description} - OpenWhisk action-container protocol "
            f"on port {ACTION_PORT}, {ENGINES[engine].description}",
            "org.opencontainers.image.version": project_version(),
            "org.opencontainers.image.revision": source_revision(),
            "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
        },
    )


def build_action_image(cfg: ModelConfig, dist: DistLayout, engine: str = "tract") -> tuple[Path, str]:
    """Write dist/openwhisk/<model>[-onnxruntime]-image.tar; return it and the image ID."""
    epoch = source_date_epoch()
    data, image_id = docker_archive(image_spec(cfg, image_files(cfg, dist, engine), epoch, engine), epoch)
    out = image_path(cfg.name, dist, engine)
    write_atomic(out, data)
    log.info(f"image: {out} ({len(data):,} bytes, {image_reference(cfg, engine)}, ID {image_id[:19]})")
    return out, image_id


def artifacts(model: str, dist: DistLayout) -> list[Artifact]:
    found = []
    for engine in ENGINES.values():
        path = image_path(model, dist, engine.name)
        if not path.is_file():
            continue
        try:
            ref = image_reference(load_model_config(model), engine.name)
        except ConfigError:  # a model in dist/ whose config is not in models/: still list the image
            ref = None
        found.append(
            Artifact(
                path,
                "oci-image",
                model,
                target=NATIVE_TARGET,
                runtime="openwhisk-blackbox",
                cpu_baseline=VARIANTS[engine.variant].cpu_baseline,
                features=(),
                image_id=archive_image_id(path),
                image_reference=ref,
            )
        )
    return found

"""Write a Docker/OCI image as a docker-archive tar without any daemon (as ko, jib and rules_oci do).

One layer holding the given files, a config with entrypoint, exposed port and org.opencontainers.image.*
labels; `docker load` and `podman load` read the result. Deterministic: same files and epoch, same bytes,
so the same image ID (the config digest).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from toolchain.package.archive import Entry, tar_bytes


@dataclass(frozen=True)
class ImageSpec:
    repo_tag: str  # e.g. "mobilenet-action:0.1.0"
    files: list[Entry]
    entrypoint: list[str]
    exposed_port: int | None = None
    env: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def docker_archive(spec: ImageSpec, epoch: int) -> tuple[bytes, str]:
    """Return (archive bytes, image id "sha256:…")."""
    dirs = sorted({"/".join(e.name.split("/")[:i]) for e in spec.files for i in range(1, e.name.count("/") + 1)})
    layer = tar_bytes([Entry(d, None, 0o755) for d in dirs] + spec.files, epoch)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "Entrypoint": spec.entrypoint,
            "Env": spec.env,
            "ExposedPorts": {f"{spec.exposed_port}/tcp": {}} if spec.exposed_port else {},
            "Labels": spec.labels,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "mobilenet-infer-benchmark toolchain (daemonless)"}],
    }
    config_bytes = _json(config)
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    layer_dir = diff_id.split(":")[1]
    repo, _, tag = spec.repo_tag.rpartition(":")
    outer = [
        Entry(f"{config_digest}.json", config_bytes),
        Entry(f"{layer_dir}/layer.tar", layer),
        Entry(f"{layer_dir}/VERSION", b"1.0"),
        Entry(
            "manifest.json",
            _json(
                [{"Config": f"{config_digest}.json", "RepoTags": [spec.repo_tag], "Layers": [f"{layer_dir}/layer.tar"]}]
            ),
        ),
        Entry("repositories", _json({repo: {tag: layer_dir}})),
    ]
    return tar_bytes(outer, epoch), f"sha256:{config_digest}"


def archive_image_id(path: Path) -> str:
    """The image ID ("sha256:…") of a docker-archive: its config's digest, from manifest.json."""
    with tarfile.open(path) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ValueError(f"{path} has no manifest.json; it is not a docker-archive")
        config = json.loads(member.read())[0]["Config"]
    return "sha256:" + config.removesuffix(".json")

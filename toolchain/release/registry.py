"""`invoke release --registry HOST[:PORT]/NAMESPACE`: push the action images to an OCI registry (the distribution
API: Docker Hub, a registry:2, Debian's docker-registry) with podman, and return each image's pushed reference by
digest (`HOST/NAMESPACE/NAME@sha256:...`), which the release writes into its manifest and deploy files.

A registry on localhost or 127.0.0.1 is spoken to over plain HTTP (what a test or CI-local registry serves);
any other over verified TLS."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from toolchain.core.catalog import ENGINES, DistLayout, image_path, image_reference
from toolchain.core.config import ModelConfig
from toolchain.core.errors import InputError, StageError
from toolchain.runtimes.actions import PODMAN_GLOBAL, load_image, podman_available

_REGISTRY = re.compile(r"^(?P<host>[A-Za-z0-9.-]+(:[0-9]{1,5})?)/(?P<namespace>[a-z0-9]+([._/-][a-z0-9]+)*)$")


@dataclass(frozen=True)
class PushedImage:
    artifact: str  # the docker-archive's path in the manifest
    local: str  # the reference the deploy files name
    reference: str  # HOST/NAMESPACE/NAME@sha256:...


def check_registry(registry: str) -> tuple[str, str]:
    """(host, namespace) of ``HOST[:PORT]/NAMESPACE``, or a clear error."""
    m = _REGISTRY.match(registry)
    if not m:
        raise InputError(
            f"--registry {registry!r} is not HOST[:PORT]/NAMESPACE",
            hint="for example localhost:5000/mib or registry.example.com/team",
        )
    return m["host"], m["namespace"]


def _plain_http(host: str) -> bool:
    return host.split(":")[0] in ("localhost", "127.0.0.1")


def _push(image_id: str, destination: str, host: str) -> str:
    """podman push; the manifest digest the registry stored."""
    with tempfile.TemporaryDirectory() as tmp:
        digest_file = Path(tmp) / "digest"
        command = [*PODMAN_GLOBAL, "push", f"--tls-verify={'false' if _plain_http(host) else 'true'}"]
        command += ["--digestfile", str(digest_file), image_id, f"docker://{destination}"]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired as exc:
            raise StageError(f"pushing to {destination} did not finish in 15 minutes") from exc
        if proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            if "connection refused" in proc.stderr or "no such host" in proc.stderr:
                raise StageError(
                    f"the registry {host} cannot be reached ({detail})", hint="start it, or check --registry"
                )
            raise StageError(f"the registry {host} refused the push of {destination}: {detail}")
        digest = digest_file.read_text().strip()
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise StageError(f"podman push reported no digest for {destination} ({digest!r})")
    return digest


def push_images(cfg: ModelConfig, dist: DistLayout, registry: str) -> list[PushedImage]:
    """Push every action image of ``cfg`` to ``registry``; their references by digest."""
    host, namespace = check_registry(registry)
    why_not = podman_available()
    if why_not:
        raise StageError(f"cannot push images: {why_not}")
    pushed = []
    for engine in ENGINES:
        archive, local = image_path(cfg.name, dist, engine), image_reference(cfg, engine)
        name_and_tag = local.rsplit("/", 1)[-1]
        destination = f"{host}/{namespace}/{name_and_tag}"
        digest = _push(load_image(archive), destination, host)
        reference = f"{destination.rsplit(':', 1)[0]}@{digest}"
        pushed.append(PushedImage(archive.relative_to(dist.root).as_posix(), local, reference))
    return pushed

"""One built file as dist/manifest.json lists it. The manifest schema's list is the one source of the kinds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toolchain.core.catalog import DistLayout
from toolchain.core.config import REPO_ROOT
from toolchain.core.fsutil import sha256_file

SCHEMA_PATH = REPO_ROOT / "schemas" / "manifest.schema.json"
KINDS = tuple(json.loads(SCHEMA_PATH.read_text())["properties"]["artifacts"]["items"]["properties"]["kind"]["enum"])


@dataclass(frozen=True)
class Artifact:
    path: Path  # absolute; stored relative to dist/
    kind: str
    model: str
    target: str | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    cpu_baseline: str | None = None
    features: tuple[str, ...] | None = None
    image_id: str | None = None  # oci-image: the config digest `podman images` shows
    image_reference: str | None = None  # oci-image: repository:tag it loads as
    code_limit_share: float | None = None  # action zips: base64 size / OpenWhisk's code limit
    base: Path | None = None  # a guest that carries a model: the model-independent build it was attached to
    payload: Path | None = None  # ... and the model payload it carries

    def entry(self, dist: DistLayout) -> dict:
        assert self.kind in KINDS, self.kind
        e = {
            "path": self.path.relative_to(dist.root).as_posix(),
            "kind": self.kind,
            "model": self.model,
            "sha256": sha256_file(self.path),
            "bytes": self.path.stat().st_size,
        }
        for key in (
            "target",
            "runtime",
            "runtime_version",
            "cpu_baseline",
            "image_id",
            "image_reference",
            "code_limit_share",
        ):
            if getattr(self, key) is not None:
                e[key] = getattr(self, key)
        if self.base is not None:
            e["base_sha256"] = sha256_file(self.base)
        if self.payload is not None:
            e["payload_sha256"] = sha256_file(self.payload)
        if self.features is not None:
            e["features"] = list(self.features)
        return e

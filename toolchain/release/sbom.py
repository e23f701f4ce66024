"""CycloneDX 1.6 SBOMs (JSON) of what a release ships: the crates of each Cargo workspace whose binaries or wasm
modules it ships (from its Cargo.lock, with the lock's checksums), and the Python environment that built them
(its installed distributions).

They are reproducible: the same inputs give the same bytes. The timestamp is the source commit's (SOURCE_DATE_EPOCH),
and the serial number is derived from the content. `validate` checks a document against the CycloneDX project's
own schema (cyclonedx-python-lib)."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from toolchain.core.errors import StageError

SPEC_VERSION = "1.6"
_SCHEMA = SchemaVersion.V1_6


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    purl: str
    sha256: str | None = None
    patched: str | None = None  # how this copy differs from the published one (CycloneDX pedigree notes)

    def as_cyclonedx(self) -> dict:
        out: dict = {
            "type": "library",
            "bom-ref": self.purl,
            "name": self.name,
            "version": self.version,
            "purl": self.purl,
        }
        if self.sha256:
            out["hashes"] = [{"alg": "SHA-256", "content": self.sha256}]
        if self.patched:
            out["pedigree"] = {"notes": self.patched}
        return out


def cargo_components(lock: Path, vendor: Path | None = None) -> list[Component]:
    """Every crate from a registry in a Cargo.lock, and every crate vendored (and patched) in ``vendor/<name>``;
    the workspace's own members are the SBOM's subject."""
    try:
        packages = tomllib.loads(lock.read_text(encoding="utf-8")).get("package", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise StageError(f"cannot read {lock}: {exc}", hint="run `invoke build` from a full checkout") from exc
    vendored = {d.name for d in vendor.iterdir() if d.is_dir()} if vendor is not None and vendor.is_dir() else set()
    found = []
    for p in packages:
        purl = f"pkg:cargo/{p['name']}@{p['version']}"
        if str(p.get("source", "")).startswith("registry+"):
            found.append(Component(p["name"], p["version"], purl, p.get("checksum")))
        elif "source" not in p and p["name"] in vendored and vendor is not None:
            where = f"{vendor.parent.name}/{vendor.name}"
            note = f"vendored in {where}/{p['name']} with patches; {where}/README.md lists them"
            found.append(Component(p["name"], p["version"], purl, patched=note))
    return sorted(found, key=lambda c: (c.name, c.version))


def _pypi_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503, as purls for PyPI use it


def python_components() -> list[Component]:
    """The distributions installed in the running Python environment (the toolchain's venv)."""
    found = {}
    for dist in metadata.distributions():
        name, version = dist.metadata["Name"], dist.version
        if name:
            key = _pypi_name(name)
            found[key] = Component(key, version, f"pkg:pypi/{key}@{version}")
    return sorted(found.values(), key=lambda c: c.name)


def sbom(subject: str, version: str, components: list[Component], epoch: int) -> dict:
    """A CycloneDX document for ``subject`` (what the release ships from one dependency set)."""
    body = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "component": {"type": "application", "bom-ref": subject, "name": subject, "version": version},
        },
        "components": [c.as_cyclonedx() for c in components],
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    return {**body, "serialNumber": uuid.UUID(bytes=digest[:16], version=5).urn}


def validate(doc: dict, name: str) -> None:
    """Raise a StageError naming ``name`` if ``doc`` is not valid CycloneDX (the strict JSON schema)."""
    error = JsonStrictValidator(_SCHEMA).validate_str(json.dumps(doc))
    if error is not None:
        raise StageError(f"{name} is not valid CycloneDX {SPEC_VERSION}: {error}")


def components_named(doc: dict, name: str) -> list[str]:
    """The versions of component ``name`` in a document (for checks like "tract at its locked version")."""
    return [c["version"] for c in doc.get("components", []) if c.get("name") == name]

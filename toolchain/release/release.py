"""`invoke release`: a built, packaged and verified dist/ becomes one directory a CI job uploads as it is.

    <out>/artifacts/<path>    every artifact of dist/manifest.json, at its manifest path, checked against the
                              manifest's digest first (a stale or edited dist/ is refused)
    <out>/manifest.json       the manifest itself
    <out>/sbom/*.cdx.json     CycloneDX SBOMs: the guest's crates (native executables, wasm modules, .cwasm,
                              action images), the wasm host's crates, the Python environment that built them
    <out>/deploy/             with --registry only: the deploy files naming the pushed images by digest (the
                              manifest then lists them under `pushed_images`)
    <out>/RELEASE-NOTES.md    version, source revision, the verify table and, if a bench ran, its summary
    <out>/SHA256SUMS          every file above (`sha256sum -c SHA256SUMS` in <out> checks them)

The images are pushed first, and the directory is written beside its final place and moved there whole: on any
error nothing is half-written, and a previous release in that place stays as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from toolchain.build.cargo import GUEST_DIR, HOST_DIR
from toolchain.core.catalog import DistLayout, deploy_paths
from toolchain.core.config import ModelConfig, project_version
from toolchain.core.errors import StageError
from toolchain.core.fsutil import json_text, sha256_file
from toolchain.measure.bench.report import format_summary
from toolchain.measure.verify import format_table
from toolchain.package.archive import source_date_epoch
from toolchain.release.registry import PushedImage, check_registry, push_images
from toolchain.release.sbom import cargo_components, python_components, sbom, validate

SUMS = "SHA256SUMS"


def _manifest(dist: DistLayout) -> dict:
    try:
        return json.loads(dist.manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StageError(f"cannot read {dist.manifest}: {exc}", hint="run `invoke build package` first") from exc


def _sboms(epoch: int) -> dict[str, dict]:
    version = project_version()
    docs = {
        "guest-crates.cdx.json": sbom(
            "classifier", version, cargo_components(GUEST_DIR / "Cargo.lock", GUEST_DIR / "vendor"), epoch
        ),
        "wasm-host-crates.cdx.json": sbom("wasm-host", version, cargo_components(HOST_DIR / "Cargo.lock"), epoch),
        "python-toolchain.cdx.json": sbom("toolchain", version, python_components(), epoch),
    }
    for name, doc in docs.items():
        validate(doc, name)
    return docs


def _notes(cfg: ModelConfig, manifest: dict, verify_report: dict, bench: dict | None) -> str:
    artifacts = manifest["artifacts"]
    lines = [
        f"# mobilenet-infer-benchmark {project_version()}",
        "",
        f"Source revision {manifest.get('source_revision', 'unknown')}; model {cfg.name}; {len(artifacts)} artifacts, "
        f"{sum(a['bytes'] for a in artifacts):,} bytes (artifacts/, listed with digests in manifest.json).",
        "",
        "## Verify",
        "",
        "```",
        format_table(verify_report),
        "```",
    ]
    if bench is not None:
        cpu = bench.get("machine", {}).get("cpu", "unknown CPU")
        when = bench.get("created", "an unknown date")
        lines += ["", f"## Bench ({cpu}, {when}: dist/bench/results.json as it was)", "", "```"]
        lines += [format_summary(bench), "```"]
    return "\n".join(lines) + "\n"


def _sums(root: Path, known: dict[str, str]) -> str:
    """SHA256SUMS of every file under ``root``; ``known`` maps relative paths to digests already checked (the
    artifacts, whose manifest digests were just compared with dist/), so a gigabyte is not hashed twice."""
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != SUMS)
    return "".join(f"{known.get(f) or sha256_file(root / f)}  {f}\n" for f in files)


def _deploy_files(cfg: ModelConfig, dist: DistLayout, pushed: list[PushedImage], into: Path) -> None:
    """The deploy files with each local image reference replaced by its pushed reference by digest."""
    into.mkdir()
    for path in deploy_paths(cfg.name, dist).values():
        text = path.read_text(encoding="utf-8")
        for image in pushed:
            text = text.replace(image.local, image.reference)
        (into / path.name).write_text(text, encoding="utf-8")


def make_release(
    cfg: ModelConfig, dist: DistLayout, verify_report: dict, out: Path | None = None, registry: str | None = None
) -> Path:
    """Write the release directory (default dist/release/) from a packaged dist/ and its verify report; with
    ``registry`` (HOST[:PORT]/NAMESPACE), push the action images there first."""
    out = (out or dist.release_dir()).resolve()
    if registry:
        check_registry(registry)  # a malformed --registry is refused before any work
    if not verify_report.get("ok"):
        raise StageError("verify diverged; a release needs every runtime to agree with TensorFlow")
    manifest = _manifest(dist)
    for a in manifest["artifacts"]:
        path = dist.root / a["path"]
        if not path.is_file() or sha256_file(path) != a["sha256"]:
            raise StageError(
                f"{path} does not match dist/manifest.json (missing or changed since it was written)",
                hint="run `invoke build package` again",
            )
    sboms = _sboms(source_date_epoch())
    bench_path = dist.bench_dir() / "results.json"
    bench = json.loads(bench_path.read_text(encoding="utf-8")) if bench_path.is_file() else None

    pushed = push_images(cfg, dist, registry) if registry else []
    if pushed:
        manifest["pushed_images"] = [vars(image) for image in pushed]

    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for a in manifest["artifacts"]:
            target = staging / "artifacts" / a["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.root / a["path"], target)
        (staging / "manifest.json").write_text(json_text(manifest) + "\n", encoding="utf-8")
        if pushed:
            _deploy_files(cfg, dist, pushed, staging / "deploy")
        (staging / "sbom").mkdir()
        for name, doc in sboms.items():
            (staging / "sbom" / name).write_text(json_text(doc) + "\n", encoding="utf-8")
        (staging / "RELEASE-NOTES.md").write_text(_notes(cfg, manifest, verify_report, bench), encoding="utf-8")
        checked = {f"artifacts/{a['path']}": a["sha256"] for a in manifest["artifacts"]}
        (staging / SUMS).write_text(_sums(staging, checked), encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(out)
    except OSError as exc:
        raise StageError(f"cannot write the release to {out}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out

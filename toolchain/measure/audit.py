"""Dependency policy of the Rust workspaces, offline: cargo-deny checks licences (permissive only: they ship
inside the binaries and images), bans (no wildcard versions) and sources (crates.io only, no git) against
guest/deny.toml. The RustSec advisory audit needs its database from the network, so it runs in the release
workflow (.github/workflows/release.yml), not here.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from toolchain.build.cargo import GUEST_DIR, HOST_DIR, ensure_cargo_subcommand, nightly_command, nightly_problem
from toolchain.core import log
from toolchain.core.errors import StageError
from toolchain.core.versions import CARGO_DENY_VERSION

POLICY = GUEST_DIR / "deny.toml"
WORKSPACES = {"guest": GUEST_DIR, "host": HOST_DIR, "fuzz": GUEST_DIR / "fuzz"}
CHECKS = ("licenses", "bans", "sources")


@dataclass(frozen=True)
class AuditResult:
    workspace: str
    ok: bool
    report: str  # cargo-deny's diagnostics


def audit_problem() -> str | None:
    return nightly_problem()  # cargo-deny is installed and run with the rustup toolchain


def ensure_cargo_deny() -> None:
    ensure_cargo_subcommand("deny", CARGO_DENY_VERSION)


def deny_workspace(name: str, root: Path, policy: Path = POLICY) -> AuditResult:
    cmd = nightly_command(
        "cargo",
        "deny",
        "--manifest-path",
        str(root / "Cargo.toml"),
        "--locked",
        "--config",
        str(policy),
        "check",
        "--hide-inclusion-graph",
        *CHECKS,
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return AuditResult(name, proc.returncode == 0, proc.stderr.strip())


def audit_dependencies(policy: Path = POLICY) -> list[AuditResult]:
    """cargo-deny on every workspace; raises with the findings if any fails."""
    problem = audit_problem()
    if problem:
        raise StageError(problem, hint="cargo-deny is installed with the rustup toolchain (see README)")
    ensure_cargo_deny()
    results = [deny_workspace(name, root, policy) for name, root in WORKSPACES.items()]
    for r in results:
        log.info(f"audit {r.workspace}: {'ok' if r.ok else 'FAILED'} ({', '.join(CHECKS)})")
    failed = [r for r in results if not r.ok]
    if failed:
        raise StageError(
            "dependency policy violated:\n" + "\n".join(f"[{r.workspace}]\n{r.report[-3000:]}" for r in failed),
            hint=f"replace the dependency, or extend {POLICY.relative_to(GUEST_DIR.parent)} "
            "if the licence is acceptable",
        )
    return results

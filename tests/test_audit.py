"""The dependency policy (cargo-deny: licences, bans, sources) holds for every Rust workspace, and the check
fails when the policy is narrower than what the dependencies use."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cargo_deny():
    from toolchain.measure.audit import audit_problem, ensure_cargo_deny

    if audit_problem():
        pytest.skip(audit_problem())
    ensure_cargo_deny()


def test_every_workspace_meets_the_policy(cargo_deny):
    from toolchain.measure.audit import WORKSPACES, audit_dependencies

    results = audit_dependencies()
    assert [r.workspace for r in results] == list(WORKSPACES) and all(r.ok for r in results)


def test_a_narrower_licence_policy_fails(cargo_deny, tmp_path):
    from toolchain.build.cargo import GUEST_DIR
    from toolchain.measure.audit import POLICY, deny_workspace

    policy = POLICY.read_text()
    start = policy.index("allow = [")
    narrow = policy[:start] + 'allow = ["MIT"]' + policy[policy.index("]", start) + 1 :]
    (tmp_path / "deny.toml").write_text(narrow)
    result = deny_workspace("guest", GUEST_DIR, tmp_path / "deny.toml")
    assert not result.ok and "rejected" in result.report, result.report[-1500:]

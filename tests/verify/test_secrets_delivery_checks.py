"""`verify`'s check secrets-delivery/<workload> against the emulator with the real clients
(the repository's desired state switched to `secrets_delivery: csi` by tests/csi_state.py):
after apply it passes with every other check; in the RBAC-enforcing world, one LangFuse key's
grant deleted and the web Deployment restarted, it fails naming ForbiddenByRbac and that
secret while the checks that have nothing to do with it still pass; a ServiceAccount annotated
with another client id fails it; `identity` alone (tool delivery) checks only the identity;
the repository's own desired state (tool, no identity) has no such check. No secret value
appears in any report."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import KEY_VAULT_NAME
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.resources.langfuse_manifests import secret_keys
from nsc_reconcile.verification import Status, VerifyReport
from tests.conftest import apply_state, verify_on
from tests.csi_state import NS, csi_overlay, identity_properties, rollout_restart

Ctl = Callable[..., Any]
CHECK = "secrets-delivery/langfuse"
ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
REVOKED = "langfuse-nextauth-secret"  # the grant deleted (read by web and worker)


def _applied(ctl: Ctl, clients: Clients, path: Path) -> DesiredState:
    ctl("POST", "config", {"lro_seconds": {"*": 0}, "principal_replication_seconds": 0})
    return apply_state(load_desired_state(path), clients, ctl)


@pytest.fixture
def csi_applied(ctl: Ctl, clients: Clients, tmp_path: Path) -> DesiredState:
    return _applied(ctl, clients, csi_overlay(tmp_path))


def _statuses(report: VerifyReport) -> dict[str, Status]:
    return {c.id: c.status for c in report.checks}


def _langfuse_values(emu: Emulator, state: DesiredState) -> list[str]:
    """The values the synced Secret holds (Key Vault's, kept in memory, never printed)."""
    assert state.langfuse is not None
    names = set(secret_keys(state.langfuse).values())
    return [str(emu.world.secrets.get(KEY_VAULT_NAME, name)["value"]) for name in names]


def _no_value_in(report: VerifyReport, emu: Emulator, state: DesiredState) -> None:
    shown = report.render() + json.dumps([c.__dict__ for c in report.checks], default=str)
    values = _langfuse_values(emu, state)
    assert len(values) == 9
    assert all(values)
    assert not [v for v in values if v in shown]


def test_after_apply_in_csi_mode_every_check_passes(
    csi_applied: DesiredState, emu: Emulator
) -> None:
    report = verify_on(csi_applied, emu)
    failed = {k: v for k, v in _statuses(report).items() if v is not Status.PASS}
    assert failed == {}, report.render()
    check = report.get(CHECK)
    client_id = identity_properties(emu)["clientId"]
    assert f"azure.workload.identity/client-id={client_id}" in check.evidence
    assert f"clientID={client_id} keyvaultName={KEY_VAULT_NAME}" in check.evidence
    assert f"{REVOKED}," in check.evidence  # one of the objects the class fetches
    assert "Secret langfuse/langfuse-secrets (synced by the CSI driver): 9 keys" in check.evidence
    assert "5/5 workloads mounting langfuse-key-vault ready" in check.evidence
    _no_value_in(report, emu, csi_applied)


def test_a_deleted_grant_and_a_restart_fail_the_check_naming_the_secret(
    csi_applied: DesiredState, emu: Emulator, ctl: Ctl, kube: k8s.ApiClient
) -> None:
    ctl("POST", "config", {"enforce_vault_rbac": True})
    rollout_restart(kube, "langfuse", "2025-01-01T00:00:00Z")  # every grant there: it mounts
    before = _statuses(verify_on(csi_applied, emu))
    assert before == dict.fromkeys(before, Status.PASS)
    principal = identity_properties(emu)["principalId"]
    grant = next(
        a
        for a in emu.world.list_by_type(ASSIGNMENTS)
        if a["properties"]["principalId"] == principal
        and a["properties"]["scope"].endswith(f"/secrets/{REVOKED}")
    )
    ctl("DELETE", "state?id=" + urllib.parse.quote(grant["id"], safe=""))
    rollout_restart(kube, "langfuse", "2025-01-02T00:00:00Z")  # new pods: the mount fails
    report = verify_on(csi_applied, emu)
    check = report.get(CHECK)
    assert check.status is Status.FAIL
    assert "Deployment langfuse: 0/1 ready" in check.detail
    assert "ForbiddenByRbac" in check.detail
    assert f"objectName:{REVOKED}" in check.detail
    assert "Available=False" in check.detail
    assert "langfuse-worker" not in check.detail  # mounted before the grant went
    # What the fault also breaks fails too; everything else still passes.
    statuses = _statuses(report)
    expected_fail = {
        CHECK,
        "langfuse-ready/langfuse",
        f"role_assignment/langfuse-reads-{REVOKED}",
        "plan-clean",
    }
    assert {k for k, v in statuses.items() if v is Status.FAIL} == expected_fail
    assert {k for k, v in statuses.items() if v is Status.PASS} == set(before) - expected_fail
    _no_value_in(report, emu, csi_applied)


def test_a_service_account_with_another_client_id_fails_the_check(
    csi_applied: DesiredState, emu: Emulator, kube: k8s.ApiClient
) -> None:
    other = "00000000-0000-4000-8000-0000000000aa"
    patch = {"metadata": {"annotations": {"azure.workload.identity/client-id": other}}}
    k8s.CoreV1Api(kube).patch_namespaced_service_account("langfuse", NS, patch)
    report = verify_on(csi_applied, emu)
    check = report.get(CHECK)
    assert check.status is Status.FAIL
    client_id = identity_properties(emu)["clientId"]
    assert (
        f"ServiceAccount langfuse/langfuse has azure.workload.identity/client-id={other}, "
        f"not the identity's client id {client_id}"
    ) in check.detail
    failed = {c.id for c in report.checks if c.status is Status.FAIL}
    assert failed == {CHECK, "plan-clean"}  # the plan shows the annotation to put back


def test_identity_alone_checks_the_identity_and_no_csi_part(
    emu: Emulator, ctl: Ctl, clients: Clients, tmp_path: Path
) -> None:
    state = _applied(ctl, clients, csi_overlay(tmp_path, csi=False))
    report = verify_on(state, emu)
    check = report.get(CHECK)
    assert check.status is Status.PASS, check.detail
    assert 'labelled azure.workload.identity/use="true"' in check.evidence
    assert "SecretProviderClass" not in check.evidence
    assert "(tool)" in check.title


@pytest.mark.usefixtures("desired_state")
def test_the_repository_state_has_no_delivery_check(
    desired_state: DesiredState, emu: Emulator
) -> None:
    # `secrets_delivery: tool`, no identity: nothing new (the gate's DEV-044 is left alone).
    report = verify_on(desired_state, emu)
    assert [c.id for c in report.checks if c.id.startswith("secrets-delivery/")] == []

"""The access and image checks of `verify` against the emulator with the real clients: after
applying an identity, its grants and two images (the repository's desired state plus these
additions, applied by target) every such check passes; an extra Owner on the vault for a
runtime consumer fails the vault's least-privilege check naming it; a deleted grant fails its
check (and the kubelet's AcrPull check) while the others still pass."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome
from nsc_reconcile.retry import RetryPolicy
from nsc_reconcile.verification import Status, VerifyReport
from tests.access_state import AGENT_ACCESS, without_consumers
from tests.conftest import verify_on

Ctl = Callable[..., Any]
FAST = RetryPolicy(attempts=5, initial_wait_s=0.05, max_wait_s=0.2)
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"  # the built-in Owner role's GUID
ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"

ADDITIONS = AGENT_ACCESS
# The images are the repository's own (`container_images` of desired_state.yaml).
GRANTS = ["agent-reads-secret-key", "agent-uses-openai", "kubelet-pulls"]
OURS = [
    "user_assigned_identity/id-agent-dev",
    "federated_identity_credential/id-agent-dev/fic-agent",
    *(f"role_assignment/{g}" for g in GRANTS),
    "container_image/langfuse-web",
    "container_image/valkey",
]
CHECKS = [
    *(f"role_assignment/{g}" for g in GRANTS),
    "acr-pull/nscacrdev",
    "vault-least-privilege/nsc-kv-dev",
    "container_image/langfuse-web",
    "container_image/valkey",
]


@pytest.fixture
def small(emu: Emulator, tmp_path: Path) -> DesiredState:
    """The additions applied (by target) from the baseline."""
    emu.world.images.clear()
    path = tmp_path / "desired_state.yaml"
    path.write_text(without_consumers() + ADDITIONS)
    state = load_desired_state(path)
    engine = Engine(state, Clients(AzureTarget.for_emulator(emu.info["arm"])), retry=FAST)
    result = engine.apply(engine.plan(targets=OURS))
    created = {r.address: r.outcome for r in result.resources if r.address in OURS}
    assert created == dict.fromkeys(OURS, Outcome.CREATED), result.resources
    return state


def _ours(report: VerifyReport) -> dict[str, Status]:
    return {c.id: c.status for c in report.checks if c.id in CHECKS}


def _assignments(emu: Emulator) -> list[dict[str, Any]]:
    return list(emu.world.list_by_type(ASSIGNMENTS))


def _principal(emu: Emulator) -> str:
    for identity in emu.world.list_by_type("Microsoft.ManagedIdentity/userAssignedIdentities"):
        if identity["name"] == "id-agent-dev":
            return str(identity["properties"]["principalId"])
    raise AssertionError("id-agent-dev was not created")


def test_after_apply_every_access_and_image_check_passes(
    small: DesiredState, emu: Emulator
) -> None:
    report = verify_on(small, emu)
    assert _ours(report) == dict.fromkeys(CHECKS, Status.PASS), report.render()
    vault = report.get("vault-least-privilege/nsc-kv-dev")
    assert "user_assigned_identity/id-agent-dev" in vault.evidence
    assert "kubelet of aks_cluster/nsc-aks-dev" in vault.evidence


def test_an_extra_owner_on_the_vault_for_a_consumer_fails_naming_it(
    small: DesiredState, emu: Emulator, ctl: Ctl
) -> None:
    vault = next(
        v for v in emu.world.list_by_type("Microsoft.KeyVault/vaults") if v["name"] == "nsc-kv-dev"
    )
    sub = vault["id"].split("/")[2]
    extra = f"{vault['id']}/providers/{ASSIGNMENTS}/3f1c2d4e-0000-4000-8000-000000000001"
    ctl(
        "PUT",
        "state?id=" + urllib.parse.quote(extra, safe=""),
        {
            "properties": {
                "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
                f"roleDefinitions/{OWNER}",
                "principalId": _principal(emu),
                "principalType": "ServicePrincipal",
                "scope": vault["id"],
            }
        },
    )
    report = verify_on(small, emu)
    failed = report.get("vault-least-privilege/nsc-kv-dev")
    assert failed.status is Status.FAIL
    assert "user_assigned_identity/id-agent-dev holds Owner at" in failed.detail
    assert "nsc-kv-dev" in failed.detail
    others = {k: v for k, v in _ours(report).items() if k != "vault-least-privilege/nsc-kv-dev"}
    assert others == dict.fromkeys(others, Status.PASS)


def test_a_deleted_grant_fails_its_check_and_the_others_pass(
    small: DesiredState, emu: Emulator, ctl: Ctl
) -> None:
    kubelet = next(
        a for a in _assignments(emu) if a["properties"]["scope"].lower().endswith("/nscacrdev")
    )
    ctl("DELETE", "state?id=" + urllib.parse.quote(kubelet["id"], safe=""))
    report = verify_on(small, emu)
    statuses = _ours(report)
    assert statuses.pop("role_assignment/kubelet-pulls") is Status.FAIL
    assert statuses.pop("acr-pull/nscacrdev") is Status.FAIL
    assert statuses == dict.fromkeys(statuses, Status.PASS), report.render()
    assert "kubelet of aks_cluster/nsc-aks-dev" in report.get("acr-pull/nscacrdev").detail

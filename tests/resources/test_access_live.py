"""Access kinds end to end with the real SDK clients (azure-mgmt-msi, azure-mgmt-authorization)
against the emulator: an identity with its federated credential (issuer from the cluster) and
role assignments on a secret, the vault, the registry (the kubelet) and the OpenAI account;
reruns write nothing; a PrincipalNotFound storm converges; an equal assignment of another name
counts as present; the least-privilege policy refuses management roles for runtime consumers.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile import DesiredStateError, load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome
from nsc_reconcile.retry import RetryPolicy
from tests.access_state import AGENT_ACCESS, without_consumers

Ctl = Callable[..., Any]
FAST = RetryPolicy(attempts=5, initial_wait_s=0.05, max_wait_s=0.2)
WRITES = ("PUT", "PATCH", "DELETE", "POST")
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
DEPLOYER = "0b9c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"  # a CI service principal of the directory

ACCESS = (
    AGENT_ACCESS
    + """\
  - name: ci-writes-secrets
    principal: {object_id: 0b9c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3, principal_type: ServicePrincipal}
    consumer: deployer
    scope: key_vault/nsc-kv-${env}
    role: Key Vault Secrets Officer
"""
)
IDENTITY = "user_assigned_identity/id-agent-dev"
CREDENTIAL = "federated_identity_credential/id-agent-dev/fic-agent"
GRANTS = [
    "role_assignment/agent-reads-secret-key",
    "role_assignment/agent-uses-openai",
    "role_assignment/kubelet-pulls",
    "role_assignment/ci-writes-secrets",
]
OURS = [IDENTITY, CREDENTIAL, *GRANTS]


def _state(tmp_path: Path, extra: str = ACCESS) -> DesiredState:
    path = tmp_path / "desired_state.yaml"
    path.write_text(without_consumers() + extra)
    return load_desired_state(path)


def _engine(emu: Emulator, state: DesiredState) -> Engine:
    return Engine(state, Clients(AzureTarget.for_emulator(emu.info["arm"])), retry=FAST)


def _writes(ctl: Ctl) -> list[tuple[str, str]]:
    return [(e["method"], e["path"]) for e in ctl("GET", "requests") if e["method"] in WRITES]


def _stored(ctl: Ctl, arm_id: str) -> dict[str, Any]:
    found: dict[str, Any] = ctl("GET", "state?id=" + urllib.parse.quote(arm_id, safe=""))
    return found


def _assignments(emu: Emulator) -> list[dict[str, Any]]:
    return list(emu.world.list_by_type("Microsoft.Authorization/roleAssignments"))


@pytest.fixture
def deployer(ctl: Ctl) -> None:
    ctl("POST", "config", {"directory_principals": {DEPLOYER: "ServicePrincipal"}})


@pytest.mark.usefixtures("deployer")
def test_plan_apply_then_rerun_makes_zero_writes(emu: Emulator, ctl: Ctl, tmp_path: Path) -> None:
    engine = _engine(emu, _state(tmp_path))
    plan = engine.plan(targets=OURS)
    actions = {r.address: r.action for r in plan.resources if r.address in OURS}
    assert actions == dict.fromkeys(OURS, Action.CREATE)
    result = engine.apply(plan)
    outcomes = {r.address: r.outcome for r in result.resources if r.address in OURS}
    assert outcomes == dict.fromkeys(OURS, Outcome.CREATED), result.resources

    identity = _stored(ctl, f"{engine.context.rg_id()}/providers/Microsoft.ManagedIdentity/"
                            "userAssignedIdentities/id-agent-dev")  # fmt: skip
    principal = identity["properties"]["principalId"]
    cluster = emu.world.get(
        f"{engine.context.rg_id()}/providers/Microsoft.ContainerService/managedClusters/nsc-aks-dev"
    )
    assert cluster is not None
    credential = _stored(ctl, f"{identity['id']}/federatedIdentityCredentials/fic-agent")
    assert credential["properties"] == {
        "issuer": cluster["properties"]["oidcIssuerProfile"]["issuerURL"],
        "subject": "system:serviceaccount:agents:agent",
        "audiences": ["api://AzureADTokenExchange"],
    }
    granted = {
        (a["properties"]["scope"].rsplit("/", 2)[-1], a["properties"]["principalId"])
        for a in _assignments(emu)
    }
    kubelet = cluster["properties"]["identityProfile"]["kubeletidentity"]["objectId"]
    assert granted >= {
        ("langfuse-secret-key", principal),
        ("nsc-aoai-dev", principal),
        ("nscacrdev", kubelet),
        ("nsc-kv-dev", DEPLOYER),
    }
    assert all(a["properties"]["principalType"] == "ServicePrincipal" for a in _assignments(emu))

    ctl("DELETE", "requests")
    again = _engine(emu, _state(tmp_path))
    rerun = again.plan(targets=OURS)
    assert {r.address: r.action for r in rerun.resources if r.address in OURS} == dict.fromkeys(
        OURS, Action.UNCHANGED
    )
    again.apply(rerun)
    assert _writes(ctl) == []


@pytest.mark.usefixtures("deployer")
def test_principal_not_found_storm_converges(emu: Emulator, ctl: Ctl, tmp_path: Path) -> None:
    ctl("POST", "config", {"principal_replication_seconds": 1.5})
    ctl(
        "POST",
        "faults",
        {"method": "PUT", "path": "/roleAssignments/", "status": 400, "code": "PrincipalNotFound",
         "message": "Principal does not exist in the directory (replication delay).", "count": 3},
    )  # fmt: skip
    engine = _engine(emu, _state(tmp_path))
    result = engine.apply(engine.plan(targets=["role_assignment/agent-reads-secret-key"]))
    outcomes = {r.address: r.outcome for r in result.resources if r.address in OURS}
    assert outcomes[IDENTITY] is Outcome.CREATED
    assert outcomes["role_assignment/agent-reads-secret-key"] is Outcome.CREATED, result.resources
    refused = [
        e for e in ctl("GET", "requests") if e["method"] == "PUT" and e["status"] == 400
        and "roleAssignments" in e["path"]
    ]  # fmt: skip
    assert len(refused) == 3
    # The secret's grant, and the deployer's on the vault (the secret is written after it).
    scopes = sorted(a["properties"]["scope"].rsplit("/", 1)[-1] for a in _assignments(emu))
    assert scopes == ["langfuse-secret-key", "nsc-kv-dev"]


def test_principal_not_found_is_not_retried_for_other_kinds() -> None:
    from azure.core.exceptions import HttpResponseError

    from nsc_reconcile.retry import is_transient

    error = HttpResponseError(message="PrincipalNotFound")
    error.error = type("E", (), {"code": "PrincipalNotFound", "message": ""})()
    assert is_transient(error, "role_assignment")
    assert not is_transient(error, "user_assigned_identity")


@pytest.mark.usefixtures("deployer")
def test_equal_assignment_of_another_name_counts_as_present(
    emu: Emulator, ctl: Ctl, clients: Clients, tmp_path: Path
) -> None:
    state = _state(tmp_path)
    vault = f"/subscriptions/{clients.target.subscription_id}/resourceGroups/{state.resource_group}"
    vault += "/providers/Microsoft.KeyVault/vaults/nsc-kv-dev"
    role = (
        f"/subscriptions/{clients.target.subscription_id}/providers/"
        f"Microsoft.Authorization/roleDefinitions/b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
    )
    operations = clients.authorization.role_assignments
    made = operations.create(
        vault,
        "11111111-2222-4333-8444-555555555555",  # someone else's name for the same grant
        operations.models.RoleAssignmentCreateParameters(
            role_definition_id=role, principal_id=DEPLOYER, principal_type="ServicePrincipal"
        ),
    )
    ctl("DELETE", "requests")
    engine = _engine(emu, state)
    plan = engine.plan(targets=["role_assignment/ci-writes-secrets"])
    [planned] = [r for r in plan.resources if r.address == "role_assignment/ci-writes-secrets"]
    assert planned.action is Action.UNCHANGED
    result = engine.apply(plan)
    [applied] = [r for r in result.resources if r.address == "role_assignment/ci-writes-secrets"]
    assert applied.outcome is Outcome.UNCHANGED
    assert _writes(ctl) == []
    assert [a["name"] for a in _assignments(emu)] == [made.name]


@pytest.mark.usefixtures("deployer")
def test_vault_with_access_policies_blocks_grants_on_it(
    emu: Emulator, ctl: Ctl, tmp_path: Path
) -> None:
    state = _state(tmp_path)
    vault_id = (
        f"/subscriptions/{emu.world.subscription_id}/resourceGroups/{state.resource_group}"
        "/providers/Microsoft.KeyVault/vaults/nsc-kv-dev"
    )
    vault = _stored(ctl, vault_id)
    vault["properties"]["enableRbacAuthorization"] = False
    ctl("PUT", "state?id=" + urllib.parse.quote(vault_id, safe=""), vault)
    secret = "key_vault_secret/agent-execute-mode"
    plan = _engine(emu, state).plan(
        targets=["role_assignment/ci-writes-secrets", GRANTS[2], secret]
    )
    actions = {r.address: r for r in plan.resources}
    planned = actions["role_assignment/ci-writes-secrets"]
    assert planned.action is Action.BLOCKED
    assert "key_vault/nsc-kv-dev uses access policies" in (planned.reason or "")
    assert "least privilege" in (planned.reason or "")
    assert actions[GRANTS[2]].action is Action.CREATE  # the registry's grant is not affected
    # A secret only waits for the deployer's grant: the access policies let it be written.
    assert actions[secret].action is Action.CREATE, actions[secret].reason


ROLE_CASES = [
    ("Contributor", "container_registry/nscacr${env}"),
    ("Owner", "resource_group"),
    ("User Access Administrator", "openai_account/nsc-aoai-${env}"),
    ("Key Vault Secrets Officer", "key_vault/nsc-kv-${env}"),
]


@pytest.mark.parametrize(("role", "scope"), ROLE_CASES, ids=[r for r, _ in ROLE_CASES])
def test_runtime_consumer_with_a_broad_role_is_a_policy_error(
    tmp_path: Path, role: str, scope: str
) -> None:
    extra = (
        "role_assignments:\n  - name: too-broad\n    principal: {aks_kubelet: nsc-aks-dev}\n"
        f"    scope: {scope}\n    role: {role}\n"
    )
    with pytest.raises(DesiredStateError) as raised:
        _state(tmp_path, extra)
    text = str(raised.value)
    assert "role_assignments[0].role" in text
    assert "least privilege" in text
    assert role in text


def test_deployer_may_hold_secrets_officer_on_the_vault(tmp_path: Path) -> None:
    extra = (
        "role_assignments:\n  - name: ci\n    principal: {object_id: "
        f"{DEPLOYER}, principal_type: ServicePrincipal}}\n    consumer: deployer\n"
        "    scope: key_vault/nsc-kv-${env}\n    role: Key Vault Secrets Officer\n"
    )
    state = _state(tmp_path, extra)
    assert [r.address for r in state.role_assignments] == ["role_assignment/ci"]

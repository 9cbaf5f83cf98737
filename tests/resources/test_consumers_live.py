"""The consumers of desired_state.yaml (seed §9: AKS / Databricks / CI secret access split by
least-privilege RBAC) against the emulator with the real clients, in the RBAC-enforcing world:
the whole file applies (the caller's Secrets Officer first), every access check passes, a rerun
writes nothing; the agent identity reads the keys it is granted and nothing else; a deleted
grant is refused; a 403 ForbiddenByRbac right after the grant is retried; the principal forms
`caller: true` and `application_id` resolve (token claims, Microsoft Graph); PrincipalNotFound
storms converge with them; the policy refuses a runtime Contributor through the CLI.
"""

# mypy: disable-error-code="call-overload"

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient

import nsc_reconcile
from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients, StaticTokenCredential
from nsc_reconcile.changes import Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.graph import service_principal_id
from nsc_reconcile.emulator.kinds.authorization import CALLER_OBJECT_ID
from nsc_reconcile.emulator.worlds import KEY_VAULT_NAME
from nsc_reconcile.engine import Engine
from nsc_reconcile.graph import build_graph
from nsc_reconcile.model.access import AZURE_DATABRICKS_APP_ID
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome
from nsc_reconcile.resources.directory import principal_type_of
from nsc_reconcile.retry import RetryPolicy
from nsc_reconcile.verification import Status
from tests.access_state import without_consumers
from tests.conftest import apply_state, run_cli, verify_on, write_requests
from tests.paths import DESIRED_STATE

Ctl = Callable[..., Any]
ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
AGENT_KEYS = [
    "azure-openai-endpoint",
    "azure-openai-deployment",
    "azure-openai-api-key",
    "langfuse-public-key",
    "langfuse-secret-key",
    "log-analytics-dcr-id",
    "agent-execute-mode",
    "databricks-agent-token",
]
DATABRICKS_KEYS = AGENT_KEYS[:5]
CI_APP = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"  # a CI service principal's object id


def token_for(claims: dict[str, Any]) -> str:
    """An unsigned JWT with ``claims``, as an Entra ID access token carries them."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


@pytest.fixture
def rbac_world(ctl: Ctl) -> None:
    ctl("POST", "config", {"enforce_vault_rbac": True})


@pytest.fixture
def vault_as(emu: Emulator) -> Callable[[str], SecretClient]:
    """``vault_as(object_id)``: a SecretClient for the vault as that principal."""

    def build(object_id: str) -> SecretClient:
        return SecretClient(
            vault_url=emu.world.secrets.vault_url(KEY_VAULT_NAME),
            credential=StaticTokenCredential(token_for({"oid": object_id})),
            connection_verify=emu.info["ca_cert"],
            verify_challenge_resource=False,
        )

    return build


def _assignments(emu: Emulator) -> list[dict[str, Any]]:
    return list(emu.world.list_by_type(ASSIGNMENTS))


def _granted(emu: Emulator, principal: str) -> dict[str, str]:
    """Scope name (the last segment) -> principal type, of ``principal``'s assignments."""
    return {
        a["properties"]["scope"].rsplit("/", 1)[-1]: a["properties"]["principalType"]
        for a in _assignments(emu)
        if a["properties"]["principalId"].lower() == principal.lower()
    }


def _agent(emu: Emulator) -> str:
    for identity in emu.world.list_by_type("Microsoft.ManagedIdentity/userAssignedIdentities"):
        if identity["name"] == "id-nsc-agent-dev":
            return str(identity["properties"]["principalId"])
    raise AssertionError("id-nsc-agent-dev was not created")


def _refused(call: Callable[[], Any]) -> str:
    """The inner code of Key Vault's 403 for ``call`` (which must be refused)."""
    with pytest.raises(HttpResponseError) as raised:
        call()
    assert raised.value.status_code == 403
    assert raised.value.response is not None
    return str(json.loads(raised.value.response.text())["error"]["innererror"]["code"])


@pytest.mark.usefixtures("rbac_world")
def test_the_whole_file_applies_with_every_grant_verifies_and_reruns_without_writes(
    desired_state: DesiredState, clients: Clients, emu: Emulator, ctl: Ctl
) -> None:
    apply_state(desired_state, clients, ctl)
    # CI / deployer: the caller (the emulator's signed-in user) on the vault, as a User.
    assert _granted(emu, CALLER_OBJECT_ID) == {"nsc-kv-dev": "User"}
    # Databricks: the AzureDatabricks service principal of the tenant, as Graph names it.
    databricks = service_principal_id(AZURE_DATABRICKS_APP_ID)
    assert _granted(emu, databricks) == dict.fromkeys(DATABRICKS_KEYS, "ServicePrincipal")
    agent = _granted(emu, _agent(emu))
    assert sorted(agent) == sorted([*AGENT_KEYS, "nsc-aoai-dev", "nsc-dcr-agent-events-dev"])
    assert len(_assignments(emu)) == 17

    report = verify_on(desired_state, emu)
    access = {c.id: c.status for c in report.checks if c.id.startswith(("role_assignment/",
              "acr-pull/", "vault-least-privilege/"))}  # fmt: skip
    assert len(access) == 19
    assert access == dict.fromkeys(access, Status.PASS), report.render()
    least = report.get("vault-least-privilege/nsc-kv-dev").evidence
    assert f"application {AZURE_DATABRICKS_APP_ID} (AzureDatabricks)" in least

    ctl("DELETE", "requests")
    again = Clients(AzureTarget.for_emulator(emu.info["arm"]))
    rerun = nsc_reconcile.plan(desired_state, again)
    assert [r.address for r in rerun.resources if r.action not in (Action.UNCHANGED,
            Action.READ)] == []  # fmt: skip
    nsc_reconcile.apply(rerun, desired_state, again)
    assert write_requests(ctl) == []


@pytest.mark.usefixtures("rbac_world")
def test_a_consumer_reads_what_it_is_granted_and_nothing_else(
    desired_state: DesiredState,
    clients: Clients,
    emu: Emulator,
    ctl: Ctl,
    vault_as: Callable[[str], SecretClient],
) -> None:
    apply_state(desired_state, clients, ctl)
    agent = vault_as(_agent(emu))
    assert agent.get_secret("agent-execute-mode").value == "dry-run"
    assert agent.get_secret("azure-openai-endpoint").value
    assert _refused(lambda: agent.get_secret("langfuse-pg-admin-password")) == "ForbiddenByRbac"
    databricks = vault_as(service_principal_id(AZURE_DATABRICKS_APP_ID))
    assert databricks.get_secret("langfuse-secret-key").value
    assert _refused(lambda: databricks.get_secret("agent-execute-mode")) == "ForbiddenByRbac"

    grant = next(
        a for a in _assignments(emu)
        if a["properties"]["scope"].endswith("/secrets/agent-execute-mode")
        and a["properties"]["principalId"] == _agent(emu)
    )  # fmt: skip
    ctl("DELETE", "state?id=" + urllib.parse.quote(grant["id"], safe=""))
    assert _refused(lambda: agent.get_secret("agent-execute-mode")) == "ForbiddenByRbac"
    assert agent.get_secret("azure-openai-endpoint").value  # its other grants still hold
    report = verify_on(desired_state, emu)
    assert report.get("role_assignment/agent-reads-agent-execute-mode").status is Status.FAIL


@pytest.mark.usefixtures("rbac_world")
def test_forbidden_by_rbac_right_after_the_grant_is_retried(
    desired_state: DesiredState, clients: Clients, ctl: Ctl
) -> None:
    ctl(
        "POST",
        "faults",
        {"method": "PUT", "path": "/secrets/agent-execute-mode$", "status": 403,
         "code": "Forbidden", "inner_code": "ForbiddenByRbac", "count": 2,
         "message": "Caller is not authorized to perform action on resource. If role "
                    "assignments were changed recently, please observe propagation time."},
    )  # fmt: skip
    target = "key_vault_secret/agent-execute-mode"
    plan = nsc_reconcile.plan(desired_state, clients, targets=[target])
    result = nsc_reconcile.apply(plan, desired_state, clients)
    outcomes = {r.address: r.outcome for r in result.resources}
    assert outcomes[target] is Outcome.CREATED, result.render()
    assert outcomes["role_assignment/deployer-writes-secrets"] is Outcome.CREATED
    log = [(e["method"], e["path"], e["status"]) for e in ctl("GET", "requests")]
    grant = next(i for i, e in enumerate(log) if e[0] == "PUT" and ASSIGNMENTS in e[1])
    puts = [i for i, e in enumerate(log) if e[0] == "PUT" and e[1].endswith("/agent-execute-mode")]
    assert [log[i][2] for i in puts] == [403, 403, 200]
    assert grant < puts[0]  # the deployer's grant came first


PATIENT = RetryPolicy(attempts=3, initial_wait_s=0.02, max_wait_s=0.05, patience_s=30.0)


def _propagating(secret: str) -> dict[str, Any]:
    """Six refusals of ``secret``'s write, as Key Vault answers while a grant propagates."""
    return {
        "method": "PUT", "path": f"/secrets/{secret}$", "status": 403, "code": "Forbidden",
        "inner_code": "ForbiddenByRbac", "count": 6,
        "message": "Caller is not authorized to perform action on resource. If role "
                   "assignments were changed recently, please observe propagation time.",
    }  # fmt: skip


def test_forbidden_by_rbac_outlasts_the_attempts_only_right_after_this_apply_granted(
    desired_state: DesiredState, clients: Clients, ctl: Ctl
) -> None:
    """Six refusals (more than the policy's 3 attempts) are waited out while the grant the
    secret follows was written by this apply (propagation); when the grant was already there,
    the access is really missing and the write fails after its attempts."""
    mode, salt = "key_vault_secret/agent-execute-mode", "key_vault_secret/langfuse-salt"
    ctl("POST", "faults", _propagating("agent-execute-mode"))
    engine = Engine(desired_state, clients, retry=PATIENT)
    first = engine.apply(engine.plan(targets=[mode]))
    outcomes = {r.address: r.outcome for r in first.resources}
    assert outcomes["role_assignment/deployer-writes-secrets"] is Outcome.CREATED
    assert outcomes[mode] is Outcome.CREATED, first.render()

    ctl("POST", "faults", _propagating("langfuse-salt"))
    engine = Engine(desired_state, clients, retry=PATIENT)
    second = engine.apply(engine.plan(targets=[salt]))
    outcomes = {r.address: r.outcome for r in second.resources}
    assert outcomes["role_assignment/deployer-writes-secrets"] is Outcome.UNCHANGED
    assert outcomes[salt] is Outcome.FAILED, second.render()
    assert "ForbiddenByRbac" in (second.get(salt).detail or "")
    refused = [
        e for e in ctl("GET", "requests")
        if e["method"] == "PUT" and e["path"].endswith("/langfuse-salt")
    ]  # fmt: skip
    assert len(refused) == PATIENT.attempts


def test_every_secret_is_written_after_the_deployers_grant() -> None:
    state = load_desired_state(DESIRED_STATE)
    graph, issues = build_graph(state)
    assert issues == []
    order = graph.order()
    grant = order.index("role_assignment/deployer-writes-secrets")
    secrets = [i for i, a in enumerate(order) if a.startswith("key_vault_secret/")]
    assert len(secrets) == 15
    assert min(secrets) > grant
    # The runtime grants on one secret come after that secret.
    assert order.index("role_assignment/agent-reads-agent-execute-mode") > order.index(
        "key_vault_secret/agent-execute-mode"
    )


@pytest.mark.usefixtures("rbac_world")
def test_principal_not_found_storm_converges_with_every_principal_form(
    desired_state: DesiredState, clients: Clients, ctl: Ctl, emu: Emulator
) -> None:
    ctl("POST", "config", {"principal_replication_seconds": 1.0})
    ctl(
        "POST",
        "faults",
        {"method": "PUT", "path": "/roleAssignments/", "status": 400, "code": "PrincipalNotFound",
         "message": "Principal does not exist in the directory (replication delay).", "count": 4},
    )  # fmt: skip
    apply_state(desired_state, clients, ctl)
    assert len(_assignments(emu)) == 17


def _state_with(tmp_path: Path, grants: str) -> DesiredState:
    path = tmp_path / "desired_state.yaml"
    path.write_text(without_consumers() + "role_assignments:\n" + grants)
    return load_desired_state(path)


def test_the_caller_is_read_from_its_token(emu: Emulator, ctl: Ctl, tmp_path: Path) -> None:
    ctl("POST", "config", {"directory_principals": {CI_APP: "ServicePrincipal"}})
    state = _state_with(
        tmp_path,
        "  - {name: ci, principal: {caller: true}, consumer: deployer, "
        "scope: resource_group, role: Reader}\n",
    )
    target = AzureTarget.for_emulator(emu.info["arm"])
    target.credential = StaticTokenCredential(token_for({"oid": CI_APP.upper(), "idtyp": "app"}))
    clients = Clients(target)
    result = nsc_reconcile.apply(nsc_reconcile.plan(state, clients), state, clients)
    assert {r.address: r.outcome for r in result.resources}["role_assignment/ci"] is (
        Outcome.CREATED
    )
    assert _granted(emu, CI_APP) == {"2dt-final-team4": "ServicePrincipal"}


def test_principal_type_from_token_claims() -> None:
    assert principal_type_of({"oid": "x", "idtyp": "app"}) == "ServicePrincipal"
    assert principal_type_of({"oid": "x", "idtyp": "user"}) == "User"
    assert principal_type_of({"oid": "x", "scp": "user_impersonation"}) == "User"
    assert principal_type_of({"oid": "x", "roles": ["a"]}) == "ServicePrincipal"


def test_an_unknown_application_is_a_clear_error(
    emu: Emulator, clients: Clients, tmp_path: Path
) -> None:
    unknown = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    state = _state_with(
        tmp_path,
        f"  - {{name: app, principal: {{application_id: {unknown}}}, "
        "scope: container_registry/nscacrdev, role: AcrPull}\n",
    )
    plan = nsc_reconcile.plan(state, clients, targets=["role_assignment/app"])
    [planned] = [r for r in plan.resources if r.address == "role_assignment/app"]
    text = f"{planned.action} {planned.reason} {plan.render()}"
    assert f"application {unknown} has no service principal in this tenant" in text
    assert "Request_ResourceNotFound" in text
    assert _assignments(emu) == []


def test_the_caller_must_be_a_deployer(tmp_path: Path) -> None:
    with pytest.raises(nsc_reconcile.DesiredStateError) as raised:
        _state_with(
            tmp_path,
            "  - {name: ci, principal: {caller: true}, scope: key_vault/nsc-kv-dev, "
            "role: Key Vault Secrets User}\n",
        )
    assert "least privilege" in str(raised.value)
    assert "consumer: deployer" in str(raised.value)


def test_a_runtime_contributor_fails_validate_naming_the_principle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DESIRED_STATE.read_text().replace(
        "    scope: container_registry/nscacr${env}\n    role: AcrPull\n",
        "    scope: container_registry/nscacr${env}\n    role: Contributor\n",
    )
    path = tmp_path / "desired_state.yaml"
    path.write_text(text)
    line = text.splitlines().index("    role: Contributor") + 1
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert f"desired_state.yaml:{line}:" in err
    assert "role_assignments[1].role" in err
    assert "least privilege" in err
    assert "'Contributor'" in err


def test_a_runs_clients_are_freed_after_a_directory_lookup(emu: Emulator, ctl: Ctl) -> None:
    """The directory's answers are kept per Clients, weakly: once a run drops its Clients
    (and their open connections), nothing of the lookup cache keeps them alive."""
    import gc
    import weakref

    from nsc_reconcile.model.access import Principal
    from nsc_reconcile.resources.directory import directory_of

    ctl("POST", "config", {"directory_principals": {CI_APP: "ServicePrincipal"}})
    target = AzureTarget.for_emulator(emu.info["arm"])
    target.credential = StaticTokenCredential(token_for({"oid": CI_APP, "idtyp": "app"}))
    clients = Clients(target)
    found = directory_of(clients).resolve(Principal(caller=True))
    assert found == (CI_APP.lower(), "ServicePrincipal")
    gone = weakref.ref(clients)
    del clients
    gc.collect()
    assert gone() is None

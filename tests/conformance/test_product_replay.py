"""The product's reconcilers meet real Azure behaviour: the SDK answers for the resources under
test come from recorded real sessions (transport.py), in the recorded order, while the rest of
the world is the emulator. Each test names the behaviour the product must cope with."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome
from nsc_reconcile.resources import reconciler_for
from nsc_reconcile.retry import RetryPolicy
from tests.conformance.replay import Recording, load_recordings
from tests.conformance.transport import Binding, ReplayTransport, bind
from tests.paths import DESIRED_STATE

RECORDINGS = {r.name: r for r in load_recordings()}
FAST = RetryPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.05)
SUB = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups"

PG_SERVER = "postgresql_server/nsc-pg-langfuse-dev"
PE_PG = "private_endpoint/nsc-pe-pg-langfuse"
ACCOUNT = "openai_account/nsc-aoai-dev"
DEPLOYMENT = "openai_deployment/nsc-aoai-dev/gpt-4o-mini"
VAULT = "key_vault/nsc-kv-dev"
MODE = "key_vault_secret/agent-execute-mode"


@pytest.fixture
def state() -> DesiredState:
    return load_desired_state(DESIRED_STATE)


def recorded(name: str, path: str) -> tuple[Recording, str]:
    return RECORDINGS[name], SUB + path


def product_id(state: DesiredState, clients: Clients, address: str) -> str:
    engine = Engine(state, clients)
    resource = engine.graph.nodes[address]
    return reconciler_for(resource).resource_id(engine.context, resource)


def replaying(emu: Emulator, bindings: list[Binding]) -> tuple[Clients, ReplayTransport]:
    target = AzureTarget.for_emulator(emu.info["arm"])
    transport = ReplayTransport(
        RequestsTransport(use_env_settings=False, connection_verify=target.ca_cert),
        target.subscription_id,
        bindings,
    )
    return Clients(dataclasses.replace(target, transport=transport)), transport


def served(transport: ReplayTransport, source: str) -> list[tuple[str, str, int, str, int]]:
    return [entry for entry in transport.log if entry[3].startswith(source)]


def test_postgres_server_then_endpoint_then_zone_group(
    emu: Emulator, clients: Clients, state: DesiredState
) -> None:
    """Recorded: the server's PUT is a 202 whose body names an operation (not the server);
    the endpoint's 201 says Updating with ``customDnsConfigs: []`` and "Auto Approved", filled
    only once its Azure-AsyncOperation says Succeeded; the zone group is another long-running
    write. The product must wait for each and take the endpoint's IP from the settled read."""
    pg, pg_id = recorded(
        "Test_DBForPostgreSQL_FlexibleServer_20240801_CRUD",
        "/asotest-rg-shfomn/providers/Microsoft.DBforPostgreSQL/flexibleServers/"
        "asotest-postgresql-wryjaf",
    )
    pe, pe_id = recorded(
        "Test_Networking_PrivateEndpoint_CRUD",
        "/asotest-rg-alyiii/providers/Microsoft.Network/privateEndpoints/asotest-endpoint-huimyw",
    )
    endpoint = product_id(state, clients, PE_PG)
    zone_group = state.private_endpoints[1].dns_zone_group
    assert zone_group is not None
    bindings = [
        bind(pg, pg_id, product_id(state, clients, PG_SERVER)),
        bind(pe, pe_id, endpoint),
        bind(
            pe,
            pe_id + "/privateDnsZoneGroups/asotest-dnszonegroup-ctaubs",
            f"{endpoint}/privateDnsZoneGroups/{zone_group.name}",
        ),
    ]
    replay_clients, transport = replaying(emu, bindings)
    engine = Engine(state, replay_clients, retry=FAST)
    result = engine.apply(engine.plan([PE_PG]))
    assert result.ok, result.render()
    assert result.get(PG_SERVER).outcome is Outcome.CREATED
    assert result.get(PE_PG).outcome is Outcome.CREATED
    # Every recorded answer of the three creates was served, polls included, in order.
    for binding in bindings:
        writes = [n for method, n in binding.served if method == "PUT"]
        assert writes, f"{binding.product_id}: the recorded create was never served"
        assert binding.served[-1][0] == "GET", "the product read the settled resource last"
    polls = served(transport, "recorded poll")
    assert len(polls) >= 4, transport.log
    # The IP comes from the settled endpoint (recorded customDnsConfigs), not the 201's [].
    assert engine.context.output(PE_PG, "private_ip") == "10.0.0.4"


def test_openai_account_then_deployment(
    emu: Emulator, clients: Clients, state: DesiredState
) -> None:
    """Recorded: the account's create is 201 "Creating" with Azure-AsyncOperation only, and
    its operation reports "Creating" (not InProgress) until Succeeded; a deployment's create
    is a synchronous 201 that already says Succeeded."""
    cognitive = RECORDINGS["Test_CognitiveServices_Account_20250601_CRUD"]
    account_path = (
        SUB + "/asotest-rg-hdctow/providers/Microsoft.CognitiveServices/accounts/"
        "asotestcogsvcacczytcvb"
    )
    bindings = [
        bind(cognitive, account_path, product_id(state, clients, ACCOUNT)),
        bind(
            cognitive,
            account_path + "/deployments/asotestcogsvcdephvibss",
            product_id(state, clients, DEPLOYMENT),
        ),
    ]
    replay_clients, transport = replaying(emu, bindings)
    engine = Engine(state, replay_clients, retry=FAST)
    result = engine.apply(engine.plan([DEPLOYMENT]))
    assert result.ok, result.render()
    assert result.get(ACCOUNT).outcome is Outcome.CREATED
    assert result.get(DEPLOYMENT).outcome is Outcome.CREATED
    statuses = [entry[2] for entry in served(transport, "recorded poll")]
    assert statuses, "the account's recorded operation was polled"
    account_reads = [n for method, n in bindings[0].served if method == "GET"]
    assert account_reads, "the product read the account after its create settled"


def test_secret_write_waits_for_a_vault_still_registering_dns(
    emu: Emulator, clients: Clients, state: DesiredState, ctl: Any
) -> None:
    """Recorded: a vault's create answers at once with provisioningState RegisteringDns and a
    later GET says Succeeded; secret writes before that can fail. Apply must wait for the
    vault to settle before writing its secrets."""
    vault_rec = RECORDINGS["Test_KeyVault_Vault_CRUD"]
    vault_path = (
        SUB + "/asotest-rg-mftgkw/providers/Microsoft.KeyVault/vaults/asotest-keyvault-ngmgjs"
    )
    plan = Engine(state, clients, retry=FAST).plan([MODE])  # planned before: the vault is fine
    binding = bind(vault_rec, vault_path, product_id(state, clients, VAULT))
    created = next(e.n for e in binding.exchanges if e.method == "PUT")
    binding.last_n = created  # the vault was just created: its next reads are the recorded ones
    replay_clients, transport = replaying(emu, [binding])
    ctl("DELETE", "requests")
    result = Engine(state, replay_clients, retry=FAST).apply(plan)
    # The recorded vault uses access policies (no enableRbacAuthorization): the deployer's
    # grant is blocked saying so, and the secret, which only waits for it, is still written.
    grant = result.get("role_assignment/deployer-writes-secrets")
    assert grant.outcome is Outcome.BLOCKED, result.render()
    assert "uses access policies" in (grant.detail or "")
    assert result.get(MODE).outcome is Outcome.CREATED, result.render()
    by_n = {e.n: e for e in vault_rec.exchanges}
    reads = [e for e in transport.log if e[3] == "recorded" and e[0] == "GET"]
    states = [by_n[e[4]].response["properties"]["provisioningState"] for e in reads]
    assert states[0] == "RegisteringDns", states
    assert states[-1] == "Succeeded", states
    # The secret went through the data plane only after the vault said Succeeded.
    ready = transport.log.index(reads[-1])
    writes = [i for i, e in enumerate(transport.log) if e[0] == "PUT" and "/secrets/" in e[1]]
    assert writes, transport.log
    assert min(writes) > ready, transport.log


def test_endpoint_deleted_out_of_band_is_planned_again(
    clients: Clients, state: DesiredState
) -> None:
    """Recorded: a private endpoint read after its delete answers the Network RP's 404
    ``NotFound`` (not ARM's ``ResourceNotFound``). The product must take it as "missing" and
    plan a create, not fail the read."""
    engine = Engine(state, clients, retry=FAST)
    assert engine.apply(engine.plan([PE_PG])).ok
    endpoint = product_id(state, clients, PE_PG)
    group, name = endpoint.split("/")[4], endpoint.rsplit("/", 1)[1]
    clients.network.private_endpoints.begin_delete(group, name).result()
    with pytest.raises(ResourceNotFoundError) as gone:
        clients.network.private_endpoints.get(group, name)
    assert gone.value.error is not None
    assert gone.value.error.code == "NotFound"
    plan = Engine(state, clients, retry=FAST).plan([PE_PG])
    assert plan.get(PE_PG).action is Action.CREATE

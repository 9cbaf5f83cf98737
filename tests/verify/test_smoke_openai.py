"""The "openai" smoke against the emulator with the real `openai` client: after applying the
repository's desired state one chat completion goes through the private endpoint (DNS chain,
private address, key from Key Vault) and PASSes with evidence; a deleted deployment, a public
resolution (zone link gone: the public entrance answers 403), a missing A record and a wrong
key in Key Vault each FAIL the smoke naming the cause; local auth off uses an Entra token.
No report ever shows the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient
from ruamel.yaml import YAML

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.verification import Status, VerifyReport
from tests.conftest import apply_state, verify_on
from tests.paths import DESIRED_STATE

RG = "2dt-final-team4"
ACCOUNT = "nsc-aoai-dev"
SMOKE = f"smoke-openai/{ACCOUNT}/gpt-4o-mini"
ZONE = "privatelink.openai.azure.com"
FORMATS = ("text", "json", "markdown", "junit")


def _zone_id(emu: Emulator) -> str:
    sub = emu.info["subscription_id"]
    return f"/subscriptions/{sub}/resourceGroups/{RG}/providers/Microsoft.Network/privateDnsZones/{ZONE}"


def _smoke(state: DesiredState, emu: Emulator) -> VerifyReport:
    return verify_on(state, emu, smoke=["openai"])


def _failed(report: VerifyReport) -> list[str]:
    return sorted(c.id for c in report.failed)


def _assert_never_shown(report: VerifyReport, *values: str) -> None:
    for fmt in FORMATS:
        rendered = report.render(fmt)
        for value in values:
            assert value not in rendered, f"a secret value shows in the {fmt} report"


def _key(clients: Clients) -> str:
    return str(clients.cognitive.accounts.list_keys(RG, ACCOUNT).key1)


def test_after_apply_one_completion_goes_through_the_private_endpoint(
    applied: DesiredState, emu: Emulator, clients: Clients, ctl: Callable[..., Any]
) -> None:
    report = _smoke(applied, emu)
    assert report.ok, report.render()
    smoke = report.get(SMOKE)
    assert smoke.status is Status.PASS
    evidence = smoke.evidence
    assert f"endpoint https://{ACCOUNT}.openai.azure.com/" in evidence
    assert f"DNS {ACCOUNT}.openai.azure.com -> {ACCOUNT}.{ZONE} = 10.10.1." in evidence
    assert ":443 (private)" in evidence
    assert "auth api-key from Key Vault secret azure-openai-api-key" in evidence
    assert "model gpt-4o-mini-2024-07-18 (declared gpt-4o-mini 2024-07-18)" in evidence
    assert "latency " in evidence
    assert "tokens prompt=" in evidence
    calls = [r for r in ctl("GET", "requests") if r["plane"] == "openai"]
    assert [(r["path"], r["status"]) for r in calls] == [
        ("/openai/deployments/gpt-4o-mini/chat/completions", 200)
    ]
    _assert_never_shown(report, _key(clients))


def test_deleted_deployment_fails_the_smoke_with_deployment_not_found(
    applied: DesiredState, emu: Emulator, clients: Clients
) -> None:
    clients.cognitive.deployments.begin_delete(RG, ACCOUNT, "gpt-4o-mini").result()
    report = _smoke(applied, emu)
    # The read-only checks see the missing deployment too; nothing else fails.
    assert _failed(report) == [f"openai-account/{ACCOUNT}", "plan-clean", SMOKE]
    smoke = report.get(SMOKE)
    assert smoke.detail.startswith("DeploymentNotFound (404): The API deployment for this")
    assert ":443 (private)" in smoke.evidence
    _assert_never_shown(report, _key(clients))


def test_public_resolution_is_reported_with_the_403_of_the_public_entrance(
    applied: DesiredState, emu: Emulator, clients: Clients, ctl: Callable[..., Any]
) -> None:
    # Out of band: the zone's VNet link is gone, so the name resolves as public DNS gives it.
    ctl("DELETE", f"state?id={_zone_id(emu)}/virtualNetworkLinks/link-nsc-vnet-dev")
    report = _smoke(applied, emu)
    assert _failed(report) == [
        "dns/nsc-pe-openai", "pe-zone-link/nsc-pe-openai", "plan-clean", SMOKE,
    ]  # fmt: skip
    smoke = report.get(SMOKE)
    assert f"DNS {ACCOUNT}.openai.azure.com -> {ACCOUNT}.{ZONE} = 20." in smoke.evidence
    assert ":443 (public)" in smoke.evidence
    assert f"{ACCOUNT}.openai.azure.com resolved to the public address 20." in smoke.detail
    assert (
        "403 public access disabled: Public access is disabled. Please configure private "
        "endpoint." in smoke.detail
    )
    _assert_never_shown(report, _key(clients))


def test_missing_a_record_fails_the_smoke_as_not_resolving(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    # Azure DNS answers NXDOMAIN for a name missing from a linked private zone (no fallback to
    # public DNS unless the link's resolutionPolicy is NxDomainRedirect): no call is made.
    ctl("DELETE", f"state?id={_zone_id(emu)}/A/{ACCOUNT}")
    report = _smoke(applied, emu)
    smoke = report.get(SMOKE)
    assert smoke.status is Status.FAIL
    assert smoke.detail == f"{ACCOUNT}.openai.azure.com does not resolve (NXDOMAIN)"
    assert [r for r in ctl("GET", "requests") if r["plane"] == "openai"] == []
    assert _failed(report) == [
        "dns/nsc-pe-openai", "pe-a-record/nsc-pe-openai", "plan-clean", SMOKE,
    ]  # fmt: skip


def test_unapproved_endpoint_connection_leaves_no_route(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    # Out of band: the account owner rejects the private endpoint connection; the NIC IP
    # still resolves, but nothing answers there any more.
    sub = emu.info["subscription_id"]
    pe_id = f"/subscriptions/{sub}/resourceGroups/{RG}/providers/Microsoft.Network/privateEndpoints/nsc-pe-openai"
    pe = ctl("GET", f"state?id={pe_id}")
    for connection in pe["properties"]["privateLinkServiceConnections"]:
        connection["properties"]["privateLinkServiceConnectionState"]["status"] = "Rejected"
    ctl("PUT", f"state?id={pe_id}", pe)
    report = _smoke(applied, emu)
    smoke = report.get(SMOKE)
    assert smoke.status is Status.FAIL
    assert smoke.detail.startswith("no route: nothing answers at 10.10.1.")
    assert smoke.detail.endswith(":443 from here")
    assert _failed(report) == ["pe-connection/nsc-pe-openai", "plan-clean", SMOKE]


def test_wrong_key_in_key_vault_fails_the_smoke_with_401_and_shows_no_key(
    applied: DesiredState, emu: Emulator, clients: Clients, vault_client: SecretClient
) -> None:
    wrong = "0badc0de" * 4
    vault_client.set_secret("azure-openai-api-key", wrong)
    report = _smoke(applied, emu)
    smoke = report.get(SMOKE)
    assert smoke.status is Status.FAIL
    assert smoke.detail.startswith("401 unauthorized (wrong or rotated key, or bad token): "
                                   "Access denied due to invalid subscription key")  # fmt: skip
    assert "auth api-key from Key Vault secret azure-openai-api-key" in smoke.evidence
    # The vault check and the plan see the value changed out of band too.
    assert _failed(report) == ["key-vault-secrets/nsc-kv-dev", "plan-clean", SMOKE]
    _assert_never_shown(report, wrong, _key(clients))


def test_key_pasted_with_a_newline_is_named_and_never_shown(
    applied: DesiredState, emu: Emulator, clients: Clients, vault_client: SecretClient
) -> None:
    key = _key(clients)
    vault_client.set_secret("azure-openai-api-key", key + "\n")  # the SDK refuses the header
    report = _smoke(applied, emu)
    smoke = report.get(SMOKE)
    assert smoke.status is Status.FAIL
    assert smoke.detail.startswith(
        "Key Vault secret azure-openai-api-key has leading or trailing whitespace; "
        "connection failed: LocalProtocolError: Illegal header value"
    )
    _assert_never_shown(report, key)


def _variant(tmp_path: Path, change: Callable[[Any], None]) -> DesiredState:
    """The repository's desired state with ``change`` made to its data."""
    yaml = YAML(typ="safe")
    data = yaml.load(DESIRED_STATE.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "desired_state.yaml"
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    return load_desired_state(path)


@pytest.mark.usefixtures("desired_state")  # for its LRO configuration
def test_every_deployment_is_called_and_reasoning_models_get_max_completion_tokens(
    emu: Emulator, clients: Clients, ctl: Callable[..., Any], tmp_path: Path
) -> None:
    def add_reasoner(data: Any) -> None:
        data["openai_accounts"][0]["deployments"].append(
            {"name": "o4-mini", "model": "o4-mini", "model_version": "2025-04-16",
             "sku": "GlobalStandard", "capacity": 10}
        )  # fmt: skip

    report = _smoke(apply_state(_variant(tmp_path, add_reasoner), clients, ctl), emu)
    assert report.get(SMOKE).status is Status.PASS
    reasoner = report.get(f"smoke-openai/{ACCOUNT}/o4-mini")
    assert reasoner.status is Status.PASS, report.render()
    assert "model o4-mini-2025-04-16 (declared o4-mini 2025-04-16)" in reasoner.evidence
    calls = [r for r in ctl("GET", "requests") if r["plane"] == "openai"]
    assert [(r["path"].split("/")[3], r["status"]) for r in calls] == [
        ("gpt-4o-mini", 200), ("o4-mini", 400), ("o4-mini", 200),
    ]  # fmt: skip


@pytest.mark.usefixtures("desired_state")  # for its LRO configuration
def test_local_auth_disabled_uses_an_entra_token(
    emu: Emulator, clients: Clients, ctl: Callable[..., Any], tmp_path: Path
) -> None:
    def keyless(data: Any) -> None:
        data["openai_accounts"][0]["local_auth"] = "disabled"
        data["secrets"]["items"] = [
            i for i in data["secrets"]["items"] if i["name"] != "azure-openai-api-key"
        ]
        data["role_assignments"] = [  # no key: nobody is granted reading it
            g for g in data["role_assignments"]
            if g["scope"] != "key_vault_secret/azure-openai-api-key"
        ]  # fmt: skip

    report = _smoke(apply_state(_variant(tmp_path, keyless), clients, ctl), emu)
    smoke = report.get(SMOKE)
    assert smoke.status is Status.PASS, report.render()
    assert "auth Entra ID token (local auth disabled)" in smoke.evidence
    calls = [r for r in ctl("GET", "requests") if r["plane"] == "openai"]
    assert [c["request_headers"].get("authorization", "")[:7] for c in calls] == ["Bearer "]

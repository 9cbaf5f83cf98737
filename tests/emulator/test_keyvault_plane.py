"""Key Vault data plane driven by the real ``SecretClient`` over HTTPS (challenge auth, CRUD,
versions, paging, soft delete/recover/purge), plus plane-level checks of network enforcement."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import KeyVaultSecretIdentifier, SecretClient
from azure.keyvault.secrets._shared import http_challenge_cache

from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.keyvault import KeyVaultPlane
from nsc_reconcile.emulator.protocol import Request
from nsc_reconcile.emulator.worlds import (
    DATABRICKS_TOKEN_SECRET,
    DATABRICKS_TOKEN_VALUE,
    KEY_VAULT_NAME,
    TENANT_ID,
    baseline_ids,
    build_world,
)

from .conftest import control

VERSION = re.compile(r"^[0-9a-f]{32}$")


class _Credential:
    """Any bearer token will do; records the scopes and tenant the challenge asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, kwargs))
        return AccessToken("emulator-token", int(time.time()) + 3600)


@pytest.fixture
def credential() -> _Credential:
    return _Credential()


@pytest.fixture
def vault(emu: Emulator, credential: _Credential) -> Iterator[SecretClient]:
    url = emu.world.secrets.vault_url(KEY_VAULT_NAME)
    client = SecretClient(
        vault_url=url,
        credential=credential,
        connection_verify=emu.info["ca_cert"],
        verify_challenge_resource=False,
    )
    with client:
        yield client


def _keyvault_log(emu: Emulator) -> list[dict[str, Any]]:
    return [r for r in control(emu, "GET", "requests") if r.get("plane") == "keyvault"]


def test_vault_uri_in_arm_is_the_loopback_listener(emu: Emulator) -> None:
    vault = emu.world.get(baseline_ids()["key_vault"])
    assert vault is not None
    uri = vault["properties"]["vaultUri"]
    assert uri == emu.world.secrets.vault_url(KEY_VAULT_NAME)
    assert uri.startswith("https://127.0.0.1:")
    assert uri.endswith("/")


def test_challenge_handshake_then_baseline_secret(
    emu: Emulator, vault: SecretClient, credential: _Credential
) -> None:
    http_challenge_cache.clear()  # a fresh process would know no challenge either
    secret = vault.get_secret(DATABRICKS_TOKEN_SECRET)
    assert secret.value == DATABRICKS_TOKEN_VALUE
    first, second = _keyvault_log(emu)[:2]
    assert first["status"] == 401
    assert "authorization" not in first["request_headers"]
    challenge = first["response_headers"]["www-authenticate"]
    assert f'authorization="https://login.microsoftonline.com/{TENANT_ID}"' in challenge
    assert 'resource="https://vault.azure.net"' in challenge
    assert second["status"] == 200
    assert second["request_headers"]["authorization"].startswith("Bearer ")
    scopes, kwargs = credential.calls[0]
    assert scopes == ("https://vault.azure.net/.default",)
    assert kwargs.get("tenant_id") == TENANT_ID


def test_set_creates_versions_and_get_reads_any_of_them(vault: SecretClient) -> None:
    first = vault.set_secret("agent-execute-mode", "dry-run", content_type="text/plain")
    second = vault.set_secret("agent-execute-mode", "live", tags={"env": "prod"})
    assert first.properties.version != second.properties.version
    assert VERSION.match(first.properties.version or "")
    parsed = KeyVaultSecretIdentifier(second.id or "")
    assert parsed.name == "agent-execute-mode"
    assert parsed.version == second.properties.version
    assert parsed.vault_url == vault.vault_url
    assert vault.get_secret("agent-execute-mode").value == "live"
    old = vault.get_secret("agent-execute-mode", first.properties.version)
    assert old.value == "dry-run"
    assert old.properties.content_type == "text/plain"
    versions = {p.version for p in vault.list_properties_of_secret_versions("agent-execute-mode")}
    assert versions == {first.properties.version, second.properties.version}
    props = second.properties
    assert props.enabled is True
    assert props.recovery_level == "Recoverable+Purgeable"
    assert props.recoverable_days == 90
    assert props.tags == {"env": "prod"}


def test_list_pages_through_next_link(emu: Emulator, vault: SecretClient) -> None:
    names = {f"bulk-{i:02d}" for i in range(30)}
    for name in names:
        vault.set_secret(name, "x")
    listed = {p.name for p in vault.list_properties_of_secrets()}
    assert listed == names | {DATABRICKS_TOKEN_SECRET}
    pages = [r for r in _keyvault_log(emu) if r["path"] == "/secrets" and r["status"] == 200]
    assert len(pages) == 2  # 25 + 6 items: the client followed nextLink once
    assert pages[1]["query"].get("$skiptoken") == "25"


def test_missing_secret_is_404_secret_not_found(vault: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        vault.get_secret("no-such-secret")
    assert caught.value.error is not None
    assert caught.value.error.code == "SecretNotFound"
    assert "no-such-secret" in caught.value.message


def test_soft_delete_blocks_the_name_until_recovered_or_purged(vault: SecretClient) -> None:
    vault.set_secret("langfuse-secret-key", "v1")
    poller = vault.begin_delete_secret("langfuse-secret-key")
    poller.wait()
    deleted = poller.result()
    assert deleted.recovery_id is not None
    assert deleted.recovery_id.endswith("/deletedsecrets/langfuse-secret-key")
    assert deleted.scheduled_purge_date is not None
    assert deleted.deleted_date is not None
    assert (deleted.scheduled_purge_date - deleted.deleted_date).days == 90

    with pytest.raises(ResourceExistsError) as caught:
        vault.set_secret("langfuse-secret-key", "v2")
    assert caught.value.error is not None
    assert caught.value.error.code == "Conflict"
    assert "is currently in a deleted but recoverable state" in caught.value.message
    with pytest.raises(ResourceNotFoundError):
        vault.get_secret("langfuse-secret-key")
    assert "langfuse-secret-key" in {d.name for d in vault.list_deleted_secrets()}

    recover = vault.begin_recover_deleted_secret("langfuse-secret-key")
    recover.wait()
    assert vault.get_secret("langfuse-secret-key").value == "v1"
    assert vault.set_secret("langfuse-secret-key", "v2").value == "v2"

    vault.begin_delete_secret("langfuse-secret-key").wait()
    vault.purge_deleted_secret("langfuse-secret-key")
    with pytest.raises(ResourceNotFoundError):
        vault.get_deleted_secret("langfuse-secret-key")
    fresh = vault.set_secret("langfuse-secret-key", "v3")  # the name is free again
    assert [p.version for p in vault.list_properties_of_secret_versions("langfuse-secret-key")] == [
        fresh.properties.version
    ]


def test_disabled_secret_cannot_be_read(vault: SecretClient) -> None:
    vault.set_secret("log-analytics-dcr-id", "dcr-123")
    updated = vault.update_secret_properties("log-analytics-dcr-id", enabled=False)
    assert updated.enabled is False
    with pytest.raises(HttpResponseError) as caught:
        vault.get_secret("log-analytics-dcr-id")
    assert caught.value.status_code == 403


def test_reset_restores_the_baseline_secrets(emu: Emulator, vault: SecretClient) -> None:
    vault.set_secret("temporary", "x")
    vault.begin_delete_secret(DATABRICKS_TOKEN_SECRET).wait()
    control(emu, "POST", "reset")
    assert vault.get_secret(DATABRICKS_TOKEN_SECRET).value == DATABRICKS_TOKEN_VALUE
    with pytest.raises(ResourceNotFoundError):
        vault.get_secret("temporary")


# -- plane level (no sockets): addressing and the opt-in network gate ---------------------------
def _plane() -> KeyVaultPlane:
    world = build_world("baseline")
    world.urls["keyvault"] = "https://127.0.0.1:4443"
    return KeyVaultPlane(world)


def _get(plane: KeyVaultPlane, path: str, port: int = 4443) -> Any:
    headers = {"host": f"127.0.0.1:{port}", "authorization": "Bearer t"}
    return plane.handle(Request("GET", path, {"api-version": "7.6"}, headers))


def test_private_vault_refuses_outside_callers_only_when_enforced() -> None:
    plane = _plane()
    assert _get(plane, f"/secrets/{DATABRICKS_TOKEN_SECRET}").status == 200
    plane.enforce_vault_network = True
    answer = _get(plane, f"/secrets/{DATABRICKS_TOKEN_SECRET}")
    assert answer.status == 403
    error = answer.body["error"]
    assert error["code"] == "Forbidden"
    assert error["innererror"]["code"] == "ForbiddenByConnection"
    assert error["message"].startswith("Public network access is disabled")
    assert f"Vault: {KEY_VAULT_NAME};location=koreacentral" in error["message"]


def test_unknown_vault_address_is_vault_not_found() -> None:
    plane = _plane()
    assert plane.vault_url(KEY_VAULT_NAME) == "https://127.0.0.1:4443/"
    answer = _get(plane, "/secrets", port=9)
    assert answer.status == 404
    assert answer.body["error"]["code"] == "VaultNotFound"


def test_second_vault_gets_its_own_listener() -> None:
    plane = _plane()
    plane.listen = lambda: "https://127.0.0.1:5443"
    assert plane.vault_url(KEY_VAULT_NAME) == "https://127.0.0.1:4443/"
    assert plane.vault_url("nsc-kv-other") == "https://127.0.0.1:5443/"
    # That vault is not in ARM: its address answers as an unknown vault.
    assert _get(plane, "/secrets", port=5443).body["error"]["code"] == "VaultNotFound"

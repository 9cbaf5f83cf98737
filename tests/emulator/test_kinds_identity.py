"""User-assigned identities and federated identity credentials through the real
ManagedServiceIdentityClient (azure-mgmt-msi, api-version 2024-11-30)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.worlds import LOCATION, RESOURCE_GROUP, SUBSCRIPTION_ID

RG = RESOURCE_GROUP
IDENTITY_ID = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourcegroups/{RG}/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-agent"
)
ISSUER = "https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/"
SUBJECT = "system:serviceaccount:nsc-agent:agent"


def _guid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _headers(entry: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in entry["response_headers"].items()}


def _credential(issuer: str = ISSUER) -> FederatedIdentityCredential:
    return FederatedIdentityCredential(
        issuer=issuer, subject=SUBJECT, audiences=["api://AzureADTokenExchange"]
    )


def test_identity_create_get_update_delete(clients: Clients, ctl: Callable[..., Any]) -> None:
    ids = clients.msi.user_assigned_identities
    created = ids.create_or_update(RG, "id-agent", Identity(location=LOCATION))
    assert created.id == IDENTITY_ID  # 'resourcegroups' in lower case, as Azure answers
    assert all(_guid(v) for v in (created.principal_id, created.client_id, created.tenant_id))
    assert created.tags == {}
    again = ids.create_or_update(RG, "id-agent", Identity(location=LOCATION, tags={"a": "b"}))
    assert (again.principal_id, again.client_id) == (created.principal_id, created.client_id)
    assert ids.get(RG, "id-agent").tags == {"a": "b"}
    first, second = [r for r in ctl("GET", "requests") if r["method"] == "PUT"][:2]
    # Recorded: 201 with Location = the identity's own id (no operation to poll), then 200.
    assert first["status"] == 201
    assert _headers(first)["location"] == IDENTITY_ID
    assert "azure-asyncoperation" not in _headers(first)
    assert "provisioningState" not in first["response_body"]["properties"]
    assert second["status"] == 200
    assert "location" not in _headers(second)
    ids.delete(RG, "id-agent")
    with pytest.raises(ResourceNotFoundError) as gone:
        ids.get(RG, "id-agent")
    assert gone.value.error is not None
    assert gone.value.error.code == "ResourceNotFound"
    deletes = [r for r in ctl("GET", "requests") if r["method"] == "DELETE"]
    assert [d["status"] for d in deletes] == [200]


def test_identity_listed_in_its_group(clients: Clients) -> None:
    clients.msi.user_assigned_identities.create_or_update(RG, "id-a", Identity(location=LOCATION))
    names = [i.name for i in clients.msi.user_assigned_identities.list_by_resource_group(RG)]
    assert names == ["id-a"]


def test_credential_create_update_get_delete(clients: Clients, ctl: Callable[..., Any]) -> None:
    clients.msi.user_assigned_identities.create_or_update(
        RG, "id-agent", Identity(location=LOCATION)
    )
    fics = clients.msi.federated_identity_credentials
    created = fics.create_or_update(RG, "id-agent", "fic-agent", _credential())
    assert created.id == f"{IDENTITY_ID}/federatedIdentityCredentials/fic-agent"
    assert (created.issuer, created.subject) == (ISSUER, SUBJECT)
    assert created.audiences == ["api://AzureADTokenExchange"]
    updated = fics.create_or_update(RG, "id-agent", "fic-agent", _credential("https://x.test/"))
    assert updated.issuer == "https://x.test/"
    assert fics.get(RG, "id-agent", "fic-agent").issuer == "https://x.test/"
    assert [f.name for f in fics.list(RG, "id-agent")] == ["fic-agent"]
    puts = [r for r in ctl("GET", "requests") if "federatedIdentityCredentials" in r["path"]]
    assert [p["status"] for p in puts[:2]] == [201, 200]
    assert _headers(puts[0])["location"] == created.id
    fics.delete(RG, "id-agent", "fic-agent")
    with pytest.raises(ResourceNotFoundError) as gone:
        fics.get(RG, "id-agent", "fic-agent")
    error = gone.value.error
    assert error is not None
    assert error.code == "NotFound"
    assert error.message == f"Resource '{created.id}' was not found."


def test_credential_needs_issuer_subject_audiences(clients: Clients) -> None:
    clients.msi.user_assigned_identities.create_or_update(
        RG, "id-agent", Identity(location=LOCATION)
    )
    with pytest.raises(HttpResponseError) as refused:
        clients.msi.federated_identity_credentials.create_or_update(
            RG, "id-agent", "fic", FederatedIdentityCredential(issuer=ISSUER, subject=SUBJECT)
        )
    assert refused.value.status_code == 400


def test_credential_of_a_missing_identity(clients: Clients) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        clients.msi.federated_identity_credentials.create_or_update(
            RG, "nope", "fic", _credential()
        )
    assert missing.value.error is not None
    assert missing.value.error.code == "ParentResourceNotFound"

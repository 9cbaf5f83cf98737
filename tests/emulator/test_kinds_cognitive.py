"""Azure OpenAI accounts and deployments through the real CognitiveServicesManagementClient."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.cognitiveservices.models import (
    Account,
    AccountProperties,
    Deployment,
    DeploymentModel,
    DeploymentProperties,
    Sku,
)

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import RESOURCE_GROUP
from tests.conftest import control

RG = RESOURCE_GROUP


def _account(subdomain: str | None = "nsc-oai-dev", **props: Any) -> Account:
    return Account(
        location="koreacentral",
        kind="OpenAI",
        sku=Sku(name="S0"),
        properties=AccountProperties(custom_sub_domain_name=subdomain, **props),
    )


def _deployment(model: str = "gpt-4o") -> Deployment:
    return Deployment(
        sku=Sku(name="GlobalStandard", capacity=10),
        properties=DeploymentProperties(
            model=DeploymentModel(format="OpenAI", name=model, version="2024-11-20")
        ),
    )


def test_account_create_reports_endpoint_and_server_fields(clients: Clients) -> None:
    created: Any = clients.cognitive.accounts.begin_create(
        RG, "nsc-oai-dev", _account(public_network_access="Disabled")
    ).result()
    props = created.properties
    assert props.endpoint == "https://nsc-oai-dev.openai.azure.com/"
    assert props.endpoints["OpenAI Language Model Instance API"] == props.endpoint
    assert props.provisioning_state == "Succeeded"
    assert len(props.internal_id) == 32
    assert props.date_created
    assert props.public_network_access == "Disabled"
    again: Any = clients.cognitive.accounts.get(RG, "nsc-oai-dev")
    assert again.properties.internal_id == props.internal_id
    assert again.kind == "OpenAI"


def test_account_without_subdomain_gets_the_regional_endpoint(clients: Clients) -> None:
    created: Any = clients.cognitive.accounts.begin_create(RG, "oai-plain", _account(None)).result()
    assert created.properties.endpoint == "https://koreacentral.api.cognitive.microsoft.com/"


def test_missing_account_is_resource_not_found(clients: Clients) -> None:
    with pytest.raises(ResourceNotFoundError):
        clients.cognitive.accounts.get(RG, "does-not-exist")


def test_subdomain_cannot_change_and_is_globally_unique(clients: Clients) -> None:
    clients.cognitive.accounts.begin_create(RG, "nsc-oai-dev", _account()).result()
    with pytest.raises(HttpResponseError) as changed:
        clients.cognitive.accounts.begin_create(RG, "nsc-oai-dev", _account("other")).result()
    assert changed.value.status_code == 400
    assert changed.value.error is not None
    assert changed.value.error.code == "CustomSubDomainNameCannotBeChanged"
    with pytest.raises(HttpResponseError) as taken:
        clients.cognitive.accounts.begin_create(RG, "second", _account("NSC-OAI-DEV")).result()
    assert taken.value.error is not None
    assert taken.value.error.code == "CustomDomainInUse"
    # The refused writes changed nothing.
    kept: Any = clients.cognitive.accounts.get(RG, "nsc-oai-dev")
    assert kept.properties.endpoint == "https://nsc-oai-dev.openai.azure.com/"


def test_list_keys_is_stable_and_regenerate_changes_one_key(clients: Clients) -> None:
    clients.cognitive.accounts.begin_create(RG, "nsc-oai-dev", _account()).result()
    first: Any = clients.cognitive.accounts.list_keys(RG, "nsc-oai-dev")
    second: Any = clients.cognitive.accounts.list_keys(RG, "nsc-oai-dev")
    assert (first.key1, first.key2) == (second.key1, second.key2)
    assert first.key1 != first.key2
    assert len(first.key1) == 32
    int(first.key1, 16)
    regenerated: Any = clients.cognitive.accounts.regenerate_key(RG, "nsc-oai-dev", key_name="Key2")
    assert regenerated.key1 == first.key1
    assert regenerated.key2 != first.key2
    assert clients.cognitive.accounts.list_keys(RG, "nsc-oai-dev").key2 == regenerated.key2


def test_list_keys_refused_when_local_auth_is_disabled(clients: Clients) -> None:
    clients.cognitive.accounts.begin_create(
        RG, "nsc-oai-dev", _account(disable_local_auth=True)
    ).result()
    with pytest.raises(HttpResponseError) as refused:
        clients.cognitive.accounts.list_keys(RG, "nsc-oai-dev")
    assert refused.value.status_code == 400
    assert "disableLocalAuth" in str(refused.value)


def test_deployment_round_trip(clients: Clients) -> None:
    clients.cognitive.accounts.begin_create(RG, "nsc-oai-dev", _account()).result()
    done: Any = clients.cognitive.deployments.begin_create_or_update(
        RG, "nsc-oai-dev", "gpt-4o", _deployment()
    ).result()
    assert done.properties.provisioning_state == "Succeeded"
    assert done.properties.model.name == "gpt-4o"
    assert done.sku.capacity == 10
    listed: Any = clients.cognitive.deployments.list(RG, "nsc-oai-dev")
    assert [d.name for d in listed] == ["gpt-4o"]
    with pytest.raises(ResourceNotFoundError):
        clients.cognitive.deployments.get(RG, "nsc-oai-dev", "missing")


def test_parallel_deployment_write_answers_request_conflict(
    emu: Emulator, clients: Clients
) -> None:
    clients.cognitive.accounts.begin_create(RG, "nsc-oai-dev", _account()).result()
    control(
        emu,
        "POST",
        "config",
        {"lro_seconds": {"Microsoft.CognitiveServices/accounts/deployments": 1}},
    )
    first: Any = clients.cognitive.deployments.begin_create_or_update(
        RG, "nsc-oai-dev", "gpt-4o", _deployment()
    )
    with pytest.raises(ResourceExistsError) as conflict:
        clients.cognitive.deployments.begin_create_or_update(
            RG, "nsc-oai-dev", "embeddings", _deployment("text-embedding-3-small")
        ).result()
    assert conflict.value.status_code == 409
    assert conflict.value.error is not None
    assert conflict.value.error.code == "RequestConflict"
    assert first.result().properties.provisioning_state == "Succeeded"
    time.sleep(1.0)  # the account carries the first write out for the configured second
    # Once the first finished, the second write goes through (serialize, as Azure requires).
    second: Any = clients.cognitive.deployments.begin_create_or_update(
        RG, "nsc-oai-dev", "embeddings", _deployment("text-embedding-3-small")
    ).result()
    assert second.properties.provisioning_state == "Succeeded"

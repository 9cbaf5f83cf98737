"""The Azure OpenAI data plane through the real `openai` client (AzureOpenAI), with the account
and deployment made through the real CognitiveServicesManagementClient: a chat completion as
Azure answers it, keys from listKeys (and regenerateKey), Entra tokens, local auth off, an
unknown deployment, the public entrance gated by publicNetworkAccess and the firewall, a 429
fault whose retry-after the client honours, and the deployment's own rate limit."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from azure.mgmt.cognitiveservices.models import (
    Account,
    AccountProperties,
    Deployment,
    DeploymentModel,
    DeploymentProperties,
    NetworkRuleSet,
    Sku,
)

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.openai import (
    DEPLOYMENT_NOT_FOUND,
    FIREWALL_DENIED,
    INVALID_KEY,
    LOCAL_AUTH_DISABLED,
    PUBLIC_ACCESS_DISABLED,
)
from nsc_reconcile.emulator.worlds import RESOURCE_GROUP
from nsc_reconcile.verification.pinned_http import pinned_client

ACCOUNT = "aoai-smoke"
HOST = f"{ACCOUNT}.openai.azure.com"
DEPLOYMENT = "chat"
API_VERSION = "2024-10-21"
PATH = f"/openai/deployments/{DEPLOYMENT}/chat/completions"


@pytest.fixture
def account(clients: Clients, ctl: Callable[..., Any]) -> str:
    """An OpenAI account (public access on, firewall open) with one deployment; its key1
    as listKeys gives it."""
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    _put_account(clients, public="Enabled", acl="Allow")
    clients.cognitive.deployments.begin_create_or_update(
        RESOURCE_GROUP,
        ACCOUNT,
        DEPLOYMENT,
        Deployment(
            sku=Sku(name="GlobalStandard", capacity=10),
            properties=DeploymentProperties(
                model=DeploymentModel(format="OpenAI", name="gpt-4o-mini", version="2024-07-18")
            ),
        ),
    ).result()
    return str(clients.cognitive.accounts.list_keys(RESOURCE_GROUP, ACCOUNT).key1)


def _put_account(
    clients: Clients, public: str, acl: str, disable_local_auth: bool | None = None
) -> None:
    clients.cognitive.accounts.begin_create(
        RESOURCE_GROUP,
        ACCOUNT,
        Account(
            location="koreacentral",
            kind="OpenAI",
            sku=Sku(name="S0"),
            properties=AccountProperties(
                custom_sub_domain_name=ACCOUNT,
                public_network_access=public,
                network_acls=NetworkRuleSet(default_action=acl),
                disable_local_auth=disable_local_auth,
            ),
        ),
    ).result()


def _http(emu: Emulator, entrance: str = "openai") -> httpx2.Client:
    """HTTPS to the emulator's entrance, with the real name in the URL, Host and TLS check."""
    host, _, port = emu.info[entrance].removeprefix("https://").rpartition(":")
    context = ssl.create_default_context(cafile=emu.info["ca_cert"])
    return pinned_client({(HOST, 443): (host, int(port))}, context)


def _client(emu: Emulator, entrance: str = "openai", **kwargs: Any) -> openai.AzureOpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.AzureOpenAI(azure_endpoint=f"https://{HOST}/", api_version=API_VERSION,
                              http_client=_http(emu, entrance), **kwargs)  # fmt: skip


def _ask(client: openai.OpenAI, deployment: str = DEPLOYMENT, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model=deployment, messages=[{"role": "user", "content": "Say OK."}], **kwargs
    )


def test_chat_completion_is_answered_as_azure_does(
    emu: Emulator, account: str, ctl: Callable[..., Any]
) -> None:
    answer = _ask(_client(emu, api_key=account))
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.model == "gpt-4o-mini-2024-07-18"  # the deployment's model and version
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == 3 + (3 + 1 + 3) + 0  # priming, role, "Say OK."
    assert answer.usage.completion_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    extra = answer.model_dump()
    prompt_filters = extra["prompt_filter_results"][0]["content_filter_results"]
    assert prompt_filters["jailbreak"] == {"filtered": False, "detected": False}
    assert extra["choices"][0]["content_filter_results"]["hate"] == {
        "filtered": False,
        "severity": "safe",
    }
    short = _ask(_client(emu, api_key=account), max_tokens=2)
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None
    assert short.usage.completion_tokens == 2
    streamed = _client(emu, api_key=account).chat.completions.create(
        model=DEPLOYMENT, messages=[{"role": "user", "content": "Say OK."}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == choice.message.content
    logged = [r for r in ctl("GET", "requests") if r["plane"] == "openai"]
    assert [(r["method"], r["path"], r["status"]) for r in logged] == [("POST", PATH, 200)] * 3
    assert all(r["query"] == {"api-version": API_VERSION} for r in logged)
    assert account not in str(logged)  # the api-key header is never logged


def test_keys_are_the_ones_list_keys_gives_and_regenerate_key_changes(
    emu: Emulator, account: str, clients: Clients
) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        _ask(_client(emu, api_key="0" * 32))
    assert refused.value.status_code == 401
    assert refused.value.body == {"code": "401", "message": INVALID_KEY}
    key2 = clients.cognitive.accounts.list_keys(RESOURCE_GROUP, ACCOUNT).key2
    assert _ask(_client(emu, api_key=str(key2))).choices
    clients.cognitive.accounts.regenerate_key(RESOURCE_GROUP, ACCOUNT, "Key1")
    with pytest.raises(openai.AuthenticationError):
        _ask(_client(emu, api_key=account))
    new_key1 = clients.cognitive.accounts.list_keys(RESOURCE_GROUP, ACCOUNT).key1
    assert new_key1 != account
    assert _ask(_client(emu, api_key=str(new_key1))).choices


def test_local_auth_disabled_refuses_keys_and_takes_entra_tokens(
    emu: Emulator, account: str, clients: Clients
) -> None:
    _put_account(clients, public="Enabled", acl="Allow", disable_local_auth=True)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _ask(_client(emu, api_key=account))
    # Real: 403 AuthenticationTypeDisabled (browser-use/browser-use#1295), not a 401.
    assert refused.value.status_code == 403
    assert refused.value.body == {"code": "AuthenticationTypeDisabled",
                                  "message": LOCAL_AUTH_DISABLED}  # fmt: skip
    token = clients.target.credential.get_token("https://cognitiveservices.azure.com/.default")
    entra = _client(emu, azure_ad_token_provider=lambda: token.token)
    assert _ask(entra).choices


def test_unknown_deployment_is_deployment_not_found(emu: Emulator, account: str) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        _ask(_client(emu, api_key=account), deployment="gpt-5")
    assert missing.value.body == {"code": "DeploymentNotFound", "message": DEPLOYMENT_NOT_FOUND}


def test_wrong_route_or_api_version_is_resource_not_found(emu: Emulator, account: str) -> None:
    with _http(emu) as http:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        headers = {"api-key": account}
        no_version = http.post(f"https://{HOST}{PATH}", json=body, headers=headers)
        too_old = http.post(f"https://{HOST}{PATH}?api-version=2022-12-01", json=body,
                            headers=headers)  # fmt: skip
        other_host = http.post(f"https://{HOST}{PATH}?api-version={API_VERSION}", json=body,
                               headers={**headers, "Host": "other.openai.azure.com"})  # fmt: skip
    for answer in (no_version, too_old, other_host):
        assert answer.status_code == 404
        assert answer.json() == {"error": {"code": "404", "message": "Resource not found"}}
        assert answer.headers["apim-request-id"]


def test_v1_route_takes_the_deployment_from_the_body(emu: Emulator, account: str) -> None:
    v1 = openai.OpenAI(base_url=f"https://{HOST}/openai/v1/", api_key=account,
                       http_client=_http(emu), max_retries=0)  # fmt: skip
    assert _ask(v1).model == "gpt-4o-mini-2024-07-18"


def test_reasoning_models_refuse_max_tokens(emu: Emulator, account: str, clients: Clients) -> None:
    clients.cognitive.deployments.begin_create_or_update(
        RESOURCE_GROUP,
        ACCOUNT,
        "reasoner",
        Deployment(
            sku=Sku(name="GlobalStandard", capacity=10),
            properties=DeploymentProperties(
                model=DeploymentModel(format="OpenAI", name="o4-mini", version="2025-04-16")
            ),
        ),
    ).result()
    client = _client(emu, api_key=account)
    with pytest.raises(openai.BadRequestError) as refused:
        _ask(client, deployment="reasoner", max_tokens=5)
    assert refused.value.body is not None
    assert refused.value.code == "unsupported_parameter"
    assert refused.value.param == "max_tokens"
    answer = _ask(client, deployment="reasoner", max_completion_tokens=5)
    assert answer.model == "o4-mini-2025-04-16"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 5


def test_public_entrance_follows_public_access_and_the_firewall(
    emu: Emulator, account: str, clients: Clients
) -> None:
    public = _client(emu, "openai_public", api_key=account)
    assert _ask(public).choices  # Enabled, firewall open
    _put_account(clients, public="Disabled", acl="Deny")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _ask(public)
    assert refused.value.body == {"code": "403", "message": PUBLIC_ACCESS_DISABLED}
    assert refused.value.response.headers["policy-id"] == "ThrowExceptionDueToTrafficDenied"
    assert _ask(_client(emu, api_key=account)).choices  # the private entrance still answers
    _put_account(clients, public="Enabled", acl="Deny")
    with pytest.raises(openai.PermissionDeniedError) as firewall:
        _ask(public)
    assert firewall.value.body == {"code": "403", "message": FIREWALL_DENIED}


def test_a_429_fault_carries_retry_after_and_the_client_honours_it(
    emu: Emulator, account: str, ctl: Callable[..., Any]
) -> None:
    fault = {"path": PATH, "status": 429, "code": "429", "message": "Rate limit is exceeded.",
             "retry_after": 1, "count": 1}  # fmt: skip
    ctl("POST", "faults", fault)
    with pytest.raises(openai.RateLimitError) as limited:
        _ask(_client(emu, api_key=account))
    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.response.headers["retry-after-ms"] == "1000"
    assert limited.value.body == {"code": "429", "message": "Rate limit is exceeded."}
    ctl("POST", "faults", fault)
    ctl("DELETE", "requests")
    assert _ask(_client(emu, api_key=account, max_retries=1)).choices
    first, second = [r for r in ctl("GET", "requests") if r["plane"] == "openai"]
    assert (first["status"], first["fault"], second["status"]) == (429, "respond", 200)
    # Waited the 1 s the server asked for, not the SDK's own 0.5 s backoff.
    assert second["time"] - first["time"] >= 0.95


def test_the_deployments_capacity_limits_tokens_per_minute(
    emu: Emulator, account: str, clients: Clients
) -> None:
    clients.cognitive.deployments.begin_create_or_update(
        RESOURCE_GROUP,
        ACCOUNT,
        DEPLOYMENT,
        Deployment(
            sku=Sku(name="GlobalStandard", capacity=1),  # 1,000 tokens per minute
            properties=DeploymentProperties(
                model=DeploymentModel(format="OpenAI", name="gpt-4o-mini", version="2024-07-18")
            ),
        ),
    ).result()
    client = _client(emu, api_key=account)
    for _ in range(2):  # each counts its prompt plus max_tokens (400)
        _ask(client, max_tokens=400)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as limited:
        _ask(client, max_tokens=400)
    assert time.monotonic() - started < 5  # refused at once, not after retries
    headers = limited.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["retry-after-ms"] == str(int(headers["retry-after"]) * 1000)
    assert headers["policy-id"] == "DeploymentRatelimit-Token"
    assert "have exceeded token rate limit" in str(limited.value.body)

"""Azure OpenAI data plane: chat completions, for the real `openai` client (``AzureOpenAI``).

A pure ``Plane`` over the ARM world's ``Microsoft.CognitiveServices/accounts`` and their model
deployments. Routes: ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``
(what ``AzureOpenAI`` sends) and ``POST /openai/v1/chat/completions`` (the v1 API: the
deployment is the body's ``model``). The account is the one whose ``customSubDomainName`` is
the first label of the Host header (``<sub>.openai.azure.com``): one listener serves them all.

In the order Azure applies them: the entrance (``public``: refused while the account's
``publicNetworkAccess`` is Disabled, or while its network ACL's default action is Deny, as no
IP rule can match a caller the emulator cannot place), the credential (``api-key``, or the key
as a v1 bearer token, = one of the account's current keys, the ones ``listKeys`` answers; refused
with local auth disabled; any other non-empty bearer token is taken as an Entra ID token, as on
every plane of the emulator), the route and api-version, the deployment, the body, then the
deployment's rate limit (capacity x 1,000 tokens and x 6 requests per minute). Error bodies,
codes and headers are those the real service sends (sources in the comments).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

from nsc_reconcile.emulator.kinds.cognitive import ACCOUNT_TYPE, account_keys
from nsc_reconcile.emulator.protocol import Request, Response

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World
    from nsc_reconcile.emulator.server import FaultRule

__all__ = ["OpenAIPlane", "RateLimits", "count_tokens"]

Entrance = Literal["private", "public"]
# Names an account answers on: <customSubDomainName>.<suffix>.
HOST_SUFFIXES = (
    "openai.azure.com",
    "privatelink.openai.azure.com",
    "cognitiveservices.azure.com",
    "privatelink.cognitiveservices.azure.com",
)
# Chat completions exist from 2023-03-15-preview (GA 2023-05-15); older or malformed
# api-versions, and a missing one, answer 404 "Resource not found" (MicrosoftDocs/azure-docs
# #114602: no api-version -> 404).
_API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(-preview)?$")
_FIRST_CHAT_VERSION = "2023-03-15"
_V1_VERSIONS = {"", "preview", "latest", "v1"}
_TOKEN = re.compile(r"\w+|[^\w\s]")
_DATED_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Reasoning models take max_completion_tokens and refuse max_tokens.
_REASONING = re.compile(r"^(o\d|gpt-5)", re.IGNORECASE)
_SAFE = {"filtered": False, "severity": "safe"}
_NOT_DETECTED = {"filtered": False, "detected": False}
WINDOW_SECONDS = 60.0

# Real bodies (quoted from public reports; see the brief's sources):
# - invalid key: {"error":{"code":"401","message":"Access denied due to invalid subscription key
#   or wrong API endpoint. ..."}} (SciSharp/BotSharp#386, microsoft/semantic-kernel#10337)
# - key with local auth disabled: 403 {"error":{"code":"AuthenticationTypeDisabled","message":
#   "Key based authentication is disabled for this resource."}} (browser-use/browser-use#1295)
# - bad bearer token: 401 {"statusCode":401,"message":"Unauthorized. Access token is missing,
#   invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired."}
#   (run-llama/llama_index#12484)
# - public entrance while disabled: 403 {"error":{"code":"403","message":"Public access is
#   disabled. Please configure private endpoint."}}, header policy-id:
#   ThrowExceptionDueToTrafficDenied; firewall: "Access denied due to Virtual Network/Firewall
#   rules." (Azure-Samples/azure-sql-db-chatbot#3)
# - unknown deployment: 404 {"error":{"code":"DeploymentNotFound","message":"The API deployment
#   for this resource does not exist. If you created the deployment within the last 5 minutes,
#   please wait a moment and try again."}} (chatboxai/chatbox#861)
# - rate limit: 429 code "429", "Requests to the ChatCompletions_Create Operation under Azure
#   OpenAI API version V have exceeded token rate limit of your current OpenAI S0 pricing
#   tier. Please retry after N seconds. ...", headers retry-after, retry-after-ms and policy-id
#   DeploymentRatelimit-Token (openai/openai-python#937, Azure/azure-openai-benchmark#31).
INVALID_KEY = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
LOCAL_AUTH_DISABLED = "Key based authentication is disabled for this resource."
BAD_TOKEN = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired."
)
PUBLIC_ACCESS_DISABLED = "Public access is disabled. Please configure private endpoint."
FIREWALL_DENIED = "Access denied due to Virtual Network/Firewall rules."
DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again."
)
RESOURCE_NOT_FOUND = "Resource not found"


def count_tokens(text: str) -> int:
    """An approximation of a GPT tokenizer: words and punctuation marks count one each."""
    return len(_TOKEN.findall(text))


def _text_of(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Tokens of a chat prompt, counted as OpenAI does: 3 per message, its role, content and
    name (1 more), plus 3 that prime the reply."""
    total = 3
    for message in messages:
        total += (
            3
            + count_tokens(str(message.get("role", "")))
            + count_tokens(_text_of(message.get("content")))
        )
        if message.get("name"):
            total += 1 + count_tokens(str(message["name"]))
    return total


class RateLimits:
    """Per deployment, what was used in the last minute (requests and estimated tokens).
    Shared by the entrances of one emulator; ``clear`` on reset. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[str, deque[tuple[float, int]]] = {}

    def clear(self) -> None:
        with self._lock:
            self._used.clear()

    def take(self, deployment_id: str, capacity: int, tokens: int) -> tuple[str, int] | None:
        """Record one request of ``tokens`` when it fits ``capacity`` (thousands of tokens per
        minute; 6 requests per minute per thousand); else ("token"|"call", seconds to wait)."""
        now = time.monotonic()
        token_limit, call_limit = capacity * 1000, capacity * 6
        with self._lock:
            used = self._used.setdefault(deployment_id.lower(), deque())
            while used and used[0][0] <= now - WINDOW_SECONDS:
                used.popleft()
            if len(used) + 1 > call_limit:
                return "call", _wait(used, now, len(used) + 1 - call_limit, by_count=True)
            spent = sum(t for _, t in used)
            if spent + tokens > token_limit:
                if tokens > token_limit:  # never fits: Azure still says when to retry
                    return "token", int(WINDOW_SECONDS)
                return "token", _wait(used, now, spent + tokens - token_limit, by_count=False)
            used.append((now, tokens))
            return None

    def remaining(self, deployment_id: str, capacity: int) -> tuple[int, int]:
        """(requests, tokens) still allowed in the current minute."""
        with self._lock:
            used = list(self._used.get(deployment_id.lower(), ()))
        recent = [t for started, t in used if started > time.monotonic() - WINDOW_SECONDS]
        return max(0, capacity * 6 - len(recent)), max(0, capacity * 1000 - sum(recent))


def _wait(used: deque[tuple[float, int]], now: float, excess: int, *, by_count: bool) -> int:
    """Seconds until enough of the window's oldest entries expire to free ``excess``."""
    freed = 0
    for started, tokens in used:
        freed += 1 if by_count else tokens
        if freed >= excess:
            return max(1, math.ceil(started + WINDOW_SECONDS - now))
    return int(WINDOW_SECONDS)


def _error(status: int, code: str, message: str, **headers: str) -> Response:
    return Response(status, {"error": {"code": code, "message": message}}, _headers(headers))


def _invalid_request(message: str, param: str | None = None, code: str | None = None) -> Response:
    """A body refused by the model service (OpenAI's error shape, passed through by Azure)."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return Response(400, {"error": error}, _headers({}))


def _headers(extra: dict[str, str]) -> dict[str, str]:
    """Every answer's headers: apim-request-id, plus ``extra`` (``retry_after`` ->
    ``retry-after``)."""
    named = {key.replace("_", "-"): value for key, value in extra.items()}
    return {"apim-request-id": str(uuid.uuid4()), **named}


class OpenAIPlane:
    """One entrance (``private`` or ``public``) of every account's data plane; see the module
    docstring. ``limits`` is shared by the entrances of one emulator."""

    def __init__(
        self, world: World, entrance: Entrance = "private", limits: RateLimits | None = None
    ) -> None:
        self.world = world
        self.entrance: Entrance = entrance
        self.limits = limits if limits is not None else RateLimits()

    # -- the plane ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        account = self._account(request.headers.get("host", ""))
        if account is None:  # on Azure the name would not resolve at all
            return _error(404, "404", RESOURCE_NOT_FOUND)
        props = account.get("properties") or {}
        refused = self._entrance_refusal(props) or self._auth_refusal(request, account)
        if refused is not None:
            return refused
        route = _route(request)
        if route is None:
            return _error(404, "404", RESOURCE_NOT_FOUND)
        deployment_name, api_version = route
        try:
            body = request.json()
        except ValueError as exc:
            return _invalid_request(f"We could not parse the JSON body of your request. ({exc})")
        if not isinstance(body, dict):
            return _invalid_request("The request body must be a JSON object.")
        if deployment_name is None:  # v1: the deployment is the body's model
            deployment_name = str(body.get("model") or "")
            if not deployment_name:
                return _invalid_request("you must provide a model parameter", "model")
        deployment = self.world.get(f"{account['id']}/deployments/{deployment_name}")
        dprops = (deployment or {}).get("properties") or {}
        if deployment is None or dprops.get("provisioningState", "Succeeded") != "Succeeded":
            return _error(404, "DeploymentNotFound", DEPLOYMENT_NOT_FOUND)
        return self._complete(deployment, body, api_version or "v1")

    def fault_response(self, rule: FaultRule) -> Response:
        """An injected error as this service answers it: a Retry-After also as retry-after-ms
        (what the ``openai`` client reads first) and the apim-request-id header."""
        response = rule.error_response()
        response.headers["apim-request-id"] = str(uuid.uuid4())
        if rule.retry_after is not None:
            response.headers["retry-after-ms"] = str(rule.retry_after * 1000)
        return response

    # -- steps ----------------------------------------------------------------------------------
    def _account(self, host: str) -> dict[str, Any] | None:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        label, _, suffix = name.lower().rstrip(".").partition(".")
        if suffix not in HOST_SUFFIXES:
            return None
        for account in self.world.list_by_type(ACCOUNT_TYPE):
            sub = str((account.get("properties") or {}).get("customSubDomainName") or "")
            if sub.lower() == label:
                return account
        return None

    def _entrance_refusal(self, props: dict[str, Any]) -> Response | None:
        if self.entrance != "public":  # through an Approved private endpoint: no firewall
            return None
        denied = {"policy_id": "ThrowExceptionDueToTrafficDenied"}
        if str(props.get("publicNetworkAccess", "Enabled")).lower() == "disabled":
            return _error(403, "403", PUBLIC_ACCESS_DISABLED, **denied)
        acls = props.get("networkAcls") or {}
        if str(acls.get("defaultAction", "Allow")).lower() == "deny":
            return _error(403, "403", FIREWALL_DENIED, **denied)
        return None

    def _auth_refusal(self, request: Request, account: dict[str, Any]) -> Response | None:
        keys = account_keys(self.world, account)
        key = request.headers.get("api-key")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if key is None and scheme.lower() == "bearer" and _matches(token.strip(), keys):
            key = token.strip()  # the v1 API also takes the key as a bearer token
        if key is not None:
            if (account.get("properties") or {}).get("disableLocalAuth"):
                return _error(403, "AuthenticationTypeDisabled", LOCAL_AUTH_DISABLED)
            return None if _matches(key, keys) else _error(401, "401", INVALID_KEY)
        if scheme.lower() == "bearer" and token.strip():
            return None
        if scheme.lower() == "bearer":
            return Response(401, {"statusCode": 401, "message": BAD_TOKEN}, _headers({}))
        return _error(401, "401", INVALID_KEY)

    def _complete(
        self, deployment: dict[str, Any], body: dict[str, Any], api_version: str
    ) -> Response:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _invalid_request("'messages' is a required property", "messages")
        if not all(isinstance(m, dict) and m.get("role") for m in messages):
            return _invalid_request("Each message needs a 'role'.", "messages")
        model = (deployment.get("properties") or {}).get("model") or {}
        if "max_tokens" in body and _REASONING.match(str(model.get("name", ""))):
            return _invalid_request(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            return _invalid_request(f"Invalid 'max_tokens': {limit!r}; expected an integer >= 1")
        model_id = _model_id(str(model.get("name", "")), str(model.get("version", "")))
        reply, finish = _reply(str(deployment.get("name")), model_id, limit)
        prompt = prompt_tokens(messages)
        completion = count_tokens(reply)
        capacity = int((deployment.get("sku") or {}).get("capacity") or 1)
        # Azure counts a request against the limit by its prompt plus max_tokens.
        over = self.limits.take(str(deployment["id"]), capacity, prompt + (limit or completion))
        if over is not None:
            return _rate_limited(api_version, over)
        choices = int(body.get("n") or 1) if isinstance(body.get("n"), int) else 1
        calls, tokens = self.limits.remaining(str(deployment["id"]), capacity)
        headers = _headers(
            {
                "x_ratelimit_remaining_requests": str(calls),
                "x_ratelimit_remaining_tokens": str(tokens),
            }
        )
        if body.get("stream"):
            return _stream(model_id, reply, finish, max(1, choices), headers)
        return Response(
            200,
            {
                "choices": [
                    {
                        "content_filter_results": _choice_filters(),
                        "finish_reason": finish,
                        "index": index,
                        "logprobs": None,
                        "message": {"content": reply, "refusal": None, "role": "assistant"},
                    }
                    for index in range(max(1, choices))
                ],
                "created": int(time.time()),
                "id": _completion_id(),
                "model": model_id,
                "object": "chat.completion",
                "prompt_filter_results": _prompt_filters(),
                "system_fingerprint": _fingerprint(model_id),
                "usage": _usage(prompt, completion * max(1, choices)),
            },
            headers,
        )


def _matches(key: str, keys: tuple[str, str]) -> bool:
    """``key`` is one of ``keys`` (constant-time comparison)."""
    return any(hmac.compare_digest(key.encode(), k.encode()) for k in keys)


def _route(request: Request) -> tuple[str | None, str | None] | None:
    """(deployment or None for v1, api-version) of a chat completions call, else None."""
    parts = [p for p in request.path.split("/") if p]
    version = request.query.get("api-version", "")
    if request.method != "POST" or parts[-2:] != ["chat", "completions"]:
        return None
    if len(parts) == 5 and parts[:2] == ["openai", "deployments"]:
        found = _API_VERSION.match(version)
        if found is None or found.group(1) < _FIRST_CHAT_VERSION:
            return None
        return parts[2], version
    if len(parts) == 4 and parts[:2] == ["openai", "v1"] and version in _V1_VERSIONS:
        return None, version or None
    return None


def _rate_limited(api_version: str, over: tuple[str, int]) -> Response:
    kind, seconds = over
    message = (
        f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        f"{api_version} have exceeded {kind} rate limit of your current OpenAI S0 pricing tier. "
        f"Please retry after {seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease "
        "if you would like to further increase the default rate limit."
    )
    policy = "DeploymentRatelimit-Token" if kind == "token" else "DeploymentRatelimit-Call"
    waits = {"retry_after": str(seconds), "retry_after_ms": str(seconds * 1000)}
    return _error(429, "429", message, policy_id=policy, **waits)


def _model_id(name: str, version: str) -> str:
    """What Azure reports as ``model``: a dated version is appended (gpt-4o-mini-2024-07-18)."""
    return f"{name}-{version}" if _DATED_VERSION.match(version) else name


def _reply(deployment: str, model_id: str, limit: int | None) -> tuple[str, str]:
    """The deterministic answer, cut to ``limit`` tokens (finish_reason "length" then)."""
    text = f"Hello from {model_id} on deployment {deployment}. This is the emulator's reply."
    tokens = _TOKEN.findall(text)
    if limit is None or len(tokens) <= limit:
        return text, "stop"
    end = 0
    for match in list(_TOKEN.finditer(text))[:limit]:
        end = match.end()
    return text[:end], "length"


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "completion_tokens": completion,
        "completion_tokens_details": {
            "accepted_prediction_tokens": 0,
            "audio_tokens": 0,
            "reasoning_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
        "prompt_tokens": prompt,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        "total_tokens": prompt + completion,
    }


def _choice_filters() -> dict[str, Any]:
    return {
        "hate": dict(_SAFE),
        "protected_material_code": dict(_NOT_DETECTED),
        "protected_material_text": dict(_NOT_DETECTED),
        "self_harm": dict(_SAFE),
        "sexual": dict(_SAFE),
        "violence": dict(_SAFE),
    }


def _prompt_filters() -> list[dict[str, Any]]:
    results = {
        "hate": dict(_SAFE),
        "jailbreak": dict(_NOT_DETECTED),
        "self_harm": dict(_SAFE),
        "sexual": dict(_SAFE),
        "violence": dict(_SAFE),
    }
    return [{"prompt_index": 0, "content_filter_results": results}]


def _completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:29]


def _fingerprint(model_id: str) -> str:
    return "fp_" + hashlib.sha256(model_id.encode()).hexdigest()[:10]


def _stream(
    model_id: str, reply: str, finish: str, choices: int, headers: dict[str, str]
) -> Response:
    """The answer as server-sent events: Azure first sends the prompt filter results (no
    choices), then one chunk per choice's content, its finish, and ``[DONE]``."""
    first = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
    chunks: list[dict[str, Any]] = [{**first, "prompt_filter_results": _prompt_filters()}]
    base = {
        "created": int(time.time()),
        "id": _completion_id(),
        "model": model_id,
        "object": "chat.completion.chunk",
        "system_fingerprint": _fingerprint(model_id),
    }
    for index in range(choices):
        content = {
            "content_filter_results": _choice_filters(),
            "delta": {"content": reply, "refusal": None, "role": "assistant"},
            "finish_reason": None,
            "index": index,
            "logprobs": None,
        }
        end = {"delta": {}, "finish_reason": finish, "index": index, "logprobs": None}
        chunks += [{**base, "choices": [content]}, {**base, "choices": [end]}]
    events = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return Response(200, events.encode(), {**headers, "Content-Type": "text/event-stream"})

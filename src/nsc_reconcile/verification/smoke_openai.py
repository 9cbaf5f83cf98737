"""Smoke test "openai" (seed §5 phase 4): one short chat completion through each declared
model deployment, with the real `openai` client (``AzureOpenAI``), over the network as a client
inside the VNet sees it: the account's endpoint name resolved (CNAME chain, address), the TCP
connection made to that address (its loopback route on the emulator), TLS verified against the
real name. Credential: the account key from Key Vault, or an Entra ID token when local auth is
off. Writes nothing; costs one tiny completion per deployment. Never shows the key.
"""

from __future__ import annotations

import ipaddress
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nsc_reconcile.verification.context import Run, make_check, props_of
from nsc_reconcile.verification.netview import NoRouteError
from nsc_reconcile.verification.results import Check

# The newest GA data-plane api-version (Azure OpenAI inference spec, stable/2024-10-21).
API_VERSION = "2024-10-21"
PROMPT = "This is a connectivity test. Reply with the single word OK."
MAX_TOKENS = 5
MAX_RETRIES = 2  # 429/5xx/connection errors: the SDK retries, honouring retry-after(-ms)
TIMEOUT_SECONDS = 30.0
COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"


@dataclass
class _Path:
    """How this machine reaches one account's data plane (shared by its deployments)."""

    evidence: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    blocked: str = ""  # why no call can be made at all
    host: str = ""
    pins: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    key: str | None = None
    token: Callable[[], str] | None = None
    secrets: list[str] = field(default_factory=list)  # values never to show


def smoke_openai(run: Run) -> list[Check]:
    """The "openai" smoke (``verify --smoke openai``): one check per declared deployment of
    every declared account. Every deployment is called, not just the one the agent's
    ``azure-openai-deployment`` names: each is a model path somebody may use, and a tiny
    completion costs a few tokens."""
    if not run.state.openai_accounts:
        return [make_check("smoke-openai", "Smoke: openai", [], [],
                           skip="no OpenAI account declared")]  # fmt: skip
    checks: list[Check] = []
    for account in run.state.openai_accounts:
        if not account.deployments:
            skip = "the account declares no deployment"
            title = f"OpenAI smoke: {account.name}"
            checks.append(make_check(f"smoke-openai/{account.name}", title, [], [], skip=skip))
            continue
        path = _reach(run, account)
        for deployment in account.deployments:
            checks.append(_call(run, account, deployment, path))
    return checks


def _reach(run: Run, account: Any) -> _Path:
    """Endpoint, DNS, route and credential of ``account``: evidence, problems, or why blocked."""
    path = _Path()
    endpoint = props_of(run.wire(account.address)).get("endpoint")
    if not endpoint:
        path.blocked = f"the account {run.id_of(account.address)} does not exist or has no endpoint"
        return path
    path.host = urllib.parse.urlsplit(str(endpoint)).hostname or ""
    path.evidence.append(f"endpoint {endpoint}")
    try:
        resolution = run.network.resolve(path.host)
    except (OSError, ValueError) as error:
        path.blocked = f"cannot resolve {path.host}: {error}"
        return path
    path.evidence.append(f"DNS {resolution.describe()}")
    if not resolution.addresses:
        path.blocked = f"{path.host} does not resolve ({resolution.rcode})"
        return path
    address = resolution.addresses[0]
    public = not ipaddress.ip_address(address).is_private
    path.evidence.append(f"address {address}:443 ({'public' if public else 'private'})")
    if public and any(pe.target == account.address for pe in run.state.private_endpoints):
        path.problems.append(
            f"{path.host} resolved to the public address {address}, not to its private "
            "endpoint (privatelink record or zone link missing?)"
        )
    try:
        path.pins[(path.host, 443)] = run.network.dial(address, 443)
    except NoRouteError:
        path.blocked = f"no route: nothing answers at {address}:443 from here"
        return path
    except (OSError, ValueError) as error:
        path.blocked = f"cannot find the way to {address}:443: {error}"
        return path
    _credential(run, account, path)
    return path


def _credential(run: Run, account: Any, path: _Path) -> None:
    """The account key from Key Vault (the secret whose source is the account's key output),
    or an Entra ID token when local auth is disabled or no secret holds the key."""
    secret = _key_secret(run, account)
    if account.local_auth == "disabled" or secret is None:
        credential = run.clients.target.credential

        def token() -> str:
            value = credential.get_token(COGNITIVE_SCOPE).token
            path.secrets.append(value)
            return value

        path.token = token
        why = "local auth disabled" if account.local_auth == "disabled" else "no secret holds a key"
        path.evidence.append(f"auth Entra ID token ({why})")
        return
    try:
        path.key = run.secret_value(secret)
    except Exception as error:
        from nsc_reconcile.retry import describe_error

        path.blocked = f"could not read Key Vault secret {secret}: {describe_error(error)}"
        return
    path.secrets.append(path.key)
    path.evidence.append(f"auth api-key from Key Vault secret {secret}")
    if path.key != path.key.strip():
        path.problems.append(f"Key Vault secret {secret} has leading or trailing whitespace")


def _key_secret(run: Run, account: Any) -> str | None:
    if run.state.secrets is None:
        return None
    outputs = {f"{account.address}.primary_key", f"{account.address}.secondary_key"}
    for item in run.state.secrets.items:
        if item.source is not None and item.source.output in outputs:
            return str(item.name)
    return None


def _call(run: Run, account: Any, deployment: Any, path: _Path) -> Check:
    check_id = f"smoke-openai/{account.name}/{deployment.name}"
    title = f"OpenAI smoke: a chat completion through {account.name}/{deployment.name}"
    evidence = [*path.evidence, f"deployment {deployment.name}"]
    problems = list(path.problems)
    if path.blocked:
        return _check(check_id, title, evidence, [*problems, path.blocked], path)
    from openai import AzureOpenAI

    from nsc_reconcile.verification.pinned_http import pinned_client

    http = pinned_client(path.pins, run.network.ssl_context(), TIMEOUT_SECONDS)
    auth: dict[str, Any] = (
        {"api_key": path.key} if path.key else {"azure_ad_token_provider": path.token}
    )
    client = AzureOpenAI(azure_endpoint=f"https://{path.host}/", api_version=API_VERSION,
                         http_client=http, max_retries=MAX_RETRIES, **auth)  # fmt: skip
    started = time.perf_counter()
    try:
        answer = _complete(client, deployment.name)
    except Exception as error:  # the SDK's, or the credential's: the check says which
        evidence.append(f"failed after {_ms(started)} ms")
        return _check(check_id, title, evidence, [*problems, _cause(error)], path)
    finally:
        client.close()
    usage = answer.usage
    choice = answer.choices[0] if answer.choices else None
    evidence += [
        f"model {answer.model} (declared {deployment.model} {deployment.model_version})",
        f"latency {_ms(started)} ms",
        f"tokens prompt={usage.prompt_tokens if usage else '?'} "
        f"completion={usage.completion_tokens if usage else '?'} "
        f"total={usage.total_tokens if usage else '?'}",
        f"finish_reason={choice.finish_reason if choice else '-'}",
        f"reply {(choice.message.content or '')[:40]!r}" if choice else "no choice returned",
    ]
    if choice is None:
        problems.append("the answer holds no choice")
    return _check(check_id, title, evidence, problems, path)


def _complete(client: Any, deployment: str) -> Any:
    """One tiny completion; reasoning models refuse ``max_tokens`` (400 naming
    ``max_completion_tokens``), so they are asked again with that."""
    from openai import BadRequestError

    messages = [{"role": "user", "content": PROMPT}]
    try:
        return client.chat.completions.create(
            model=deployment, messages=messages, max_tokens=MAX_TOKENS
        )
    except BadRequestError as error:
        if "max_completion_tokens" not in str(error.message):
            raise
    return client.chat.completions.create(
        model=deployment, messages=messages, max_completion_tokens=MAX_TOKENS
    )


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _cause(error: Exception) -> str:
    """One line naming why the call failed (status, Azure's error code and message)."""
    from openai import APIConnectionError, APIStatusError, APITimeoutError

    if isinstance(error, APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        code = str(body.get("code") or body.get("statusCode") or "")
        message = str(body.get("message") or error.message)
        status = error.status_code
        if status == 404 and code == "DeploymentNotFound":
            return f"DeploymentNotFound (404): {message}"
        if status == 403 and "public access is disabled" in message.lower():
            return f"403 public access disabled: {message}"
        if status == 401:
            return f"401 unauthorized (wrong or rotated key, or bad token): {message}"
        if status == 429:
            return f"429 rate limited (after {MAX_RETRIES} retries): {message}"
        return f"{status} {code}: {message}"
    if isinstance(error, APITimeoutError):
        return f"no answer within {TIMEOUT_SECONDS:.0f} s"
    if isinstance(error, APIConnectionError):
        cause = error.__cause__
        return f"connection failed: {type(cause).__name__}: {cause}" if cause else str(error)
    return f"{type(error).__name__}: {error}"


def _check(
    check_id: str, title: str, evidence: list[str], problems: list[str], path: _Path
) -> Check:
    """The check, with every secret value the smoke handled scrubbed from its text."""
    return make_check(check_id, title, [_scrub(e, path) for e in evidence],
                      [_scrub(p, path) for p in problems])  # fmt: skip


def _scrub(text: str, path: _Path) -> str:
    """``text`` without any secret value, also as an error message may quote it (stripped, or
    escaped as in ``Illegal header value b'...\\n'``)."""
    for value in path.secrets:
        for form in sorted({value, value.strip(), repr(value)[1:-1]}, key=len, reverse=True):
            if form:
                text = text.replace(form, "(sensitive)")
    return text

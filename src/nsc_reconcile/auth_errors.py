"""One line saying why Azure authentication failed, from azure-identity's error.

`DefaultAzureCredential` raises one ClientAuthenticationError whose text lists every
credential it tried ("\\tEnvironmentCredential: Authentication failed: HTTPSConnection(host=
'login.microsoftonline.com', port=443): Failed to resolve ..."), after a sentence or two of
preamble and a troubleshooting link. This module finds the credential that actually failed and
names the cause (an unreachable login or managed-identity endpoint, an Entra ID error code), or
says that none is configured. Text only: no SDK import, no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# How azure-core/urllib3 describe a connection that could not be made (azure-identity 1.27).
_CONNECTION = re.compile(
    r"HTTPS?Connection\(host='(?P<host>[^']+)', port=(?P<port>\d+)\): (?P<why>.*)"
)
_AADSTS = re.compile(r"(AADSTS\d+): ([^.\r\n]*)")
_ATTEMPT = re.compile(r"^\t(?P<credential>\w+): (?P<reason>.*)$")
_UNAVAILABLE = (
    "unavailable",
    "not found on path",
    "not installed",
    "could not be found",
    "requires the",
    "no accounts were found",
    "not fully configured",
)
# Causes, by what the connection error says.
_WHY = (
    ("Failed to resolve", "name not resolved"),
    ("Name or service not known", "name not resolved"),
    ("Connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("Network is unreachable", "network unreachable"),
    ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
)
HINT = (
    "sign in with `az login`, set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, run "
    "where a managed identity is available, or use --emulator"
)
# What to check, by the start of the cause.
_HINTS = (
    ("login endpoint unreachable", "check the network path to it (firewall, HTTPS_PROXY)"),
    (
        "managed identity endpoint unreachable",
        "check the managed identity endpoint of this machine (IDENTITY_ENDPOINT or IMDS)",
    ),
    ("Entra ID refused", "check the client id, tenant and secret or certificate"),
)


@dataclass(frozen=True)
class Attempt:
    """One credential of the chain and what it said."""

    credential: str
    reason: str

    @property
    def unavailable(self) -> bool:
        """Not configured here (as opposed to configured and failing)."""
        lowered = self.reason.lower()
        return any(word in lowered for word in _UNAVAILABLE)


def attempts(message: str) -> list[Attempt]:
    """The credentials a DefaultAzureCredential/ChainedTokenCredential message lists, with
    their reasons (continuation lines joined); empty for another message."""
    found: list[Attempt] = []
    listing = False
    for line in message.splitlines():
        if line.startswith("Attempted credentials:"):
            listing = True
            continue
        if not listing:
            continue
        match = _ATTEMPT.match(line)
        if match:
            found.append(Attempt(match["credential"], match["reason"].strip()))
        elif found and line.strip() and not line.startswith("To mitigate"):
            last = found.pop()
            found.append(Attempt(last.credential, f"{last.reason} {line.strip()}"))
    return found


def cause(credential: str, reason: str) -> str:
    """What went wrong for one credential, in a few words."""
    connection = _CONNECTION.search(reason)
    if connection is not None:
        what = "managed identity endpoint" if "ManagedIdentity" in credential else "login endpoint"
        why = next((short for text, short in _WHY if text in connection["why"]), None)
        detail = why or _first_sentence(connection["why"])
        return f"{what} unreachable: {connection['host']}:{connection['port']} ({detail})"
    code = _AADSTS.search(reason)
    if code is not None:
        return f"Entra ID refused the sign-in: {code[1]}: {code[2].strip()}"
    return _first_sentence(reason.removeprefix("Authentication failed: "))


def describe_auth_error(error: BaseException) -> str:
    """One line: why no token could be had, naming the credential that failed."""
    message = str(error)
    tried = attempts(message)
    if not tried:  # a single credential's error (or something else)
        for link in _chain(error):
            if _CONNECTION.search(str(link)) or _AADSTS.search(str(link)):
                message = str(link)
                break
        return _line(cause(type(error).__name__, message))
    failed = [a for a in tried if not a.unavailable]
    if failed:
        first = failed[0]
        return _line(f"{cause(first.credential, first.reason)} ({first.credential})")
    names = ", ".join(a.credential.removesuffix("Credential") for a in tried)
    return f"cannot authenticate to Azure: no credential is configured (tried {names}); {HINT}"


def _line(found: str) -> str:
    hint = next((h for start, h in _HINTS if found.startswith(start)), HINT)
    return f"cannot authenticate to Azure: {found}; {hint}"


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions behind it (cause, context, azure-core's inner_exception)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        inner = getattr(current, "inner_exception", None)
        todo += [current.__cause__, current.__context__]
        if isinstance(inner, BaseException):
            todo.append(inner)
    return seen


def _first_sentence(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "no reason given"
    first = re.split(r"(?<=[a-z)])\. ", first, maxsplit=1)[0].rstrip(".")
    return first if len(first) <= 160 else first[:157] + "..."

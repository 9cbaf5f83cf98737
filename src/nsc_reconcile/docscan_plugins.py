"""detect-secrets plugins and filters that `scan-docs` adds to the library's own.

detect-secrets loads custom plugins and filters from a file (`file://...`), so this module is
self-contained: it imports only detect-secrets and the standard library. Every public class is
taken as a plugin, so base classes are imported under private names.
"""

from __future__ import annotations

import os
import re
from typing import Any

from detect_secrets.plugins import keyword as _keyword
from detect_secrets.plugins.base import BasePlugin as _BasePlugin
from detect_secrets.plugins.base import RegexBasedDetector as _RegexBasedDetector

# Documents where "password: x" / "secret = x" is written without quotes: detect-secrets'
# keyword rules for config files apply (its default for unknown types wants quotes).
DOCUMENT_EXTENSIONS = frozenset({".md", ".markdown", ".txt", ".text", ".rst", ".adoc", ".env"})


class DatabricksTokenDetector(_RegexBasedDetector):
    """Databricks personal access tokens: `dapi` + 32 hex digits, optionally `-N`
    (https://docs.databricks.com/en/dev-tools/auth/pat.html)."""

    secret_type = "Databricks Personal Access Token"
    denylist = (re.compile(r"\b(dapi[0-9a-f]{32}(?:-\d+)?)\b"),)


class LangfuseKeyDetector(_RegexBasedDetector):
    """LangFuse API keys: `sk-lf-...` (secret) and `pk-lf-...` (public, still a credential
    here: it is a Key Vault key of the plan)."""

    secret_type = "LangFuse API Key"
    denylist = (re.compile(r"\b([sp]k-lf-[0-9A-Za-z][0-9A-Za-z-]{15,})"),)


class AzureKeyDetector(_RegexBasedDetector):
    """Azure keys detect-secrets 1.5 has no plugin for: a Cognitive Services / OpenAI key
    after an `api-key` / `Ocp-Apim-Subscription-Key` header or setting (32 hex digits, or
    the 84-character format), a `SharedAccessKey=` of a Service Bus / Event Hubs connection
    string, and the `sig=` of a SAS token. Storage `AccountKey=` is detect-secrets' own."""

    secret_type = "Azure Key"
    denylist = (
        re.compile(
            r"(?i)\b(?:api-key|ocp-apim-subscription-key|azure[-_]openai[-_](?:api[-_])?key)"
            r"[\"']?\s*[:=]\s*[\"']?([0-9a-f]{32}|[A-Za-z0-9]{84})\b"
        ),
        re.compile(r"(?i)\bSharedAccessKey=([A-Za-z0-9+/]{40,}={0,2})"),
        re.compile(r"[?&]sig=([A-Za-z0-9%+/]{40,}(?:%3D|=){0,2})"),
    )


class DocumentKeywordDetector(_keyword.KeywordDetector):
    """detect-secrets' KeywordDetector, reading Markdown and text documents as it reads
    config files (`password: x` counts without quotes); other files as the library does."""

    secret_type = "Secret Keyword"

    def analyze_line(
        self,
        filename: str,
        line: str,
        line_number: int = 0,
        context: Any = None,
        **kwargs: Any,
    ) -> Any:
        if os.path.splitext(filename)[1].lower() not in DOCUMENT_EXTENSIONS:
            return super().analyze_line(filename, line, line_number, context, **kwargs)
        return _BasePlugin.analyze_line(
            self,
            filename=filename,
            line=line,
            line_number=line_number,
            context=context,
            denylist_regex_to_group=_keyword.CONFIG_DENYLIST_REGEX_TO_GROUP,
        )


# A value that names itself a credential is a reference to one (a Key Vault key name such
# as `langfuse-pg-admin-password`), not its value.
_SECRET_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)+")
_CREDENTIAL_WORD = re.compile(r"password|passwd|secret|token|key|credential|pwd")
_DIGEST_KEY = re.compile(
    r"(?i)(?:digest|hash|checksum|etag|thumbprint|fingerprint|sha\d*)\w*[\"']?\s*[:=]\s*[\"']?$"
)


def is_secret_name(secret: str) -> bool:
    """Filter: the value is a lowercase key name containing a credential word."""
    return bool(_SECRET_NAME.fullmatch(secret) and _CREDENTIAL_WORD.search(secret))


def is_prose(secret: str, plugin: Any) -> bool:
    """Filter: a keyword value holding spaces is a sentence ("password: kept in Key
    Vault"), not a credential."""
    return bool(getattr(plugin, "secret_type", "") == "Secret Keyword" and " " in secret)


def is_digest_field(secret: str, line: str) -> bool:
    """Filter: the value is assigned to a digest / hash / ETag / thumbprint field (a
    fingerprint of something, not a credential)."""
    at = line.find(secret)
    return at > 0 and bool(_DIGEST_KEY.search(line[:at]))

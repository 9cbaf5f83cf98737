"""Key Vault secrets and where their values come from; values never live in YAML.

A secret's value comes from a source: an output of another resource (the OpenAI key or
endpoint, the DCR's immutable id), an environment variable, a value generated once and kept,
or an external secret that must already exist. Only settings declared non-sensitive may be
literals, and a literal that looks like a credential is rejected.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Literal, Self

import re2
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from nsc_reconcile import kinds
from nsc_reconcile.model.base import NO_PLAINTEXT, Model, Reference, Resource, policy_violation

# `name` or `parent/name`: the key's parts cannot hold `/`, which keeps matching linear.
_OUTPUT_REF = re.compile(r"(?P<kind>[a-z_]+)/(?P<key>[^./\s]+(?:/[^./\s]+)?)\.(?P<output>[a-z_]+)")


def parse_output_ref(text: str) -> tuple[str, str, str] | None:
    """``openai_account/nsc-aoai-dev.primary_key`` -> (kind, key, output), or None."""
    match = _OUTPUT_REF.fullmatch(text)
    if match is None:
        return None
    return match["kind"], match["key"], match["output"]


def _shorten(value: str, limit: int = 60) -> str:
    """``value``, or its start and length when longer than ``limit`` (for messages)."""
    return value if len(value) <= limit else f"{value[:limit]}... ({len(value)} characters)"


class Generate(Model):
    """Generate a random value once, on first apply, and keep it (never regenerated)."""

    length: int = Field(default=32, ge=16, le=256, description="Characters to generate.")
    alphabet: Literal["alphanumeric", "hex", "urlsafe"] = Field(
        default="alphanumeric", description="Character set of the generated value."
    )
    prefix: str = Field(
        default="", max_length=16, description="Fixed prefix, e.g. `sk-lf-` for LangFuse keys."
    )


class SecretSource(Model):
    """Exactly one of the fields says where the value comes from."""

    output: str | None = Field(
        default=None,
        description="An output of another resource: `kind/name.output`, e.g. "
        "`openai_account/nsc-aoai-dev.primary_key`.",
    )
    env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of an environment variable holding the value at apply time.",
    )
    generate: Generate | None = Field(
        default=None, description="Generate once on first apply and keep."
    )
    external: Literal[True] | None = Field(
        default=None,
        description="Managed outside this tool: must already exist in the vault; never written.",
    )

    @field_validator("output")
    @classmethod
    def _output_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = parse_output_ref(value)
        if parsed is None:
            raise PydanticCustomError(
                "output_ref",
                "expected `kind/name.output` (e.g. openai_account/nsc-aoai-dev.endpoint), "
                "got '{value}'",
                {"value": _shorten(value)},
            )
        kind, _, output = parsed
        offered = kinds.outputs(kind)  # the outputs each kind registers (nsc_reconcile.kinds)
        if not offered:
            raise PydanticCustomError(
                "output_ref",
                "'{kind}' has no outputs; kinds with outputs: {kinds}",
                {"kind": kind, "kinds": ", ".join(kinds.kinds_with_outputs())},
            )
        if output not in offered:
            raise PydanticCustomError(
                "output_ref",
                "{kind} has no output '{output}'; expected one of: {names}",
                {"kind": kind, "output": output, "names": ", ".join(offered)},
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [
            name
            for name in ("output", "env", "generate", "external")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise PydanticCustomError(
                "secret_source",
                "exactly one of output, env, generate, external is expected (got {given})",
                {"given": ", ".join(given) or "none"},
            )
        return self


# RE2 (google-re2) matches in time linear in the input: no backtracking, so a hostile
# literal cannot make loading slow (Python's `re` took seconds on 40 KB here).
_CREDENTIAL_PATTERNS = re2.compile(
    "|".join(
        f"(?:{p})"
        for p in (
            r"(?i)\b(?:sk|pk)-(?:lf-)?[A-Za-z0-9_-]{8,}",  # OpenAI / LangFuse keys
            r"\bdapi[0-9a-f]{32}",  # Databricks personal access token
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.",  # JWT
            r"(?i)(?:accountkey|sharedaccesskey|password|pwd|secret|token)\s*[=:]\s*\S",
            r"(?i)[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",  # URL with user:password
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
            r"\bAKIA[0-9A-Z]{16}\b",
            r"(?i)\bsig=[A-Za-z0-9%]{16,}",  # SAS signature
        )
    )
)
_TOKEN = re2.compile(r"[A-Za-z0-9+/=_-]{20,}")


def looks_like_credential(value: str) -> bool:
    """True when ``value`` resembles a key, token, password or connection string.

    The one credential detector of the product (so it can move to another detector, e.g.
    detect-secrets, in one place). Time is linear in ``len(value)``."""
    if _CREDENTIAL_PATTERNS.search(value):
        return True
    # Long random-looking tokens: letters and digits mixed with high entropy.
    for token in _TOKEN.findall(value):
        has_digit = any(c.isdigit() for c in token)
        has_alpha = any(c.isalpha() for c in token)
        if has_digit and has_alpha and _entropy(token) >= 3.5:
            return True
    return False


def _entropy(text: str) -> float:
    counts = Counter(text)
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


class KeyVaultSecret(Resource):
    """A secret in the Key Vault, addressed as `key_vault_secret/<name>`."""

    kind = "key_vault_secret"

    source: SecretSource | None = Field(
        default=None, description="Where the value comes from (required unless `value`)."
    )
    value: str | None = Field(
        default=None,
        description="A literal, allowed only with `sensitive: false` for plain settings "
        "such as `agent-execute-mode`.",
    )
    sensitive: bool = Field(
        default=True,
        description="False only for plain settings; sensitive values are never displayed.",
    )
    allowed_values: list[str] | None = Field(
        default=None, description="For settings: the values that are accepted."
    )
    content_type: str | None = Field(default=None, description="Key Vault content type.")
    description: str | None = Field(
        default=None,
        max_length=200,
        description="What the key is for: its purpose in TEAM_CREDENTIALS.md (`docs`); "
        "default: the seed's note, else derived from its source. Never a value.",
    )

    @field_validator("description")
    @classmethod
    def _no_credential_text(cls, value: str | None) -> str | None:
        if value is not None and looks_like_credential(value):
            raise policy_violation(NO_PLAINTEXT, "this description looks like a credential")
        return value

    @model_validator(mode="after")
    def _value_rules(self) -> Self:
        if (self.source is None) == (self.value is None):
            raise PydanticCustomError(
                "secret_source", "exactly one of `source` or `value` is expected", {}
            )
        if self.value is not None:
            if self.sensitive:
                raise policy_violation(
                    NO_PLAINTEXT,
                    "a literal `value` is allowed only for non-secret settings "
                    "(`sensitive: false`); take a secret from a `source` "
                    "(output, env, generate, external)",
                )
            if looks_like_credential(self.value):
                raise policy_violation(
                    NO_PLAINTEXT,
                    "this literal looks like a credential (key, token, password or "
                    "connection string); take it from a `source` instead",
                )
            if self.allowed_values is not None and self.value not in self.allowed_values:
                raise PydanticCustomError(
                    "allowed_values",
                    "value '{value}' is not one of {allowed}",
                    {"value": _shorten(self.value), "allowed": ", ".join(self.allowed_values)},
                )
        return self

    def references(self) -> list[Reference]:
        if self.source is not None and self.source.output is not None:
            parsed = parse_output_ref(self.source.output)
            if parsed is not None:
                kind, key, _ = parsed
                return [Reference(("source", "output"), f"{kind}/{key}")]
        return []


class Secrets(Model):
    """Secrets of one Key Vault."""

    vault: str = Field(description="Name of the (existing) Key Vault, `key_vault/<name>`.")
    write_path: Literal["auto", "data_plane", "control_plane"] = Field(
        default="auto",
        description="How values are written: the vault's data plane, the ARM control plane "
        "(works from outside the VNet when the data plane is private), or `auto` (data plane, "
        "falling back to the control plane when the data plane refuses the connection).",
    )
    items: list[KeyVaultSecret] = Field(description="The secrets.")

"""Azure and Kubernetes naming rules, checked before any call: ``NameRule`` (each kind's is in
its KindSpec) and the rules of names that are fields, not kinds.

Lengths and characters follow Microsoft's "Naming rules and restrictions for Azure resources"
(and the Kubernetes DNS-1123 rules for workload objects). A name that breaks them would only
fail later, half-way through an apply; we reject it at load time instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    """Length bounds and a full-match pattern, with the wording shown to users."""

    min_length: int
    max_length: int
    pattern: str
    characters: str

    def check(self, name: str) -> str | None:
        """None when ``name`` is valid, else what is expected."""
        if not self.min_length <= len(name) <= self.max_length:
            return (
                f"must be {self.min_length}-{self.max_length} characters long "
                f"(got {len(name)}); {self.characters}"
            )
        if re.fullmatch(self.pattern, name) is None:
            return f"{self.characters} (got {name!r})"
        return None


_ALNUM_DASH_DOT_UNDERSCORE = NameRule(
    2,
    64,
    r"[A-Za-z0-9][A-Za-z0-9_.-]*[A-Za-z0-9_]|[A-Za-z0-9]",
    "alphanumerics, underscores, periods and hyphens; start with an alphanumeric and end with an "
    "alphanumeric or underscore",
)


def network_child(max_length: int, min_length: int = 1) -> NameRule:
    """The rule of a Microsoft.Network resource's name (VNet, subnet, NSG, rule, endpoint)."""
    return NameRule(
        min_length,
        max_length,
        _ALNUM_DASH_DOT_UNDERSCORE.pattern,
        _ALNUM_DASH_DOT_UNDERSCORE.characters,
    )


DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"

# Rules of names that are not a kind's own (a kind's rule is in its KindSpec, nsc_reconcile.kinds).
RULES: dict[str, NameRule] = {
    "resource_group": NameRule(
        1,
        90,
        r"[\w().-]*[\w()-]",
        "letters, digits, underscores, parentheses, hyphens and periods; not ending in a period",
    ),
    "subnet": network_child(80),
    "custom_subdomain": NameRule(
        2,
        64,
        r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?",
        "lower-case letters, digits and hyphens; start and end with a letter or digit",
    ),
    "postgresql_login": NameRule(
        1,
        63,
        r"[A-Za-z_][A-Za-z0-9_]*",
        "letters, digits and underscores; start with a letter or underscore; not a reserved "
        "name such as azure_superuser, admin, root, postgres",
    ),
    "action_group_short_name": NameRule(
        1, 12, r"[^:<>+/&%\\?|]+", "at most 12 characters (Azure's groupShortName)"
    ),
    "kubernetes_name": NameRule(
        1,
        63,
        r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?",
        "a DNS-1123 label: lower-case letters, digits and hyphens, starting and ending with a "
        "letter or digit",
    ),
}

_RESERVED_LOGINS = {"azure_superuser", "azure_pg_admin", "admin", "administrator", "root",
                    "guest", "public", "postgres"}  # fmt: skip


def check_name(rule: str, name: str) -> str | None:
    """None when ``name`` is valid for ``rule`` (a key of RULES), else what is expected."""
    problem = RULES[rule].check(name)
    if problem is None and rule == "postgresql_login" and name.lower() in _RESERVED_LOGINS:
        return f"{name!r} is reserved by Azure Database for PostgreSQL; choose another login"
    if problem is None and rule == "postgresql_login" and name.lower().startswith("pg_"):
        return "must not start with pg_ (reserved by PostgreSQL)"
    return problem

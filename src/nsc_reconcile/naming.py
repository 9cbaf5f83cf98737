"""Azure and Kubernetes naming rules, per resource kind, checked before any call.

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


def _network_child(max_length: int, min_length: int = 1) -> NameRule:
    return NameRule(
        min_length,
        max_length,
        _ALNUM_DASH_DOT_UNDERSCORE.pattern,
        _ALNUM_DASH_DOT_UNDERSCORE.characters,
    )


_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"

RULES: dict[str, NameRule] = {
    "resource_group": NameRule(
        1,
        90,
        r"[\w().-]*[\w()-]",
        "letters, digits, underscores, parentheses, hyphens and periods; not ending in a period",
    ),
    "virtual_network": _network_child(64, 2),
    "subnet": _network_child(80),
    "network_security_group": _network_child(80),
    "nsg_rule": _network_child(80),
    "private_endpoint": _network_child(64, 2),
    "private_dns_zone_link": _network_child(80),
    "private_dns_zone": NameRule(
        3,
        253,
        rf"(?:{_DNS_LABEL}\.){{1,33}}{_DNS_LABEL}",
        "a DNS name of 2-34 labels, each 1-63 letters, digits and hyphens",
    ),
    "openai_account": NameRule(
        2,
        64,
        r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
        "alphanumerics and hyphens; start and end with an alphanumeric",
    ),
    "custom_subdomain": NameRule(
        2,
        64,
        r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?",
        "lower-case letters, digits and hyphens; start and end with a letter or digit",
    ),
    "openai_deployment": NameRule(
        2,
        64,
        r"[A-Za-z0-9][A-Za-z0-9_.-]*",
        "alphanumerics, underscores, periods and hyphens; start with an alphanumeric",
    ),
    "postgresql_server": NameRule(
        3,
        63,
        r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?",
        "lower-case letters, digits and hyphens; not starting or ending with a hyphen",
    ),
    "postgresql_database": NameRule(
        1,
        63,
        r"[A-Za-z_][A-Za-z0-9_$]*",
        "letters, digits, underscores and $; start with a letter or underscore",
    ),
    "postgresql_login": NameRule(
        1,
        63,
        r"[A-Za-z_][A-Za-z0-9_]*",
        "letters, digits and underscores; start with a letter or underscore; not a reserved "
        "name such as azure_superuser, admin, root, postgres",
    ),
    "aks_cluster": NameRule(
        1,
        63,
        r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?",
        "alphanumerics, underscores and hyphens; start and end with an alphanumeric",
    ),
    "container_registry": NameRule(5, 50, r"[A-Za-z0-9]+", "alphanumerics only"),
    "key_vault": NameRule(
        3,
        24,
        r"[A-Za-z](?:(?!--)[A-Za-z0-9-])*[A-Za-z0-9]",
        "alphanumerics and hyphens; start with a letter, end with a letter or digit, no "
        "consecutive hyphens",
    ),
    "key_vault_secret": NameRule(1, 127, r"[A-Za-z0-9-]+", "alphanumerics and hyphens"),
    "log_analytics_workspace": NameRule(
        4,
        63,
        r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
        "alphanumerics and hyphens; start and end with an alphanumeric",
    ),
    "log_analytics_table": NameRule(
        4,
        63,
        r"[A-Za-z][A-Za-z0-9_]*_CL",
        "letters, digits and underscores; start with a letter; a custom table ends with _CL",
    ),
    "data_collection_rule": NameRule(
        3,
        44,
        r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?",
        "alphanumerics, underscores, periods and hyphens; start with an alphanumeric",
    ),
    "action_group": NameRule(
        1,
        260,
        r"[^:<>+/&%\\?|]*[^:<>+/&%\\?|. ]",
        "no : < > + / & % \\ ? | characters; not ending in a space or period",
    ),
    "action_group_short_name": NameRule(
        1, 12, r"[^:<>+/&%\\?|]+", "at most 12 characters (Azure's groupShortName)"
    ),
    "log_alert": NameRule(
        1,
        260,
        r"[^*<>%{}&:\\?/#|\x00-\x1f]*[^*<>%{}&:\\?/#|\x00-\x1f. ]",
        "no * < > % { } & : \\ ? / # | or control characters; not ending in a space or period",
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

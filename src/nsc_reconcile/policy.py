"""Cross-resource policy checks of the private-only architecture, before any call.

Field-level rules (public access, ACLs, firewall rules, Service type, Ingress, literal
credentials) live on the models; the ones that need two resources at once live here.
"""

from __future__ import annotations

from nsc_reconcile import kinds
from nsc_reconcile.graph import GraphIssue
from nsc_reconcile.model.base import NO_PLAINTEXT, SAFE_MODE, SEPARATE_DB
from nsc_reconcile.model.existing import ExistingPostgresqlServer
from nsc_reconcile.model.postgres import PostgresqlServer
from nsc_reconcile.model.secrets import parse_output_ref
from nsc_reconcile.model.state import DesiredState

EXECUTE_MODE_KEY = "agent-execute-mode"


def _violation(principle: str, message: str) -> str:
    return f"policy violation ({principle}): {message}"


def check_policy(state: DesiredState) -> list[GraphIssue]:
    """Every cross-resource policy problem of ``state``; empty when it complies."""
    issues: list[GraphIssue] = []
    issues += _langfuse_database(state)
    issues += _execute_mode(state)
    issues += _endpoint_zones(state)
    issues += _nsg_priorities(state)
    issues += _secret_sources(state)
    return issues


def _langfuse_database(state: DesiredState) -> list[GraphIssue]:
    if state.langfuse is None:
        return []
    server = state.langfuse.database.server
    for path, resource in state.resources():
        if resource.kind == "postgresql_server" and resource.name == server:
            business = isinstance(resource, ExistingPostgresqlServer | PostgresqlServer) and (
                resource.role == "business"
            )
            if business:
                return [
                    GraphIssue(
                        ("langfuse", "database", "server"),
                        _violation(
                            SEPARATE_DB,
                            f"{server} (declared at {'.'.join(map(str, path))}) is the business "
                            "database; LangFuse needs its own server",
                        ),
                    )
                ]
    return []


def _execute_mode(state: DesiredState) -> list[GraphIssue]:
    if state.secrets is None:
        return []
    issues = []
    for index, secret in enumerate(state.secrets.items):
        if secret.name != EXECUTE_MODE_KEY:
            continue
        if secret.value is None:
            issues.append(
                GraphIssue(
                    ("secrets", "items", index),
                    f"{EXECUTE_MODE_KEY} is a policy setting: give it a literal `value` "
                    "(dry-run or live) with `sensitive: false`",
                )
            )
        elif secret.value not in {"dry-run", "live"}:
            issues.append(
                GraphIssue(
                    ("secrets", "items", index, "value"),
                    f"{EXECUTE_MODE_KEY} must be 'dry-run' or 'live', got {secret.value!r}",
                )
            )
        elif secret.value == "live" and state.environment != "prod":
            issues.append(
                GraphIssue(
                    ("secrets", "items", index, "value"),
                    _violation(
                        SAFE_MODE,
                        f"'live' is allowed only in prod; this environment is "
                        f"{state.environment!r}: use 'dry-run'",
                    ),
                )
            )
    return issues


def _endpoint_zones(state: DesiredState) -> list[GraphIssue]:
    issues = []
    for index, endpoint in enumerate(state.private_endpoints):
        kind = endpoint.target.partition("/")[0]
        expected = kinds.private_link_groups(kind).get(endpoint.group_id, ())
        for zone_index, zone in enumerate(endpoint.dns_zone_group.zones):
            if expected and zone not in expected:
                issues.append(
                    GraphIssue(
                        ("private_endpoints", index, "dns_zone_group", "zones", zone_index),
                        f"zone {zone} does not resolve {kind} group {endpoint.group_id!r}; "
                        f"expected {' or '.join(expected)}",
                    )
                )
    return issues


def _nsg_priorities(state: DesiredState) -> list[GraphIssue]:
    seen: dict[tuple[str, str, int], str] = {}
    issues = []
    for index, rule in enumerate(state.nsg_rules):
        key = (rule.nsg, rule.direction, rule.priority)
        if key in seen:
            issues.append(
                GraphIssue(
                    ("nsg_rules", index, "priority"),
                    f"priority {rule.priority} is already used by {seen[key]} for "
                    f"{rule.direction} rules of {rule.nsg}; priorities are unique per direction",
                )
            )
        else:
            seen[key] = rule.name
    return issues


def _secret_sources(state: DesiredState) -> list[GraphIssue]:
    if state.secrets is None:
        return []
    issues = []
    for index, secret in enumerate(state.secrets.items):
        if secret.source is None or secret.source.output is None:
            continue
        parsed = parse_output_ref(secret.source.output)
        if parsed is None:
            continue
        kind, _, output = parsed
        if kinds.outputs(kind).get(output) and not secret.sensitive:
            issues.append(
                GraphIssue(
                    ("secrets", "items", index, "sensitive"),
                    _violation(
                        NO_PLAINTEXT,
                        f"{kind}.{output} is a credential; the secret must stay sensitive",
                    ),
                )
            )
    if state.langfuse is not None and state.langfuse.key_vault != state.secrets.vault:
        issues.append(
            GraphIssue(
                ("langfuse", "key_vault"),
                f"LangFuse reads its secrets from {state.langfuse.key_vault}, but the secrets "
                f"are declared in {state.secrets.vault}",
            )
        )
    for index, server in enumerate(state.postgresql_servers):
        name = server.admin_password.key_vault_secret
        declared = {s.name: s for s in state.secrets.items}
        password = declared.get(name)
        source = password.source if password is not None else None
        if password is not None and (source is None or (source.generate or source.env) is None):
            issues.append(
                GraphIssue(
                    ("postgresql_servers", index, "admin_password", "key_vault_secret"),
                    f"the admin password secret {name} must be generated or come from the "
                    "environment",
                )
            )
    return issues

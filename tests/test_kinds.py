"""The kind registry (nsc_reconcile.kinds): every kind registers once, with the model class and
reconciler the loader and engine actually use, and its tables are the ones the consumers read."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nsc_reconcile import kinds
from nsc_reconcile.model.base import Resource
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.resources import managed_reconcilers
from tests.paths import DESIRED_STATE


def _model_classes() -> dict[str, set[type[Resource]]]:
    found: dict[str, set[type[Resource]]] = {}
    stack = list(Resource.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str):
            found.setdefault(kind, set()).add(cls)
    return found


def test_every_model_kind_is_registered_with_its_classes() -> None:
    DesiredState  # noqa: B018  # every model module is imported
    specs = kinds.specs()
    for kind, classes in _model_classes().items():
        assert kind in specs, f"{kind} has a model but no KindSpec"
        registered = {specs[kind].model, specs[kind].existing_model} - {None}
        assert classes == registered, kind


def test_every_reconciler_is_reachable_from_its_spec() -> None:
    for kind, reconciler in managed_reconcilers().items():
        spec = kinds.spec(kind)
        assert spec is not None, kind
        assert spec.load_reconciler() is reconciler
    registered = {k for k, s in kinds.specs().items() if s.reconciler is not None}
    assert registered == set(managed_reconcilers())


def test_the_one_outputs_table_says_which_values_are_secrets() -> None:
    assert kinds.sensitive_outputs("openai_account") == {"primary_key", "secondary_key"}
    assert kinds.outputs("postgresql_server") == {"fqdn": False, "admin_login": False}
    assert kinds.sensitive_outputs("data_collection_rule") == frozenset()
    assert kinds.outputs("nsg_rule") == {}
    assert "log_analytics_workspace" in kinds.kinds_with_outputs()


def test_private_link_facts_come_from_the_target_kinds() -> None:
    assert kinds.private_link_kinds() == ["openai_account", "postgresql_server"]
    link = kinds.private_link("postgresql_server", "postgresqlServer")
    assert link is not None
    assert (link.zones[0], link.service_suffix, link.port) == (
        "privatelink.postgres.database.azure.com", "postgres.database.azure.com", 5432,
    )  # fmt: skip
    assert kinds.service_port("account") == 443
    assert kinds.service_port("vault") is None
    assert kinds.private_link("openai_account", "postgresqlServer") is None


def test_a_kind_registers_once() -> None:
    spec = kinds.spec("nsg_rule")
    assert spec is not None
    kinds.register(spec)  # the same spec again: harmless
    with pytest.raises(RuntimeError, match="registered twice"):
        kinds.register(kinds.KindSpec(kind="nsg_rule"))


def test_the_registry_imports_no_sdk() -> None:
    """Looking kinds up (as the model layer does) loads no reconciler and no Azure SDK."""
    code = (
        "import sys; from nsc_reconcile import kinds; kinds.specs(); "
        "bad = [m for m in sys.modules if m.startswith(('azure', 'nsc_reconcile.resources'))]; "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_kind_has_its_naming_rule_and_a_declared_collection() -> None:
    """A model kind without a rule could not validate a name; a spec naming a collection the
    desired state does not have would silently declare nothing."""
    for kind, spec in kinds.specs().items():
        assert spec.name_rule is not None, f"{kind} registers no naming rule"
        if spec.collection:
            assert spec.collection[0] in DesiredState.model_fields, kind
    assert kinds.name_rule("postgresql_server").check("Bad_Name") is not None
    assert kinds.name_rule("postgresql_server").check("pg-dev") is None


def test_creation_and_deletion_orders_come_from_the_phases() -> None:
    order = kinds.delete_order()
    # dependents first: an alert before its action group, an endpoint before its target,
    # a zone's links before the zone, children right before their parent
    for first, then in (
        ("log_alert", "action_group"),
        ("private_endpoint", "openai_account"),
        ("private_endpoint", "postgresql_server"),
        ("private_dns_zone_link", "private_dns_zone"),
        ("openai_deployment", "openai_account"),
        ("postgresql_database", "postgresql_server"),
        ("kubernetes_workload", "key_vault_secret"),
    ):
        assert order.index(first) < order.index(then), (first, then)
    collections = [s.collection for s in kinds.managed()]
    assert collections.index(("openai_accounts",)) < collections.index(("private_endpoints",))
    assert collections.index(("secrets", "items")) < collections.index(("langfuse",))


def test_state_and_graph_read_collections_children_and_parents_from_the_specs() -> None:
    from nsc_reconcile.graph import build_graph
    from nsc_reconcile.loader import load_desired_state

    state = load_desired_state(DESIRED_STATE)
    paths = {r.address: p for p, r in state.resources()}
    deployment = next(a for a in paths if a.startswith("openai_deployment/"))
    assert paths[deployment][0] == "openai_accounts"
    assert paths[deployment][2] == "deployments"  # the account spec's `children`
    graph, issues = build_graph(state)
    assert issues == []
    account = f"openai_account/{deployment.split('/')[1]}"
    assert account in graph.depends_on[deployment]  # the spec's Parent, not references()
    secret = next(a for a in paths if a.startswith("key_vault_secret/"))
    assert any(t.startswith("key_vault/") for t in graph.depends_on[secret])


def test_clients_existing_reads_and_retry_entries_come_from_the_specs() -> None:
    from nsc_reconcile.resources import _EXISTING
    from nsc_reconcile.retry import RetryPolicy

    for kind, reconciler in managed_reconcilers().items():
        spec = kinds.spec(kind)
        assert spec is not None
        assert reconciler.sdk_clients == spec.sdk_clients != (), kind
    assert set(_EXISTING) == {k for k, s in kinds.specs().items() if s.existing_read}
    assert _EXISTING["key_vault"].sdk_clients == ("keyvault_mgmt",)
    policy = RetryPolicy()
    assert policy.operation_timeout("postgresql_server") == 2 * policy.operation_timeout("nsg_rule")

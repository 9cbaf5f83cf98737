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

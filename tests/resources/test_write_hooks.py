"""The generic write of ARM kinds (resources/base.py `ArmReconciler.write`) and its hooks.

No ARM kind overrides ``write``: each fills in hooks (``kept``, ``sent``, ``body``, ``send``,
``delete``). A change a kind's manual replace policy leaves to a person is refused by the
generic write itself, before any request, with the kind's own steps (the engine refuses it
first; this guards every other caller). Real SDK clients against the emulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.resources import managed_reconcilers, reconciler_for
from nsc_reconcile.resources.base import ArmReconciler, ReplacementNotAutomatedError
from tests.conftest import write_requests


def test_no_arm_kind_overrides_the_generic_write() -> None:
    arm = {k: r for k, r in managed_reconcilers().items() if isinstance(r, ArmReconciler)}
    assert "openai_account" in arm  # the table is the real one
    overriding = sorted(k for k, r in arm.items() if type(r).write is not ArmReconciler.write)
    assert overriding == []


# address, the field changed (model field -> new value), the refused path, a phrase of the
# kind's replace_steps.
MANUAL = [
    pytest.param(
        "openai_account/nsc-aoai-dev",
        {"custom_subdomain": "nsc-aoai-other-dev"},
        "properties.customSubDomainName",
        "delete and purge it deliberately",
        id="openai account subdomain",
    ),
    pytest.param(
        "postgresql_server/nsc-pg-langfuse-dev",
        {"admin_login": "langfuseowner"},
        "properties.administratorLogin",
        "migrate (dump/restore) by hand",
        id="postgresql server admin login",
    ),
    pytest.param(
        "postgresql_database/nsc-pg-langfuse-dev/langfuse",
        {"collation": "de_DE.utf8"},
        "properties.collation",
        "create a new database and migrate by hand",
        id="postgresql database collation",
    ),
]


@pytest.mark.parametrize(("address", "update", "path", "steps"), MANUAL)
def test_a_manual_replacement_is_refused_by_write_before_any_request(
    applied: DesiredState,
    clients: Any,
    ctl: Callable[..., Any],
    address: str,
    update: dict[str, Any],
    path: str,
    steps: str,
) -> None:
    engine = Engine(applied, clients)
    resource = engine.graph.nodes[address]
    reconciler = reconciler_for(resource)
    live = reconciler.read(engine.context, resource)
    assert live is not None
    changed = resource.model_copy(update=update)
    ctl("DELETE", "requests")
    with pytest.raises(ReplacementNotAutomatedError) as refused:
        reconciler.write(engine.context, changed, live)
    assert str(refused.value).startswith(f"{address}: {path} cannot change in place")
    assert steps in str(refused.value)
    assert write_requests(ctl) == []
    # As it stands, the same resource is written (an update of nothing we own changes).
    reconciler.write(engine.context, resource, live)
    again = reconciler.read(engine.context, resource)
    assert again is not None
    assert reconciler.changes(reconciler.desired(engine.context, resource), again) == []

"""Model deployments and Azure's automatic model upgrades, through the real SDK clients and
the engine against the emulator: with an auto-upgrade option a newer live model version is no
change and is kept on later writes; with NoAutoUpgrade (or an older live version) it is drift
that apply repairs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import RESOURCE_GROUP
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Plan
from nsc_reconcile.retry import RetryPolicy
from tests.emulator.conftest import control

DEPLOYMENT = "openai_deployment/nsc-aoai-dev/gpt-4o-mini"
DECLARED = "2024-07-18"
NEWER = "2025-01-31"
AUTO_UPGRADES = ["OnceNewDefaultVersionAvailable", "OnceCurrentVersionExpired"]


def _state(seed_text: str, tmp_path: Path, option: str | None) -> DesiredState:
    text = seed_text
    if option is not None:
        old = "        capacity: 30\n"
        assert text.count(old) == 1
        text = text.replace(old, f"{old}        version_upgrade_option: {option}\n")
    path = tmp_path / "desired_state.yaml"
    path.write_text(text, encoding="utf-8")
    return load_desired_state(path)


def _deployment_id(emu: Emulator) -> str:
    return (
        f"/subscriptions/{emu.world.subscription_id}/resourceGroups/{RESOURCE_GROUP}"
        "/providers/Microsoft.CognitiveServices/accounts/nsc-aoai-dev/deployments/gpt-4o-mini"
    )


@pytest.fixture
def run(emu: Emulator) -> Callable[..., Engine]:
    control(emu, "POST", "config", {"lro_seconds": {"*": 0}})
    clients = Clients(AzureTarget.for_emulator(emu.info["arm"]))

    def make(state: DesiredState) -> Engine:
        return Engine(state, clients, retry=RetryPolicy(attempts=3, initial_wait_s=0.01))

    return make


def _plan(run: Callable[..., Engine], state: DesiredState) -> Plan:
    return run(state).plan(targets=[DEPLOYMENT])


def _apply(run: Callable[..., Engine], state: DesiredState) -> Any:
    engine = run(state)
    result = engine.apply(engine.plan(targets=[DEPLOYMENT]))
    assert result.ok, [r.detail for r in result.resources]
    return result


def _azure_moves(emu: Emulator, version: str, **sku: Any) -> None:
    """What Azure does on its own: the deployment now runs ``version`` (and ``sku``)."""
    live = emu.world.get(_deployment_id(emu))
    assert live is not None
    live["properties"]["model"]["version"] = version
    live["sku"].update(sku)
    control(emu, "PUT", f"state?id={_deployment_id(emu)}", live)


def _live_version(emu: Emulator) -> str:
    live = emu.world.get(_deployment_id(emu))
    assert live is not None
    return str(live["properties"]["model"]["version"])


@pytest.mark.parametrize("option", AUTO_UPGRADES)
def test_auto_upgrade_to_a_newer_version_is_no_change(
    option: str, emu: Emulator, run: Callable[..., Engine], seed_text: str, tmp_path: Path
) -> None:
    state = _state(seed_text, tmp_path, option)
    _apply(run, state)
    live = emu.world.get(_deployment_id(emu))
    assert live is not None
    assert live["properties"]["versionUpgradeOption"] == option
    _azure_moves(emu, NEWER)

    deployment = _plan(run, state).get(DEPLOYMENT)
    assert deployment.action is Action.UNCHANGED, deployment.changes


def test_auto_upgraded_version_is_kept_when_another_field_is_written(
    emu: Emulator, run: Callable[..., Engine], seed_text: str, tmp_path: Path
) -> None:
    state = _state(seed_text, tmp_path, "OnceNewDefaultVersionAvailable")
    _apply(run, state)
    _azure_moves(emu, NEWER, capacity=10)

    deployment = _plan(run, state).get(DEPLOYMENT)
    assert [(c.path, c.before, c.after) for c in deployment.changes] == [("sku.capacity", 10, 30)]
    _apply(run, state)
    assert _live_version(emu) == NEWER  # not downgraded to the declared version
    assert _plan(run, state).get(DEPLOYMENT).action is Action.UNCHANGED


def test_auto_upgrade_still_repairs_an_older_version(
    emu: Emulator, run: Callable[..., Engine], seed_text: str, tmp_path: Path
) -> None:
    state = _state(seed_text, tmp_path, "OnceNewDefaultVersionAvailable")
    _apply(run, state)
    _azure_moves(emu, "2024-05-13")

    deployment = _plan(run, state).get(DEPLOYMENT)
    assert deployment.action is Action.UPDATE
    assert [(c.path, c.before, c.after) for c in deployment.changes] == [
        ("properties.model.version", "2024-05-13", DECLARED)
    ]


def test_no_auto_upgrade_plans_the_declared_version_back(
    emu: Emulator, run: Callable[..., Engine], seed_text: str, tmp_path: Path
) -> None:
    state = _state(seed_text, tmp_path, None)  # the seed: NoAutoUpgrade by default
    _apply(run, state)
    _azure_moves(emu, NEWER)

    deployment = _plan(run, state).get(DEPLOYMENT)
    assert deployment.action is Action.UPDATE
    assert [(c.path, c.before, c.after) for c in deployment.changes] == [
        ("properties.model.version", NEWER, DECLARED)
    ]
    _apply(run, state)
    assert _live_version(emu) == DECLARED

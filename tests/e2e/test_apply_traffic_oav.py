"""Our own requests, judged by Microsoft: the traffic of a full apply and a no-op plan of
desired_state.yaml is validated with oav against the REST specifications of the shared spec
pack. Every exchange must pass; those without a specification are listed."""

from __future__ import annotations

from pathlib import Path

from nsc_reconcile import apply, load_desired_state, plan
from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from tests.oav import validate_requests
from tests.paths import DESIRED_STATE


def test_apply_traffic_passes_oav(emu: Emulator, clients: Clients, tmp_path: Path) -> None:
    state = load_desired_state(DESIRED_STATE)
    result = apply(plan(state, clients), state, clients)
    assert result.ok, result.render()
    assert not plan(state, clients).has_changes
    verdict = validate_requests(emu.controls.requests(), tmp_path / "traffic")
    assert not verdict.failed, "\n".join([*verdict.failed, *verdict.details[:40]])
    assert len(verdict.passed) >= 80, verdict.output

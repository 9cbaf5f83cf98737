"""Container images end to end with the real clients (azure-mgmt-containerregistry's
importImage, the ACR data plane over HTTPS) against the emulator: a missing image is a create,
apply imports it pinned by digest, a rerun writes nothing; a tag pointing to another digest is
an update that imports over it (mode Force)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.changes import Action
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.registry import public_digest
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome
from nsc_reconcile.retry import RetryPolicy
from tests.paths import DESIRED_STATE

Ctl = Callable[..., Any]
FAST = RetryPolicy(attempts=5, initial_wait_s=0.05, max_wait_s=0.2)
WRITES = ("PUT", "PATCH", "DELETE", "POST")
WEB = public_digest("langfuse/langfuse", "3")
VALKEY = public_digest("valkey/valkey", "8")

OURS = ["container_image/langfuse-web", "container_image/valkey"]


def _state(tmp_path: Path, replace: tuple[str, str] | None = None) -> DesiredState:
    """The repository's desired state (its `container_images` pin these digests)."""
    text = DESIRED_STATE.read_text()
    assert f"digest: {WEB}" in text
    assert f"digest: {VALKEY}" in text
    if replace is not None:
        text = text.replace(*replace)
    path = tmp_path / "desired_state.yaml"
    path.write_text(text)
    return load_desired_state(path)


def _engine(emu: Emulator, state: DesiredState) -> Engine:
    return Engine(state, Clients(AzureTarget.for_emulator(emu.info["arm"])), retry=FAST)


def _writes(ctl: Ctl) -> list[tuple[str, str]]:
    """Write calls: the registry's token exchange (POST /oauth2/...) only reads."""
    return [
        (e["method"], e["path"])
        for e in ctl("GET", "requests")
        if e["method"] in WRITES and not e["path"].startswith("/oauth2/")
    ]


def _held(emu: Emulator) -> dict[str, dict[str, str]]:
    for registry, held in emu.world.images.items():
        if registry.endswith("/registries/nscacrdev"):
            return held
    return {}


def test_missing_images_are_imported_then_a_rerun_writes_nothing(
    emu: Emulator, ctl: Ctl, tmp_path: Path
) -> None:
    engine = _engine(emu, _state(tmp_path))
    plan = engine.plan(targets=OURS)
    assert {r.address: r.action for r in plan.resources if r.address in OURS} == dict.fromkeys(
        OURS, Action.CREATE
    )
    result = engine.apply(plan)
    assert {r.address: r.outcome for r in result.resources if r.address in OURS} == dict.fromkeys(
        OURS, Outcome.CREATED
    ), result.resources
    held = _held(emu)
    assert held["langfuse/langfuse"] == {"3": WEB}
    assert held["valkey/valkey"] == {"8": VALKEY}
    imports = [p for m, p in _writes(ctl) if m == "POST" and p.lower().endswith("/importimage")]
    assert len(imports) == 2

    ctl("DELETE", "requests")
    again = _engine(emu, _state(tmp_path))
    rerun = again.plan(targets=OURS)
    assert {r.address: r.action for r in rerun.resources if r.address in OURS} == dict.fromkeys(
        OURS, Action.UNCHANGED
    )
    again.apply(rerun)
    assert _writes(ctl) == []


def test_another_digest_under_the_tag_is_an_update_that_imports_over_it(
    emu: Emulator, ctl: Ctl, tmp_path: Path
) -> None:
    other = public_digest("langfuse/langfuse", "3.63.0")
    engine = _engine(emu, _state(tmp_path))
    engine.apply(engine.plan(targets=OURS))
    # Out of band, the tag was moved to another build of the image.
    _held(emu)["langfuse/langfuse"]["3"] = other

    ctl("DELETE", "requests")
    again = _engine(emu, _state(tmp_path))
    plan = again.plan(targets=OURS)
    found = {r.address: r for r in plan.resources if r.address in OURS}
    assert found["container_image/valkey"].action == Action.UNCHANGED
    web = found["container_image/langfuse-web"]
    assert web.action == Action.UPDATE
    assert [(c.path, c.before, c.after) for c in web.changes] == [("digest", other, WEB)]
    result = again.apply(plan)
    assert {r.address: r.outcome for r in result.resources}["container_image/langfuse-web"] == (
        Outcome.UPDATED
    )
    assert _held(emu)["langfuse/langfuse"]["3"] == WEB
    bodies = [e for e in ctl("GET", "requests") if e["path"].lower().endswith("/importimage")]
    assert len(bodies) == 1


def test_an_image_the_source_does_not_have_fails_naming_it(emu: Emulator, tmp_path: Path) -> None:
    unknown = "sha256:" + "0" * 64
    engine = _engine(emu, _state(tmp_path, (VALKEY, unknown)))
    result = engine.apply(engine.plan(targets=OURS))
    outcomes = {r.address: r for r in result.resources}
    assert outcomes["container_image/langfuse-web"].outcome == Outcome.CREATED
    failed = outcomes["container_image/valkey"]
    assert failed.outcome == Outcome.FAILED
    assert "valkey/valkey@" + unknown in str(failed.detail)
    assert "valkey/valkey" not in _held(emu)


@pytest.fixture(autouse=True)
def _fresh_registry(emu: Emulator) -> None:
    emu.world.images.clear()


def test_each_run_gets_its_own_registry_client(emu: Emulator) -> None:
    """The data-plane client is cached per Clients object, never by a reusable id(): a later
    run (another emulator, another credential) never gets an earlier run's client."""
    import gc
    import weakref
    from types import SimpleNamespace

    from nsc_reconcile.resources import managed_reconcilers

    reconciler: Any = managed_reconcilers()["container_image"]
    first = Clients(AzureTarget.for_emulator(emu.info["arm"]))
    second = Clients(AzureTarget.for_emulator(emu.info["arm"]))
    one = reconciler.client(SimpleNamespace(clients=first), "nscacrdev.azurecr.io")
    assert reconciler.client(SimpleNamespace(clients=first), "NSCACRDEV.azurecr.io") is one
    assert reconciler.client(SimpleNamespace(clients=second), "nscacrdev.azurecr.io") is not one
    gone = weakref.ref(first)
    del first, one
    gc.collect()
    assert gone() is None  # the cache kept no strong reference to the first run's clients
    assert second in reconciler._clients

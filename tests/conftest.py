"""Shared fixtures: the repository's files, and the emulator for tests that talk to it.

``emulator_session`` (session: one running baseline emulator) and ``emu`` (function: the same
emulator after POST reset, cleared faults and log), ``ctl`` (its control interface),
``clients`` (SDK clients wired to it), ``kube`` (a kubernetes client to its cluster, as
someone else would use it) and ``vault_client`` (the seed vault's data plane, as someone else
would use it); ``desired_state`` (the repository's desired_state.yaml, LROs made instant) and
``applied`` (the same, applied from the baseline, request log cleared after; ``apply_state``
does it for another state); ``verify_on`` runs ``verify`` with fresh clients to the emulator;
``run_cli`` runs the CLI in-process; ``state_with_webhook`` builds a desired state with a
webhook receiver.
With ``NSC_TRAFFIC_DIR`` set, all traffic served in the session is exported there as oav
exchanges at teardown. ``spec_pack``: the REST spec pack for oav (skips the test when there is
none).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient
from kubernetes import client as k8s
from ruamel.yaml import YAML

import nsc_reconcile
from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import AzureTarget, Clients
from nsc_reconcile.cli import main
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.traffic import export_exchanges
from nsc_reconcile.emulator.worlds import KEY_VAULT_NAME
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.verification import VerifyReport
from tests.oav import SpecPack, require_spec_pack
from tests.paths import DESIRED_STATE

# Loopback only, never through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def control(emu: Emulator, method: str, what: str, body: Any = None) -> Any:
    """Call ``{arm}/_emulator/{what}``; returns the decoded JSON answer (None when empty)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{emu.info['arm']}/_emulator/{what}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with _OPENER.open(request, timeout=10) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else None


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Emulator]:
    traffic_dir = os.environ.get("NSC_TRAFFIC_DIR")
    emulator = Emulator(world="baseline")
    emulator.controls.keep_history = bool(traffic_dir)
    emulator.start()
    try:
        yield emulator
    finally:
        if traffic_dir:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            export_exchanges(emulator.controls.history(), traffic_dir, prefix=f"{worker}-")
        emulator.stop()


@pytest.fixture
def emu(emulator_session: Emulator) -> Emulator:
    control(emulator_session, "POST", "reset")
    control(emulator_session, "DELETE", "faults")
    control(emulator_session, "DELETE", "requests")
    return emulator_session


@pytest.fixture
def kube(emu: Emulator) -> Iterator[k8s.ApiClient]:
    """A kubernetes client as someone else (kubectl) would use it."""
    configuration = k8s.Configuration()
    configuration.host = emu.info["kubernetes"]
    configuration.api_key = {"authorization": "Bearer someone-else"}
    with k8s.ApiClient(configuration) as api:
        yield api


@pytest.fixture
def ctl(emu: Emulator) -> Callable[..., Any]:
    """``ctl(method, what, body=None)``: the control interface of the test's emulator."""

    def call(method: str, what: str, body: Any = None) -> Any:
        return control(emu, method, what, body)

    return call


@pytest.fixture
def clients(emu: Emulator) -> Clients:
    """SDK clients wired to the emulator (fresh per test; no retries beyond azure-core's)."""
    return Clients(AzureTarget.for_emulator(emu.info["arm"]))


@pytest.fixture
def make_clients(emu: Emulator) -> Callable[..., Clients]:
    """Build clients with other settings, e.g. ``make_clients(retry_total=0)``."""

    def build(**kwargs: Any) -> Clients:
        return Clients(AzureTarget.for_emulator(emu.info["arm"], **kwargs))

    return build


@pytest.fixture
def seed_text() -> str:
    """The repository's desired_state.yaml, as text to mutate."""
    return DESIRED_STATE.read_text(encoding="utf-8")


@pytest.fixture
def desired_state(ctl: Callable[..., Any]) -> DesiredState:
    """The repository's desired_state.yaml, loaded; the emulator's LROs complete at once."""
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    return load_desired_state(DESIRED_STATE)


def apply_state(state: DesiredState, clients: Clients, ctl: Callable[..., Any]) -> DesiredState:
    """Plan and apply ``state`` through the library (asserting it succeeds, with the rendered
    result), then clear the emulator's request log; returns ``state``."""
    result = nsc_reconcile.apply(nsc_reconcile.plan(state, clients), state, clients)
    assert result.ok, result.render()
    ctl("DELETE", "requests")
    return state


@pytest.fixture
def applied(desired_state: DesiredState, clients: Clients, ctl: Callable[..., Any]) -> DesiredState:
    """The whole desired state applied from the baseline; request log cleared after."""
    return apply_state(desired_state, clients, ctl)


def verify_on(state: DesiredState, emu: Emulator, **kwargs: Any) -> VerifyReport:
    """``nsc_reconcile.verify(state, ...)`` with fresh clients to ``emu``, as a separate run."""
    return nsc_reconcile.verify(state, Clients(AzureTarget.for_emulator(emu.info["arm"])), **kwargs)


# Read-only POSTs: ARM "list" actions (listKeys, listClusterUserCredential).
LIST_ACTION = ("/listkeys", "/listclusterusercredential")
REGISTRY_TOKEN = ("/oauth2/exchange", "/oauth2/token")


def write_requests(ctl: Callable[..., Any]) -> list[str]:
    """Requests in the emulator's log that change something, as ``plane METHOD path``: any
    PUT/PATCH/DELETE, any POST but a list action or a registry token exchange (``POST
    /oauth2/exchange`` and ``/oauth2/token`` on the ACR data plane only read)."""
    found = []
    for request in ctl("GET", "requests"):
        method, path = request["method"], str(request["path"]).lower()
        if method in ("PUT", "PATCH", "DELETE") or (
            method == "POST"
            and not path.endswith(LIST_ACTION)
            and not path.startswith(REGISTRY_TOKEN)
        ):
            found.append(f"{request['plane']} {method} {request['path']}")
    return found


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process with ``args``; returns its exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


@pytest.fixture
def spec_pack() -> SpecPack:
    """The spec pack oav validates against (tests/oav.py); skips the test, with where it looked
    and how to get one, when there is none."""
    return require_spec_pack()


@pytest.fixture
def vault_client(emu: Emulator) -> Iterator[SecretClient]:
    """Someone else writing the vault (the portal, a runner inside the VNet), straight to
    the data plane."""
    with SecretClient(
        vault_url=emu.world.secrets.vault_url(KEY_VAULT_NAME),
        credential=Clients(AzureTarget.for_emulator(emu.info["arm"])).target.credential,
        connection_verify=emu.info["ca_cert"],
        verify_challenge_resource=False,
    ) as client:
        yield client


def state_with_webhook(tmp_path: Path) -> DesiredState:
    """The seed's desired state with a Teams webhook receiver whose URI is an external
    Key Vault secret (``teams-webhook-uri``), written to ``tmp_path``."""
    yaml = YAML(typ="safe")
    data = yaml.load(DESIRED_STATE.read_text(encoding="utf-8"))
    data["action_groups"][0]["webhook_receivers"] = [
        {"name": "teams-oncall", "uri_secret": "teams-webhook-uri"}
    ]
    data["secrets"]["items"].append({"name": "teams-webhook-uri", "source": {"external": True}})
    path = tmp_path / "desired_state.yaml"
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    return load_desired_state(path)

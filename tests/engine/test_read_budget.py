"""What reads cost, counted structurally (no timings): a no-op plan reads each resource once,
no Key Vault value but the MAC key (once), within a request budget, and imports no SDK module
in a worker thread (where the import lock would serialize reads); rewriting the LangFuse
Secret reads each value once. bench/speed.py measures the times."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client as k8s

import nsc_reconcile
from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import SDK_MODULES, AzureTarget, Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome
from nsc_reconcile.resources import _EXISTING, _RECONCILERS
from nsc_reconcile.resources.langfuse_manifests import secret_keys
from nsc_reconcile.resources.vault_mac import MAC_KEY_SECRET
from tests.paths import DESIRED_STATE

# Requests of a no-op plan of desired_state.yaml (measured: 71): one GET per resource (44,
# the LangFuse workload 7: namespace, 2 objects, 4 lists), the zone groups and A records of the
# 2 private endpoints (4), listKeys and listClusterUserCredential (2), the MAC key (2: Key
# Vault's auth challenge, then the GET) and the orphan search's list calls (13). A few spare.
# The consumers (issue 10): 17 grants, the agent identity and its credential (one GET each),
# their orphan lists (3: identities, credentials, the grants' list_for_resource_group) and one
# Microsoft Graph lookup (AzureDatabricks): 23. The six images: one HEAD each, one token
# exchange for the registry and one pull token per image: 13. Measured in all: 106.
REQUEST_BUDGET = 75 + 23 + 13
WORKLOAD = "kubernetes_workload/langfuse"
NAMESPACE, SECRET = "langfuse", "langfuse-secrets"

# Imports the spy records: first imports of a module in any thread but the main one.
_SPY = r"""
import json, sys, threading
main = threading.main_thread()
late = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if threading.current_thread() is not main and name.split(".")[0] in SDKS:
            late.append(name)
        return None
SDKS = {"azure", "kubernetes", "ruamel", "nsc_reconcile"}
sys.meta_path.insert(0, Spy())
from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import SDK_MODULES, AzureTarget, Clients
from nsc_reconcile.engine import Engine
plan = Engine(load_desired_state(sys.argv[1]), Clients(AzureTarget.for_emulator(sys.argv[2]))).plan()
print(plan.render("text"))
print(json.dumps({"late": sorted(set(late)), "changes": plan.has_changes}))
"""


@pytest.fixture
def applied(clients: Clients, ctl: Callable[..., Any]) -> DesiredState:
    """desired_state.yaml applied from the baseline; request log cleared after."""
    ctl("POST", "config", {"lro_seconds": {"*": 0}})
    state = load_desired_state(DESIRED_STATE)
    result = nsc_reconcile.apply(nsc_reconcile.plan(state, clients), state, clients)
    assert result.ok, result.render()
    ctl("DELETE", "requests")
    return state


def _key(request: dict[str, Any]) -> str:
    query = "&".join(f"{k}={v}" for k, v in sorted((request.get("query") or {}).items()))
    return f"{request['plane']} {request['method']} {request['path']}?{query}"


def test_a_no_op_plan_reads_each_resource_once_within_its_request_budget(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    plan = Engine(applied, Clients(AzureTarget.for_emulator(emu.info["arm"]))).plan()
    assert not plan.has_changes, plan.render()
    log: list[dict[str, Any]] = ctl("GET", "requests")
    assert not [r for r in log if r["method"] not in ("GET", "HEAD", "POST")], "a plan wrote"

    # Key Vault's challenge (401, no token) comes before the first call to a vault: not a read.
    # The registry client (azure-containerregistry) asks one pull token per repository scope
    # (the scope is in the POST body): one per image, not a repeated read.
    answered = [
        r for r in log
        if r["status"] != 401 and not (r["plane"] == "acr" and r["path"] == "/oauth2/token")
    ]  # fmt: skip
    repeated = {k: n for k, n in Counter(_key(r) for r in answered).items() if n > 1}
    assert not repeated, f"read more than once: {repeated}"

    values = [r["path"] for r in answered if r["plane"] == "keyvault" and r["method"] == "GET"]
    assert values == [f"/secrets/{MAC_KEY_SECRET}/"], "a plan reads no secret value but the key"
    assert len(log) <= REQUEST_BUDGET, f"{len(log)} requests: " + "\n".join(map(_key, log))


def test_rewriting_the_langfuse_secret_reads_each_vault_value_once(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any], kube: k8s.ApiClient
) -> None:
    # Someone deletes the Secret: a fresh run (nothing written in it) must read every value
    # it is filled from through the vault's data plane, each once.
    k8s.CoreV1Api(kube).delete_namespaced_secret(SECRET, NAMESPACE)
    ctl("DELETE", "requests")
    engine = Engine(applied, Clients(AzureTarget.for_emulator(emu.info["arm"])))  # as the CLI
    result = engine.apply(engine.plan())
    assert result.ok, result.render()
    assert result.get(WORKLOAD).outcome is Outcome.UPDATED
    reads = Counter(
        str(r["path"]).split("/")[2]
        for r in ctl("GET", "requests")
        if r["plane"] == "keyvault" and r["method"] == "GET" and r["status"] == 200
    )
    assert applied.langfuse is not None
    expected = {*secret_keys(applied.langfuse).values(), MAC_KEY_SECRET}
    assert set(reads) == expected
    assert {name: n for name, n in reads.items() if n > 1} == {}


@pytest.mark.usefixtures("applied")
def test_sdk_modules_are_imported_before_the_reads_start(emu: Emulator) -> None:
    # A fresh interpreter, as the CLI: any SDK module first imported in a worker thread holds
    # the import lock while other workers wait on it, between their round trips.
    done = subprocess.run(
        [sys.executable, "-c", _SPY, str(DESIRED_STATE), str(emu.info["arm"])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["changes"] is False, done.stdout
    assert found["late"] == [], "imported in a worker thread: " + ", ".join(found["late"])


def test_every_kind_names_the_clients_it_uses() -> None:
    # What the engine builds before its workers start: a kind naming none (or a name that is
    # no client) would import its SDK inside a worker again, or fail the plan.
    for kind, reconciler in {
        **_RECONCILERS,
        **{f"existing {k}": r for k, r in _EXISTING.items()},
    }.items():
        assert reconciler.sdk_clients, f"{kind} names no SDK client"
        unknown = [
            n for n in reconciler.sdk_clients if n not in SDK_MODULES or not hasattr(Clients, n)
        ]
        assert unknown == [], f"{kind}: {unknown}"

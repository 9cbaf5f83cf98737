"""End to end through the CLI: plan and apply the repository's desired_state.yaml against the
emulator with the real SDK clients — idempotency, drift, failure isolation, saved plans, and
no secret in any output."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.plans import PLAN_FORMAT
from tests.conftest import REGISTRY_TOKEN, run_cli
from tests.paths import DESIRED_STATE

WRITES = {"PUT", "PATCH", "DELETE"}
# Seed §3.6 names of Azure resources this tool creates (LangFuse on AKS is a separate kind).
SEED_CREATES = [
    "openai_account/nsc-aoai-dev",
    "postgresql_server/nsc-pg-langfuse-dev",
    "private_endpoint/nsc-pe-openai",
    "private_endpoint/nsc-pe-pg-langfuse",
    "private_dns_zone/privatelink.openai.azure.com",
    "action_group/nsc-ag-agent-dev",
    "log_alert/nsc-alert-triage-ready-dev",
    "log_alert/nsc-alert-approval-timeout-dev",
    "log_alert/nsc-alert-execution-failed-dev",
    "kubernetes_workload/langfuse",  # seed §3.6: no longer left out of plans
]
SEED_KEYS = [
    "azure-openai-api-key",
    "azure-openai-endpoint",
    "azure-openai-deployment",
    "langfuse-public-key",
    "langfuse-secret-key",
    "log-analytics-dcr-id",
    "agent-execute-mode",
]


def _openai_keys(arm: str) -> Any:
    from nsc_reconcile.azure import AzureTarget, Clients

    clients = Clients(AzureTarget.for_emulator(arm))
    return clients.cognitive.accounts.list_keys("2dt-final-team4", "nsc-aoai-dev")


def writes(log: list[dict[str, Any]]) -> list[str]:
    """Write requests of a request log (list* POST actions are reads, e.g. listKeys), except
    the apply lease's (lease.py): an apply that refuses a plan still took and released it,
    and the registry's token exchange (a POST that only reads)."""
    out = []
    for entry in log:
        method, path = entry["method"], entry["path"]
        if "/privateDnsZones/nsc-reconcile-lease." in path:
            continue
        if entry.get("plane") == "acr" and path.startswith(REGISTRY_TOKEN):
            continue  # the registry's token exchange: reading images needs it
        is_list_action = method == "POST" and path.rsplit("/", 1)[-1].lower().startswith("list")
        if method in WRITES or (method == "POST" and not is_list_action):
            out.append(f"{method} {path}")
    return out


@pytest.fixture
def arm(emu: Emulator) -> str:
    return str(emu.info["arm"])


def plan_json(capsys: pytest.CaptureFixture[str], arm: str) -> dict[str, Any]:
    code, out, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--format", "json"
    )
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def test_plan_apply_plan_converges_with_no_writes(
    arm: str, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--detailed-exitcode"
    )
    assert code == 2, err + out
    creates = {line.split()[-1] for line in out.splitlines() if line.startswith("+ create")}
    for address in SEED_CREATES + [f"key_vault_secret/{k}" for k in SEED_KEYS]:
        assert address in creates, f"{address} not planned for creation"
    assert not writes(ctl("GET", "requests")), "plan wrote"

    code, out, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")
    assert code == 0, out + err
    assert "Apply complete" in out

    ctl("DELETE", "requests")
    code, out, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--detailed-exitcode"
    )
    assert code == 0, out
    assert "No changes." in out
    log = ctl("GET", "requests")
    assert writes(log) == []
    gets = [e for e in log if e["plane"] == "arm" and e["method"] == "GET"]
    posts = [e["path"].rsplit("/", 1)[-1] for e in log
             if e["method"] == "POST" and e["plane"] == "arm"]  # fmt: skip
    plan = plan_json(capsys, arm)
    endpoints = [r for r in plan["resources"] if r["address"].startswith("private_endpoint/")]
    # One GET per resource; a private endpoint also reads its zone group and its A record
    # (so a deleted record is seen); the OpenAI key costs one listKeys, the LangFuse workload
    # one listClusterUserCredential (its kubeconfig; its reads go to the Kubernetes plane).
    # Orphans (docs/plan-format.md): one list call per listed kind in the resource group or
    # per declared parent, 13 for the seed.
    orphan_lists = 13
    assert len(gets) <= len(plan["resources"]) + 2 * len(endpoints) + orphan_lists, len(gets)
    assert sorted(posts) == ["listClusterUserCredential", "listKeys"]
    # The images: one HEAD each on the registry's data plane, after one token exchange for the
    # registry and one pull token per repository (POSTs that only read).
    images = [r for r in plan["resources"] if r["address"].startswith("container_image/")]
    assert len(images) == 6
    registry = sorted(
        f"{e['method']} {e['path'].split('/')[1]}" for e in log if e["plane"] == "acr"
    )
    assert registry == ["HEAD v2"] * len(images) + ["POST oauth2"] * (1 + len(images))

    ctl("DELETE", "requests")
    code, out, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")
    assert code == 0, out + err
    assert writes(ctl("GET", "requests")) == []


def _put_state(ctl: Callable[..., Any], rid: str, change: Callable[[dict[str, Any]], None]) -> None:
    body = ctl("GET", f"state?id={rid}")
    change(body)
    ctl("PUT", f"state?id={rid}", body)


def test_drift_is_shown_field_by_field_and_repaired(
    arm: str, emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")[0] == 0
    plan = plan_json(capsys, arm)
    ids = {r["address"]: r["id"] for r in plan["resources"]}
    sub = emu.info["subscription_id"]
    rg = f"/subscriptions/{sub}/resourceGroups/2dt-final-team4"

    _put_state(
        ctl, ids["openai_account/nsc-aoai-dev"],
        lambda b: b["properties"].__setitem__("publicNetworkAccess", "Enabled"),
    )  # fmt: skip
    _put_state(
        ctl, ids["log_alert/nsc-alert-triage-ready-dev"],
        lambda b: b["properties"].__setitem__("severity", 0),
    )  # fmt: skip
    rule = "nsg_rule/nsc-nsg-data-dev/allow-aks-to-openai-443"
    _put_state(
        ctl, ids[rule], lambda b: b["properties"].__setitem__("destinationPortRange", "8443")
    )
    record = f"{rg}/providers/Microsoft.Network/privateDnsZones/privatelink.openai.azure.com/A/nsc-aoai-dev"
    ctl("DELETE", f"state?id={record}")

    drifted = plan_json(capsys, arm)
    changed = {
        r["address"]: sorted(c["path"] for c in r["changes"])
        for r in drifted["resources"]
        if r["action"] != "unchanged" and r["action"] != "read"
    }
    assert changed.pop("openai_account/nsc-aoai-dev") == ["properties.publicNetworkAccess"]
    assert changed.pop("log_alert/nsc-alert-triage-ready-dev") == ["properties.severity"]
    assert changed.pop(rule) == ["properties.destinationPortRange"]
    endpoint = changed.pop("private_endpoint/nsc-pe-openai")
    assert len(endpoint) == 1, endpoint
    assert "privatelink.openai.azure.com" in endpoint[0], endpoint
    assert changed == {}

    code, out, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")
    assert code == 0, out + err
    code, out, _ = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--detailed-exitcode"
    )
    assert code == 0, out


def test_failure_on_one_branch_lets_the_others_finish_and_rerun_converges(
    arm: str, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ctl(
        "POST",
        "faults",
        [{"method": "PUT", "path": "flexibleServers/nsc-pg-langfuse-dev$", "action": "fail_lro",
          "code": "ServerProvisioningFailed", "count": 10000}],
    )  # fmt: skip
    code, out, _ = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")
    assert code == 1
    assert "ServerProvisioningFailed" in out  # the report says what failed, with the ARM code
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "failed" in lines["postgresql_server/nsc-pg-langfuse-dev"]
    assert "skipped" in lines["postgresql_database/nsc-pg-langfuse-dev/langfuse"]
    assert "skipped" in lines["private_endpoint/nsc-pe-pg-langfuse"]
    assert "created" in lines["openai_account/nsc-aoai-dev"]
    assert "created" in lines["private_endpoint/nsc-pe-openai"]
    assert "created" in lines["log_alert/nsc-alert-execution-failed-dev"]

    ctl("DELETE", "faults")
    assert run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes")[0] == 0
    code, out, _ = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--detailed-exitcode"
    )
    assert code == 0, out


def test_saved_plan_applies_exactly_and_refuses_when_stale(
    arm: str, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    code, _, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--out", str(saved)
    )
    assert code == 0, err
    assert json.loads(saved.read_text())["format"] == PLAN_FORMAT
    vnet_link = next(
        r for r in json.loads(saved.read_text())["resources"]
        if r["address"].startswith("private_dns_zone_link/privatelink.postgres")
    )  # fmt: skip
    _put_state(
        ctl, vnet_link["id"], lambda b: b["properties"].__setitem__("registrationEnabled", True)
    )
    ctl("DELETE", "requests")
    code, out, err = run_cli(capsys, "apply", str(saved), "--emulator", arm, "--yes")
    assert code == 1
    assert "live state moved" in err
    assert writes(ctl("GET", "requests")) == []

    code, _, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--out", str(saved)
    )
    code, out, err = run_cli(capsys, "apply", str(saved), "--emulator", arm, "--yes")
    assert code == 0, out + err


def test_no_secret_value_appears_in_any_output(
    arm: str,
    emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    saved = tmp_path / "plan.json"
    outputs: list[str] = []
    for fmt in ("text", "json", "markdown"):
        outputs += run_cli(capsys, "--debug", "plan", str(DESIRED_STATE), "--emulator", arm,
                       "--format", fmt)[1:]  # fmt: skip
    outputs += run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes",
                   "--format", "json")[1:]  # fmt: skip
    outputs += run_cli(capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--out", str(saved))[
        1:
    ]
    outputs.append(saved.read_text())
    outputs += [record.getMessage() for record in caplog.records]
    text = "\n".join(outputs)

    state = load_desired_state(DESIRED_STATE)
    assert state.secrets is not None
    plain = {s.name for s in state.secrets.items if not s.sensitive}  # shown on purpose
    store = emu.world.secrets
    values = [  # every sensitive secret the vault holds (generated, keys, external token)
        store.get("nsc-kv-dev", str(s["name"]))["value"]
        for s in store.list("nsc-kv-dev")
        if s["name"] not in plain
    ]
    values += [k.key1 for k in [_openai_keys(arm)]] + [_openai_keys(arm).key2]
    assert len(values) >= 10
    for value in values:
        assert value not in text, "a secret value leaked into the output"


def test_apply_without_yes_on_a_non_terminal_refuses_and_writes_nothing(
    arm: str, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm)
    assert code == 1
    assert "--yes" in err
    assert writes(ctl("GET", "requests")) == []


def test_target_limits_the_plan_to_a_resource_and_its_dependencies(
    arm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--format", "json",
        "--target", "private_dns_zone_link/privatelink.openai.azure.com/link-nsc-vnet-dev",
    )  # fmt: skip
    assert code == 0, err
    addresses = [r["address"] for r in json.loads(out)["resources"]]
    assert addresses == [
        "private_dns_zone/privatelink.openai.azure.com",
        "virtual_network/nsc-vnet-dev",
        "private_dns_zone_link/privatelink.openai.azure.com/link-nsc-vnet-dev",
    ]
    code, _, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--target", "nsg_rule/nope"
    )
    assert code == 1
    assert "no such resource" in err

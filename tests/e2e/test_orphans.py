"""Orphans through the CLI against the emulator: resources nsc-reconcile made for this
environment that the desired state no longer declares are listed in every plan ("not
declared; left in place"), `apply --prune` deletes them only after its own confirmation,
data-holding ones only with --allow-data-loss, and nothing without our marks is ever listed."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client as k8s
from ruamel.yaml import YAML

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.orphans import Orphan, deletion_order
from nsc_reconcile.plans import Plan
from nsc_reconcile.resources.base import to_wire
from nsc_reconcile.resources.network import rule_description, rule_mark
from tests.conftest import run_cli
from tests.paths import DESIRED_STATE

RG = "2dt-final-team4"
NSG = "nsc-nsg-data-dev"
RULE = "allow-databricks-to-pg-langfuse-5432"
ALERT = "nsc-alert-approval-timeout-dev"
SERVER = "nsc-pg-langfuse-dev"
BLOB = "privatelink.blob.core.windows.net"  # a zone (with a VNet link) no longer declared
VAULTS = "privatelink.vaultcore.azure.net"  # a shared zone no longer declared
# address -> what the plan says beside it (None: `apply --prune` deletes it)
ORPHANS = {
    f"nsg_rule/{NSG}/{RULE}": None,
    f"log_alert/{ALERT}": None,
    "kubernetes_workload/langfuse/Deployment/langfuse-old-worker": None,
    f"private_dns_zone/{BLOB}": None,
    f"private_dns_zone_link/{BLOB}/link-nsc-vnet-dev": None,  # listed as its zone's child
    f"postgresql_database/{SERVER}/scratch": "--allow-data-loss",
    "key_vault_secret/scratch-setting": "--allow-data-loss",
    f"private_dns_zone/{VAULTS}": "never pruned",
}
CHEAP = [a for a, note in ORPHANS.items() if note is None]
DATA = {a for a, note in ORPHANS.items() if note == "--allow-data-loss"}


def typed(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """What the user types at the prompts (stdin is not a terminal here)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def write_state(tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    yaml = YAML(typ="safe")
    data = yaml.load(DESIRED_STATE.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / name
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    return path


def with_extras(data: dict[str, Any]) -> None:
    """The seed plus a scratch database and a plain Key Vault setting (data-holding kinds),
    a zone with a VNet link, and a zone shared with other environments."""
    data["postgresql_servers"][0]["databases"].append({"name": "scratch"})
    data["secrets"]["items"].append({"name": "scratch-setting", "value": "on", "sensitive": False})
    data["private_dns_zones"] += [{"name": BLOB}, {"name": VAULTS, "shared": True}]
    data["private_dns_zone_links"].append(
        {"name": "link-nsc-vnet-${env}", "zone": BLOB, "virtual_network": "nsc-vnet-${env}"}
    )


def without_rule_and_alert(data: dict[str, Any]) -> None:
    """The seed (no scratch database or setting) without one NSG rule and one alert rule."""
    data["nsg_rules"] = [r for r in data["nsg_rules"] if r["name"] != RULE]
    data["log_alerts"] = [a for a in data["log_alerts"] if "approval-timeout" not in a["name"]]


def deletes(ctl: Callable[..., Any]) -> list[str]:
    """The DELETE requests of the log (any plane), except the apply lease's."""
    return [
        e["path"].split("?")[0]
        for e in ctl("GET", "requests")
        if e["method"] == "DELETE" and "nsc-reconcile-lease" not in e["path"]
    ]


def add_foreign_things(clients: Clients, kube: k8s.ApiClient) -> None:
    """What must never be listed (no marks, another environment's marks, or labels of no
    workload of ours), and one Kubernetes object this workload labelled and no longer
    declares (a renamed worker, say)."""
    from azure.mgmt.monitor.models import ActionGroupResource
    from azure.mgmt.network.models import SecurityRule

    rules = clients.network.security_rules
    for name, priority, description in (
        ("someone-elses-rule", 300, "added by the network team"),
        ("prods-rule", 310, rule_description(None, "prod")),
    ):
        body = SecurityRule({"properties": {
            "priority": priority, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
            "sourceAddressPrefix": "10.10.9.0/24", "sourcePortRange": "*",
            "destinationAddressPrefix": "10.10.1.0/24", "destinationPortRange": "22",
            "description": description,
        }})  # fmt: skip
        rules.begin_create_or_update(RG, NSG, name, body).result()
        made = to_wire(rules.get(RG, NSG, name))
        assert made["properties"]["description"] == description  # what the test relies on
    prods = ActionGroupResource(
        location="Global", group_short_name="prodag", enabled=True,
        tags={"managed-by": "nsc-reconcile", "nsc-environment": "prod"},
    )  # fmt: skip
    clients.monitor.action_groups.create_or_update(RG, "nsc-ag-agent-prod", prods)
    apps = k8s.AppsV1Api(kube)
    for name, labels in (
        ("langfuse-old-worker", {"app.kubernetes.io/managed-by": "nsc-reconcile",
                                 "app.kubernetes.io/part-of": "langfuse", "app": "old"}),
        ("someone-elses-job", {"app": "theirs"}),
    ):  # fmt: skip
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": labels["app"]}},
                "template": {
                    "metadata": {"labels": {"app": labels["app"]}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        }
        apps.create_namespaced_deployment("langfuse", cast(Any, deployment))


@pytest.fixture
def removed(
    tmp_path: Path,
    emu: Emulator,
    clients: Clients,
    kube: k8s.ApiClient,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """The seed plus extras applied, foreign things added; returns the desired state that no
    longer declares the extras, one NSG rule and one alert rule."""
    arm = str(emu.info["arm"])
    code, out, err = run_cli(
        capsys, "apply", str(write_state(tmp_path, "with.yaml", with_extras)),
        "--emulator", arm, "--yes",
    )  # fmt: skip
    assert code == 0, out + err
    add_foreign_things(clients, kube)
    return write_state(tmp_path, "removed.yaml", without_rule_and_alert)


def test_plan_lists_what_is_no_longer_declared_left_in_place(
    removed: Path, emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    arm = str(emu.info["arm"])
    ctl("DELETE", "requests")
    code, out, err = run_cli(capsys, "plan", str(removed), "--emulator", arm, "--detailed-exitcode")
    assert code == 0, out + err  # orphans are left in place: not a change
    assert f"Not declared; left in place ({len(ORPHANS)})" in out
    section = out.split("Not declared; left in place", 1)[1].split("\n\n", 1)[0]
    for address, note in ORPHANS.items():
        (line,) = [line for line in section.splitlines() if line.strip("- ").split()[0] == address]
        assert (note in line) if note else ("(" not in line), line
    for foreign in ("someone-elses-rule", "prods-rule", "nsc-ag-agent-prod", "someone-elses-job"):
        assert foreign not in out
    assert "apply --prune" in section
    assert deletes(ctl) == [], "plan deleted something"

    code, out, err = run_cli(capsys, "plan", str(removed), "--emulator", arm, "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    listed = {o["address"]: o["needs_allow_data_loss"] for o in document["orphans"]}
    assert listed == {a: a in DATA for a in ORPHANS}  # exactly these: nothing unmarked for dev
    shared = next(o for o in document["orphans"] if o["address"].endswith(VAULTS))
    assert (shared["environment"], shared["prunable"]) == ("shared", False)
    assert document["orphans_not_searched"] == []
    rule = next(o for o in document["orphans"] if o["address"].startswith("nsg_rule/"))
    assert rule["id"].endswith(f"/networkSecurityGroups/{NSG}/securityRules/{RULE}")
    assert rule["environment"] == "dev"

    code, out, err = run_cli(
        capsys, "plan", str(removed), "--emulator", arm, "--format", "markdown"
    )
    assert f"**Not declared; left in place** ({len(ORPHANS)})" in out
    assert f"`log_alert/{ALERT}`" in out


def test_prune_needs_its_own_confirmation_and_allow_data_loss(
    removed: Path,
    emu: Emulator,
    ctl: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arm = str(emu.info["arm"])
    ctl("DELETE", "requests")
    code, out, err = run_cli(capsys, "apply", str(removed), "--emulator", arm, "--yes")
    assert code == 0, out + err
    assert deletes(ctl) == [], "--yes without --prune deleted"

    typed(monkeypatch, "")  # no confirmation input
    code, out, err = run_cli(capsys, "apply", str(removed), "--emulator", arm, "--prune", "--yes")
    assert code == 1
    assert "prune not confirmed: nothing was written or deleted" in err
    typed(monkeypatch, "yes\n")  # the apply prompt's word is not the prune's
    code, out, err = run_cli(capsys, "apply", str(removed), "--emulator", arm, "--prune", "--yes")
    assert code == 1
    assert deletes(ctl) == []

    # A saved plan is the approval of its changes, not of a prune: that is still asked.
    saved = removed.parent / "reviewed"
    code, out, err = run_cli(capsys, "plan", str(removed), "--emulator", arm, "--out", str(saved))
    assert code == 0, err
    typed(monkeypatch, f"{len(CHEAP)}\n")
    code, out, err = run_cli(capsys, "apply", str(saved), "--emulator", arm, "--prune")
    assert code == 0, out + err
    assert f"Type {len(CHEAP)} or 'prune' to confirm" in err
    gone = deletes(ctl)
    assert any(p.endswith(f"/networkSecurityGroups/{NSG}/securityRules/{RULE}") for p in gone)
    assert any(p.endswith(f"/scheduledQueryRules/{ALERT}") for p in gone)
    assert any(p.endswith("/deployments/langfuse-old-worker") for p in gone)
    assert any(p.endswith(f"/privateDnsZones/{BLOB}") for p in gone)
    assert not any(VAULTS in p for p in gone), "a shared zone was pruned"
    assert not any("scratch" in p for p in gone), "a data-holding orphan went without consent"
    # Reverse dependency order: the workload's object, the alert rule, the NSG rule, the
    # zone's VNet link, then the zone (Azure refuses to delete a zone that has links).
    order = [next(i for i, p in enumerate(gone) if p.endswith(end))
             for end in ("langfuse-old-worker", ALERT, RULE, f"{BLOB}/virtualNetworkLinks/"
                         "link-nsc-vnet-dev", f"privateDnsZones/{BLOB}")]  # fmt: skip
    assert order == sorted(order)
    assert f"postgresql_database/{SERVER}/scratch" in out
    assert "--prune deletes it only with --allow-data-loss" in out + err
    result_lines = {line.split()[0]: line.split()[1] for line in out.splitlines() if "/" in line}
    assert result_lines[f"log_alert/{ALERT}"] == "deleted"
    assert result_lines[f"postgresql_database/{SERVER}/scratch"] == "kept"
    assert result_lines[f"private_dns_zone/{VAULTS}"] == "kept"

    code, out, err = run_cli(capsys, "plan", str(removed), "--emulator", arm, "--format", "json")
    left = {o["address"] for o in json.loads(out)["orphans"]}
    assert left == DATA | {f"private_dns_zone/{VAULTS}"}

    ctl("DELETE", "requests")
    typed(monkeypatch, "prune\n")
    code, out, err = run_cli(
        capsys, "apply", str(removed), "--emulator", arm, "--prune", "--yes", "--allow-data-loss"
    )
    assert code == 0, out + err
    gone = deletes(ctl)
    assert any(p.endswith(f"/flexibleServers/{SERVER}/databases/scratch") for p in gone), gone
    assert any(p.endswith("/secrets/scratch-setting") for p in gone), gone  # data plane
    assert not any(VAULTS in p for p in gone), "a shared zone was pruned"
    code, out, err = run_cli(capsys, "plan", str(removed), "--emulator", arm, "--format", "json")
    assert [o["address"] for o in json.loads(out)["orphans"]] == [f"private_dns_zone/{VAULTS}"]


def test_fresh_world_has_no_orphans_and_target_says_none_were_looked_for(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    arm = str(emu.info["arm"])
    code, out, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--format", "json"
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["orphans"] == []  # the baseline's existing resources carry no marks
    assert document["orphans_not_searched"] == []
    code, out, err = run_cli(
        capsys, "plan", str(DESIRED_STATE), "--emulator", arm,
        "--target", "private_dns_zone/privatelink.openai.azure.com",
    )  # fmt: skip
    assert "Orphans: not looked for: --target" in out


# ------------------------------------------------------------------------- values, no I/O
def test_orphans_survive_a_saved_plan_and_are_deleted_children_first() -> None:
    orphans = [
        Orphan(f"postgresql_server/{SERVER}", "/s", "dev", holds_data=True),
        Orphan(f"postgresql_database/{SERVER}/scratch", "/s/d", "dev", holds_data=True),
        Orphan("private_dns_zone/z.example", "/z", "shared"),
        Orphan("private_dns_zone_link/z.example/l", "/z/l", "dev"),
        Orphan(f"log_alert/{ALERT}", "/a", "dev"),
    ]
    plan = Plan("dev", "sub", RG, [], orphans=orphans)
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again.orphans == orphans
    order = [o.address.split("/", 1)[0] for o in deletion_order(orphans)]
    assert order == [
        "log_alert", "private_dns_zone_link", "private_dns_zone", "postgresql_database",
        "postgresql_server",
    ]  # fmt: skip
    assert orphans[2].refusal(allow_data_loss=True) is not None  # shared: never pruned
    assert orphans[0].refusal(allow_data_loss=False) is not None
    assert orphans[0].refusal(allow_data_loss=True) is None


def test_rule_description_mark_names_the_environment() -> None:
    assert rule_mark(rule_description("Only the allows", "dev")) == "dev"
    assert rule_mark(rule_description(None, "staging")) == "staging"
    assert rule_mark("added by the network team") is None
    assert rule_mark("see [nsc-reconcile:dev] above, then more") is None  # only at the end
    assert len(rule_description("x" * 116, "staging")) <= 140  # Azure's limit

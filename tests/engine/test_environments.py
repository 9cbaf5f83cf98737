"""Environments never touch each other's resources: ownership is `managed-by` plus
`nsc-environment`; a resource owned by another environment is blocked (not retagged) unless
every environment declares it `shared: true`. The shipped overlays keep prod and staging out of
dev's resources. Real SDK clients and the CLI against the emulator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.changes import Action
from nsc_reconcile.cli import main
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import RESOURCE_GROUP
from tests.paths import DESIRED_STATE

ZONE = "private_dns_zone/privatelink.openai.azure.com"
WRITES = {"PUT", "PATCH", "DELETE"}

# One zone in dev's resource group, linked to each environment's VNet link (the case:
# `--env prod` against the dev resource group).
BASE = """\
version: 1
environment: dev
location: koreacentral
resource_group: 2dt-final-team4
tags: {environment: "${env}"}
existing:
  virtual_networks:
    - name: nsc-vnet-${env}
      subnets: [{name: snet-data, role: private-endpoints}]
private_dns_zones:
  - name: privatelink.openai.azure.com
    %(zone_extra)s
private_dns_zone_links:
  - name: link-nsc-vnet-${env}
    zone: privatelink.openai.azure.com
    virtual_network: nsc-vnet-${env}
"""


def _files(tmp_path: Path, zone_extra: str = "tags: {}") -> Path:
    (tmp_path / "envs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "envs" / "prod.yaml").write_text("environment: prod\n", encoding="utf-8")
    path = tmp_path / "desired_state.yaml"
    path.write_text(BASE % {"zone_extra": zone_extra}, encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out + captured.err


def _zone_tags(ctl: Callable[..., Any], emu: Emulator) -> dict[str, str]:
    zone_id = (
        f"/subscriptions/{emu.info['subscription_id']}/resourceGroups/{RESOURCE_GROUP}"
        "/providers/Microsoft.Network/privateDnsZones/privatelink.openai.azure.com"
    )
    tags: dict[str, str] = ctl("GET", f"state?id={zone_id}")["tags"]
    return tags


def _prod_vnet(emu: Emulator) -> None:
    """Prod's own VNet, next to dev's (a zone links a VNet once)."""
    from azure.mgmt.network.models import VirtualNetwork

    from nsc_reconcile.azure import AzureTarget, Clients

    clients = Clients(AzureTarget.for_emulator(str(emu.info["arm"])))
    clients.network.virtual_networks.begin_create_or_update(
        RESOURCE_GROUP,
        "nsc-vnet-prod",
        VirtualNetwork(
            {
                "location": "koreacentral",
                "properties": {
                    "addressSpace": {"addressPrefixes": ["10.20.0.0/16"]},
                    "subnets": [
                        {"name": "snet-data", "properties": {"addressPrefix": "10.20.1.0/24"}}
                    ],
                },
            }
        ),
    ).result()


def _writes(ctl: Callable[..., Any]) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in ctl("GET", "requests") if r["method"] in WRITES]


def test_prod_against_devs_resources_is_blocked_not_retagged(
    tmp_path: Path, emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    arm = str(emu.info["arm"])
    path = _files(tmp_path)
    code, out = _run(capsys, "apply", str(path), "--emulator", arm, "--yes")
    assert code == 0, out
    assert _zone_tags(ctl, emu)["nsc-environment"] == "dev"

    ctl("DELETE", "requests")
    code, out = _run(capsys, "plan", str(path), "--env", "prod", "--emulator", arm)
    assert code == 1
    assert "belongs to environment dev (nsc-environment=dev)" in out
    assert "declare `shared: true`" in out  # the kind can be shared: say how
    code, out = _run(capsys, "apply", str(path), "--env", "prod", "--emulator", arm, "--yes")
    assert code == 1
    assert "nothing was written" in out
    assert _writes(ctl) == []
    tags = _zone_tags(ctl, emu)
    assert (tags["nsc-environment"], tags["environment"]) == ("dev", "dev")


def test_a_zone_declared_shared_serves_both_without_retagging(
    tmp_path: Path, emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    arm = str(emu.info["arm"])
    path = _files(tmp_path, zone_extra="shared: true")
    assert _run(capsys, "apply", str(path), "--emulator", arm, "--yes")[0] == 0
    tags = _zone_tags(ctl, emu)
    assert tags["nsc-environment"] == "shared"
    assert "environment" not in tags  # state-wide tags differ per environment: not on it

    _prod_vnet(emu)
    code, out = _run(capsys, "apply", str(path), "--env", "prod", "--emulator", arm, "--yes")
    assert code == 0, out
    assert "link-nsc-vnet-prod" in out
    assert _zone_tags(ctl, emu) == tags
    for env in ("dev", "prod"):
        code, out = _run(
            capsys, "plan", str(path), "--env", env, "--emulator", arm, "--detailed-exitcode"
        )
        assert code == 0, out


def test_a_zone_claimed_by_another_environment_as_shared_needs_shared_here_too(
    tmp_path: Path, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    arm = str(emu.info["arm"])
    shared = _files(tmp_path, zone_extra="shared: true")
    assert _run(capsys, "apply", str(shared), "--emulator", arm, "--yes")[0] == 0
    not_shared = _files(tmp_path / "other")
    code, out = _run(capsys, "plan", str(not_shared), "--env", "prod", "--emulator", arm)
    assert code == 1
    assert "is shared between environments" in out


def test_a_resource_without_an_environment_tag_is_claimed_only_with_adopt(
    tmp_path: Path, emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Made by an earlier version: managed-by only. Which environment owns it is unknown.
    arm = str(emu.info["arm"])
    path = _files(tmp_path)
    assert _run(capsys, "apply", str(path), "--emulator", arm, "--yes")[0] == 0
    zone = load_desired_state(path)
    zone_id = next(
        f"/subscriptions/{emu.info['subscription_id']}/resourceGroups/{zone.resource_group}"
        f"/providers/Microsoft.Network/privateDnsZones/{z.name}"
        for z in zone.private_dns_zones
    )
    stored = ctl("GET", f"state?id={zone_id}")
    del stored["tags"]["nsc-environment"]
    ctl("PUT", f"state?id={zone_id}", stored)

    code, out = _run(capsys, "plan", str(path), "--emulator", arm)
    assert code == 1
    assert "without an nsc-environment tag" in out
    assert "`adopt: true`" in out
    adopting = _files(tmp_path / "adopt", zone_extra="adopt: true")
    code, out = _run(capsys, "apply", str(adopting), "--emulator", arm, "--yes")
    assert code == 0, out
    assert _zone_tags(ctl, emu)["nsc-environment"] == "dev"


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_shipped_overlays_do_not_point_at_devs_resources(env: str) -> None:
    dev = load_desired_state(DESIRED_STATE)
    other = load_desired_state(DESIRED_STATE, env=env)
    assert other.resource_group != dev.resource_group

    def existing(state: Any) -> set[tuple[str, str, str]]:
        return {
            (r.kind, r.resource_group or state.resource_group, r.name)
            for _, r in state.resources()
            if r.existing
        }

    assert existing(other).isdisjoint(existing(dev))
    # Managed resources live in the environment's resource group; none is dev's.
    assert {r.address for r in other.managed() if r.address.startswith(ZONE)} == {ZONE}
    assert other.resource_group.endswith(env)


def test_plans_show_the_environment_tag_on_what_is_created(tmp_path: Path, emu: Emulator) -> None:
    path = _files(tmp_path)
    from nsc_reconcile.azure import AzureTarget, Clients
    from nsc_reconcile.engine import Engine

    clients = Clients(AzureTarget.for_emulator(str(emu.info["arm"])))
    plan = Engine(load_desired_state(path, env="prod"), clients).plan()
    zone = plan.get(ZONE)
    assert zone.action is Action.CREATE
    assert ("tags.nsc-environment", "prod") in {(c.path, c.after) for c in zone.changes}

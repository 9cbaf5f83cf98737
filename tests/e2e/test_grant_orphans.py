"""Removing a grant from the file revokes it: through the CLI against the emulator, a role
assignment apply wrote that no declared grant is (matched by Azure id, not by label) is listed
by every plan as an orphan, left in place, and `apply --prune` deletes exactly it. What a
person granted by hand, another environment's grants and an equal assignment a declared grant
reads are never orphans."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.resources.access import grant_description, grant_mark
from nsc_reconcile.resources.base import to_wire
from tests.conftest import run_cli, write_requests
from tests.paths import DESIRED_STATE

Ctl = Callable[..., Any]
RG = "2dt-final-team4"
GRANT = "agent-uses-openai"  # Cognitive Services OpenAI User on the OpenAI account
OPENAI = f"/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/nsc-aoai-dev"
DATABRICKS_APP = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"  # AzureDatabricks (first party)
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CALLER = "6f2c3c2e-0000-4000-8000-00000000e001"  # the emulator's signed-in user
ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"


def write_state(tmp_path: Path, change: Callable[[list[dict[str, Any]]], None]) -> Path:
    """desired_state.yaml with ``change`` applied to its role_assignments, in ``tmp_path``."""
    yaml = YAML(typ="safe")
    data = yaml.load(DESIRED_STATE.read_text(encoding="utf-8"))
    change(data["role_assignments"])
    path = tmp_path / "desired_state.yaml"
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    return path


def without_grant(grants: list[dict[str, Any]]) -> None:
    grants[:] = [g for g in grants if g["name"] != GRANT]


def another_principal(grants: list[dict[str, Any]]) -> None:
    for grant in grants:
        if grant["name"] == GRANT:
            grant["principal"] = {"application_id": DATABRICKS_APP}


def assignments(emu: Emulator) -> dict[str, dict[str, Any]]:
    """The emulator's role assignments by lower-cased id."""
    return {str(a["id"]).lower(): a for a in emu.world.list_by_type(ASSIGNMENTS)}


def labelled(emu: Emulator, label: str) -> dict[str, Any]:
    """The assignment apply wrote for the grant ``label``."""
    (found,) = [
        a for a in emu.world.list_by_type(ASSIGNMENTS)
        if (grant_mark(a["properties"].get("description")) or ("", None))[1] == label
    ]  # fmt: skip
    return found


def plan_json(capsys: pytest.CaptureFixture[str], path: Path, arm: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "plan", str(path), "--emulator", arm, "--format", "json")
    assert code == 0, out + err
    document: dict[str, Any] = json.loads(out)
    return document


def prune(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, path: Path, arm: str
) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO("prune\n"))  # the prune's own confirmation
    code, out, err = run_cli(capsys, "apply", str(path), "--emulator", arm, "--prune", "--yes")
    assert code == 0, out + err
    return out + err


def add_foreign_grants(clients: Clients, scope: str) -> dict[str, str]:
    """Reader for the signed-in user, under the resource group ``scope``: made by a person (no
    mark), by another environment (prod's mark), and by nsc-reconcile before labels (dev's
    mark in the old format; no grant declares it). Their lower-cased ids by what they are."""
    operations = clients.authorization.role_assignments
    sub = clients.target.subscription_id
    role = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{READER}"
    made = {}
    # One assignment per (scope, role, principal): each at its own scope.
    for what, where, name, description in (
        ("by hand", scope + OPENAI.split(RG, 1)[1], "11111111-0000-4000-8000-000000000001",
         "granted by hand for debugging"),
        ("prod", f"{scope}/providers/Microsoft.KeyVault/vaults/nsc-kv-dev",
         "11111111-0000-4000-8000-000000000002", grant_description("prod", "x")),
        ("old mark", scope, "11111111-0000-4000-8000-000000000003",
         "managed-by: nsc-reconcile; nsc-environment: dev"),
    ):  # fmt: skip
        created = operations.create(
            where,
            name,
            operations.models.RoleAssignmentCreateParameters(
                role_definition_id=role, principal_id=CALLER, principal_type="User",
                description=description,
            ),
        )  # fmt: skip
        made[what] = str(to_wire(created)["id"]).lower()
    return made


@pytest.mark.usefixtures("applied")
def test_a_removed_grant_is_an_orphan_and_prune_deletes_exactly_it(
    emu: Emulator,
    ctl: Ctl,
    clients: Clients,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arm = str(emu.info["arm"])
    rg = f"/subscriptions/{clients.target.subscription_id}/resourceGroups/{RG}"
    foreign = add_foreign_grants(clients, rg)
    removed = labelled(emu, GRANT)
    address = f"role_assignment/{GRANT}/{removed['name']}"
    path = write_state(tmp_path, without_grant)
    ctl("DELETE", "requests")

    code, out, err = run_cli(capsys, "plan", str(path), "--emulator", arm, "--detailed-exitcode")
    assert code == 0, out + err  # an orphan is left in place: not a change
    section = out.split("Not declared; left in place (2)", 1)[1].split("\n\n", 1)[0]
    listed = [line.strip("- ").split()[0] for line in section.splitlines()[1:]]
    old_mark = f"role_assignment/{foreign['old mark'].rsplit('/', 1)[1]}"
    assert listed == sorted([address, old_mark])  # the removed grant; one without a label
    assert "apply --prune" in section
    document = plan_json(capsys, path, arm)
    orphans = {o["address"]: o for o in document["orphans"]}
    assert set(orphans) == {address, old_mark}, orphans  # neither the hand-made nor prod's
    assert orphans[address]["id"].lower() == str(removed["id"]).lower()
    assert OPENAI.lower() in orphans[address]["id"].lower()  # its scope, in the id
    assert (orphans[address]["prunable"], orphans[address]["needs_allow_data_loss"]) == (
        True, False,
    )  # fmt: skip
    assert write_requests(ctl) == [], "a plan wrote"

    ctl("DELETE", "requests")
    said = prune(capsys, monkeypatch, path, arm)
    assert f"{address} deleted" in " ".join(said.split())
    # The confirmation says who loses which role on what, not only the address.
    asked = " ".join(said.split("apply --prune deletes", 1)[1].split())
    assert f"{address} grants Cognitive Services OpenAI User on openai_account/" in asked, said
    writes = [w for w in write_requests(ctl) if "nsc-reconcile-lease" not in w]  # apply's lease
    assert all(" DELETE " in w for w in writes), writes  # nothing else changed
    expected = {str(removed["id"]).lower(), foreign["old mark"]}
    assert {w.split(" ", 2)[2].split("?")[0].lower() for w in writes} == expected
    left = assignments(emu)
    assert str(removed["id"]).lower() not in left
    assert {foreign["by hand"], foreign["prod"]} <= left.keys()  # never ours to delete

    ctl("DELETE", "requests")
    again = plan_json(capsys, path, arm)
    assert again["orphans"] == []
    assert again["orphans_not_searched"] == []
    assert {r["action"] for r in again["resources"]} <= {"unchanged", "read"}
    assert write_requests(ctl) == []


@pytest.mark.usefixtures("applied")
def test_a_grant_to_another_principal_creates_the_new_and_orphans_the_old(
    emu: Emulator,
    ctl: Ctl,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arm = str(emu.info["arm"])
    old = labelled(emu, GRANT)
    path = write_state(tmp_path, another_principal)
    ctl("DELETE", "requests")
    document = plan_json(capsys, path, arm)
    assert write_requests(ctl) == [], "a plan wrote"
    actions = {r["address"]: r["action"] for r in document["resources"]}
    assert actions[f"role_assignment/{GRANT}"] == "create"
    assert [(o["address"], o["id"].lower()) for o in document["orphans"]] == [
        (f"role_assignment/{GRANT}/{old['name']}", str(old["id"]).lower())
    ]

    said = prune(capsys, monkeypatch, path, arm)
    assert f"role_assignment/{GRANT}/{old['name']} deleted" in " ".join(said.split())
    now = labelled(emu, GRANT)
    assert now["properties"]["principalId"] != old["properties"]["principalId"]
    assert str(old["id"]).lower() not in assignments(emu)
    again = plan_json(capsys, path, arm)
    assert again["orphans"] == []
    assert {r["action"] for r in again["resources"]} <= {"unchanged", "read"}


@pytest.mark.usefixtures("applied")
def test_an_equal_assignment_a_grant_reads_is_no_orphan(
    emu: Emulator,
    ctl: Ctl,
    clients: Clients,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ours under another name (e.g. written by an older version's naming): the declared
    grant's read finds it equal, so it is that grant, not an orphan, though its id is not the
    deterministic one."""
    arm = str(emu.info["arm"])
    mine = labelled(emu, GRANT)
    operations = clients.authorization.role_assignments
    props = mine["properties"]
    operations.delete_by_id(mine["id"])
    operations.create(
        props["scope"],
        "22222222-0000-4000-8000-000000000001",
        operations.models.RoleAssignmentCreateParameters(
            role_definition_id=props["roleDefinitionId"], principal_id=props["principalId"],
            principal_type=props["principalType"], description=props["description"],
        ),
    )  # fmt: skip
    ctl("DELETE", "requests")
    document = plan_json(capsys, DESIRED_STATE, arm)
    assert document["orphans"] == []
    actions = {r["address"]: r["action"] for r in document["resources"]}
    assert actions[f"role_assignment/{GRANT}"] == "unchanged"
    assert write_requests(ctl) == []


# ------------------------------------------------------------------------- values, no I/O
def test_the_description_mark_names_environment_and_label() -> None:
    assert grant_mark(grant_description("dev", "agent-uses-openai")) == ("dev", GRANT)
    assert grant_mark("managed-by: nsc-reconcile; nsc-environment: dev") == ("dev", None)
    assert grant_mark("managed-by: nsc-reconcile") is None  # no environment: not looked at
    assert grant_mark("copied from managed-by: nsc-reconcile; nsc-environment: dev") is None
    assert grant_mark(None) is None

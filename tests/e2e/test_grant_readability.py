"""Grants readable in plans and orphan lists, through the CLI against the emulator: each role
assignment to create reads `grants <role> on <scope> to <principal>` in the file's words
(its three ARM ids only with --verbose, folded in Markdown), and an orphaned grant's line names
its role, scope and principal, resolved from the list and the plan's reads without a call of
its own. Saved plans keep both; plans saved before them still load."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient
from ruamel.yaml import YAML

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.report import DESCRIBED_HINT
from nsc_reconcile.resources.access import grant_description, grant_mark
from nsc_reconcile.resources.base import to_wire
from nsc_reconcile.resources.grant_words import GrantWords
from tests.conftest import run_cli, write_requests
from tests.paths import DESIRED_STATE

RG = "2dt-final-team4"
IDENTITY = "user_assigned_identity/id-nsc-agent-dev"
DATABRICKS_APP = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"  # as the file names it
DATABRICKS = f"application {DATABRICKS_APP} (AzureDatabricks)"
KV_USER = "grants Key Vault Secrets User on key_vault_secret"
# desired_state.yaml's grants as a reviewer should read them (written by hand from the file).
EXPECTED = {
    "deployer-writes-secrets": "grants Key Vault Secrets Officer on key_vault/nsc-kv-dev to "
    "the caller",
    "kubelet-pulls-images": "grants AcrPull on container_registry/nscacrdev to kubelet of "
    "aks_cluster/nsc-aks-dev",
    "agent-reads-agent-execute-mode": f"{KV_USER}/agent-execute-mode to {IDENTITY}",
    "agent-uses-openai": "grants Cognitive Services OpenAI User on "
    f"openai_account/nsc-aoai-dev to {IDENTITY}",
    "agent-sends-events": "grants Monitoring Metrics Publisher on "
    f"data_collection_rule/nsc-dcr-agent-events-dev to {IDENTITY}",
    "databricks-reads-langfuse-secret-key": f"{KV_USER}/langfuse-secret-key to {DATABRICKS}",
}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
STRANGER = "22222222-0000-4000-8000-000000000009"  # an object id no declared principal has
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run_cli(capsys, *args)
    assert code in (0, 2), out + err
    return out


def section(out: str, address: str) -> list[str]:
    """The lines under ``address`` in a text plan, up to the next resource."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(f" {address}"))
    rest = lines[start + 1 :]
    return rest[: next((i for i, line in enumerate(rest) if not line.startswith(" ")), len(rest))]


def grants_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["address"].split("/", 1)[1]: r
        for r in document["resources"]
        if r["address"].startswith("role_assignment/")
    }


def test_a_plan_says_who_gets_which_role_on_what(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    arm = f"--emulator={emu.info['arm']}"
    document = json.loads(cli(capsys, "plan", str(DESIRED_STATE), arm, "--format", "json"))
    grants = grants_of(document)
    declared = load_desired_state(DESIRED_STATE).role_assignments
    assert sorted(grants) == sorted(g.name for g in declared)
    assert len(grants) == 17
    assert {n: grants[n]["description"] for n in EXPECTED} == EXPECTED
    for grant in declared:  # every one in the file's words: its role, scope and principal
        said = grants[grant.name]["description"]
        assert said.startswith(f"grants {grant.role} on {grant.scope} to "), said
        assert grants[grant.name]["action"] == "create"
        assert [c["path"] for c in grants[grant.name]["changes"]] == [
            "properties.principalId", "properties.roleDefinitionId", "properties.scope",
        ]  # fmt: skip
    others = [r for r in document["resources"] if not r["address"].startswith("role_assignment/")]
    assert others
    assert all(r["description"] is None for r in others)

    text = cli(capsys, "plan", str(DESIRED_STATE), arm)
    for name, planned in grants.items():
        lines = section(text, f"role_assignment/{name}")
        assert lines == [f"      {planned['description']}"], lines  # no GUID-laden id lines
        assert not GUID.search(lines[0].replace(DATABRICKS_APP, "")), lines  # no object id
    assert text.count(DESCRIBED_HINT) == 1
    assert not [line for line in text.splitlines() if "! role_assignment/" in line]  # no warning

    verbose = cli(capsys, "plan", str(DESIRED_STATE), arm, "--verbose")
    lines = section(verbose, "role_assignment/kubelet-pulls-images")
    assert lines[0] == f"      {EXPECTED['kubelet-pulls-images']}"
    assert [line.split(" = ")[0].strip() for line in lines[1:]] == [
        "+ properties.principalId", "+ properties.roleDefinitionId", "+ properties.scope",
    ]  # fmt: skip
    assert "/providers/Microsoft.ContainerRegistry/registries/nscacrdev" in lines[3]
    assert DESCRIBED_HINT not in verbose

    markdown = cli(capsys, "plan", str(DESIRED_STATE), arm, "--format", "markdown")
    (row,) = [r for r in markdown.splitlines() if "`role_assignment/agent-uses-openai`" in r]
    assert f"| {EXPECTED['agent-uses-openai']}<br><details><summary>3 fields</summary>" in row


def marked_assignment(clients: Clients, scope: str, label: str) -> str:
    """Reader for an object no declared principal is, carrying dev's mark (as if an older
    file had declared it): its lower-cased id."""
    operations = clients.authorization.role_assignments
    sub = clients.target.subscription_id
    created = operations.create(
        scope,
        "33333333-0000-4000-8000-000000000001",
        operations.models.RoleAssignmentCreateParameters(
            role_definition_id=f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
            f"roleDefinitions/{READER}",
            principal_id=STRANGER,
            principal_type="ServicePrincipal",
            description=grant_description("dev", label),
        ),
    )
    return str(to_wire(created)["id"]).lower()


def edited_state(tmp_path: Path) -> Path:
    """desired_state.yaml without three grants, and the deployer's role changed (the old
    assignment is then an orphan, the new one a create)."""
    yaml = YAML(typ="safe")
    data = yaml.load(DESIRED_STATE.read_text(encoding="utf-8"))
    gone = {"kubelet-pulls-images", "agent-reads-agent-execute-mode",
            "databricks-reads-langfuse-secret-key"}  # fmt: skip
    data["role_assignments"] = [g for g in data["role_assignments"] if g["name"] not in gone]
    for grant in data["role_assignments"]:
        if grant["name"] == "deployer-writes-secrets":
            grant["role"] = "Key Vault Administrator"
    path = tmp_path / "desired_state.yaml"
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    return path


def secret_values(vault_client: SecretClient) -> list[str]:
    state = load_desired_state(DESIRED_STATE)
    assert state.secrets is not None
    values = [
        vault_client.get_secret(item.name).value or ""
        for item in state.secrets.items
        if item.sensitive and item.source is not None and item.source.external is None
    ]
    assert values
    assert all(len(v) >= 8 for v in values)
    return values


@pytest.mark.usefixtures("applied")
def test_orphaned_grants_name_role_scope_and_principal(
    emu: Emulator,
    ctl: Any,
    clients: Clients,
    vault_client: SecretClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    arm = f"--emulator={emu.info['arm']}"
    rg = f"/subscriptions/{clients.target.subscription_id}/resourceGroups/{RG}"
    ctl("POST", "config", {"directory_principals": {STRANGER: "ServicePrincipal"}})
    stranger = marked_assignment(clients, rg, "retired")
    ours = {
        (grant_mark(a["properties"].get("description")) or ("", None))[1]: str(a["name"])
        for a in emu.world.list_by_type("Microsoft.Authorization/roleAssignments")
    }
    expected = {
        f"role_assignment/{label}/{ours[label]}": EXPECTED[label]
        for label in ("kubelet-pulls-images", "agent-reads-agent-execute-mode",
                      "databricks-reads-langfuse-secret-key", "deployer-writes-secrets")
    }  # fmt: skip
    expected["role_assignment/retired/33333333-0000-4000-8000-000000000001"] = (
        f"grants Reader on the resource group {RG} to object {STRANGER} (ServicePrincipal)"
    )
    path = edited_state(tmp_path)
    ctl("DELETE", "requests")

    text = cli(capsys, "plan", str(path), arm)
    block = text.split("Not declared; left in place (5)", 1)[1].split("\n\n", 1)[0]
    assert block.splitlines()[1:] == [f"  - {a}  {said}" for a, said in sorted(expected.items())]
    assert section(text, "role_assignment/deployer-writes-secrets") == [
        "      grants Key Vault Administrator on key_vault/nsc-kv-dev to the caller"
    ]
    # Resolved from the list and the reads: no request of its own per orphan (no GET of an
    # orphan, no role definition by id, one Graph lookup at most: the grants' own).
    log = ctl("GET", "requests")
    assert write_requests(ctl) == [], "a plan wrote"
    names = {address.rsplit("/", 1)[1] for address in expected}
    assert not [r for r in log if str(r["path"]).rstrip("/").rsplit("/", 1)[-1] in names]
    assert stranger.rsplit("/", 1)[1] in names
    assert not [r for r in log if "/roledefinitions/" in str(r["path"]).lower()], "role by id"
    assert sum(r["plane"] == "graph" for r in log) <= 1

    document = json.loads(cli(capsys, "plan", str(path), arm, "--format", "json"))
    assert {o["address"]: o["details"] for o in document["orphans"]} == expected
    markdown = cli(capsys, "plan", str(path), arm, "--format", "markdown")
    retired = "role_assignment/retired/33333333-0000-4000-8000-000000000001"
    assert f"- `{retired}`: {expected[retired]}" in markdown
    for value in secret_values(vault_client):  # ids and names only, never a value
        assert value not in text + markdown
        assert value not in json.dumps(document)

    # A saved plan keeps the lines (`show` reads only the file) ...
    saved = tmp_path / "reviewed"
    cli(capsys, "plan", str(path), arm, "--out", str(saved))
    shown = cli(capsys, "show", str(saved))
    assert shown.split("Not declared; left in place (5)", 1)[1].split("\n\n", 1)[0] == block
    again = json.loads(cli(capsys, "show", str(saved), "--format", "json"))
    assert {o["address"]: o["details"] for o in again["orphans"]} == expected
    assert grants_of(again) == grants_of(json.loads(saved.read_text(encoding="utf-8")))
    # ... and a format 2 plan saved before them loads: its grants show their fields.
    older = json.loads(saved.read_text(encoding="utf-8"))
    for resource in older["resources"]:
        del resource["description"]
    for orphan in older["orphans"]:
        del orphan["details"]
    saved.write_text(json.dumps(older), encoding="utf-8")
    old = cli(capsys, "show", str(saved))
    listed = [line.strip() for line in old.splitlines() if line.startswith("  - role_assignment/")]
    assert listed == ["- " + address for address in sorted(expected)]
    lines = section(old, "role_assignment/deployer-writes-secrets")
    assert [line.split(" = ")[0].strip() for line in lines] == [
        "+ properties.principalId", "+ properties.roleDefinitionId", "+ properties.scope",
    ]  # fmt: skip


def test_what_the_run_does_not_know_is_shown_as_azure_lists_it() -> None:
    sub = "/subscriptions/00000000-0000-0000-0000-00000000a1b2"
    vault = f"{sub}/resourceGroups/{RG}/providers/Microsoft.KeyVault/vaults/nsc-kv-dev"
    other = f"{sub}/resourceGroups/{RG}/providers/Microsoft.KeyVault/vaults/kv-other"
    words = GrantWords(
        roles={"0000aaaa-0000-4000-8000-000000000001": "Custom Reader"},  # resolved by a grant
        scopes={vault.lower(): "key_vault/nsc-kv-dev", other.lower(): "key_vault/kv-other"},
        principals={STRANGER: IDENTITY},
        secrets_vault=vault.lower(),
    )
    role = f"{sub}/providers/Microsoft.Authorization/roleDefinitions/"

    def line(role_guid: str, scope: str, principal: str, kind: str | None = None) -> str:
        props = {"roleDefinitionId": role + role_guid, "scope": scope, "principalId": principal}
        return words.line({"properties": {**props, "principalType": kind}})

    assert line("0000AAAA-0000-4000-8000-000000000001", f"{vault}/secrets/Agent-Key", STRANGER) == (
        f"grants Custom Reader on key_vault_secret/Agent-Key to {IDENTITY}"
    )
    assert line(READER, f"{other}/secrets/x", STRANGER.upper()) == (
        f"grants Reader on secret x of key_vault/kv-other to {IDENTITY}"  # built-in: no call
    )
    unknown = "9999aaaa-0000-4000-8000-000000000009"
    elsewhere = f"{sub}/resourceGroups/other/providers/Microsoft.KeyVault/vaults/kv"
    assert line(unknown, elsewhere, unknown, "Group") == (
        f"grants role {unknown} on {elsewhere} to object {unknown} (Group)"
    )

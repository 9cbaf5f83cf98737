"""The editor schemas (`schema`, `schema --overlay`) checked by a real JSON Schema validator,
as VS Code's YAML extension would: the desired state and every shipped overlay validate; the
overlay form catches a typo and a named item without its name; the full form cannot take an
overlay (which is why the overlay form exists)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from nsc_reconcile.cli import main
from tests.paths import DESIRED_STATE, ROOT

OVERLAYS = sorted((ROOT / "envs").glob("*.yaml"))


def schema(capsys: pytest.CaptureFixture[str], *args: str) -> Draft202012Validator:
    with pytest.raises(SystemExit) as exit_info:
        main(["schema", *args])
    assert exit_info.value.code == 0
    document = json.loads(capsys.readouterr().out)
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


def errors(validator: Draft202012Validator, data: Any) -> list[str]:
    """Every error, those inside an anyOf (an optional section) included."""
    found: list[str] = []
    todo = list(validator.iter_errors(data))
    while todo:
        error = todo.pop()
        if error.context:
            todo += error.context
        else:
            found.append(f"{list(error.absolute_path)}: {error.message}")
    return sorted(found)


def load(path: Any) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def test_the_desired_state_validates_against_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert errors(schema(capsys), load(DESIRED_STATE)) == []


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_shipped_overlay_validates_against_the_overlay_schema(
    overlay: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    data = load(overlay)
    assert errors(schema(capsys, "--overlay"), data) == []
    assert errors(schema(capsys), data) != []  # the full form requires what the base gives


def test_overlay_schema_catches_typos_and_unnamed_items(
    capsys: pytest.CaptureFixture[str],
) -> None:
    validator = schema(capsys, "--overlay")
    typo = {"openai_accounts": [{"name": "nsc-aoai-${env}", "deployments": [
        {"name": "gpt-4o-mini", "capcity": 50}]}]}  # fmt: skip
    assert errors(validator, typo) == [
        "['openai_accounts', 0, 'deployments', 0]: Additional properties are not allowed "
        "('capcity' was unexpected)"
    ]
    unnamed = {"log_alerts": [{"severity": 0}]}
    assert errors(validator, unnamed) == ["['log_alerts', 0]: 'name' is a required property"]
    assert errors(validator, {"environment": "Prod"}) != []  # not an environment name
    # a partial mapping is fine: only what differs from the base file
    assert errors(validator, {"langfuse": {"web": {"replicas": 3}}}) == []


def test_a_list_that_replaces_the_base_list_needs_complete_items(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Gate items have no `name`: an overlay's list replaces the base list, whole."""
    validator = schema(capsys, "--overlay")
    partial_gate = {"gate": {"items": [{"id": "DEV-043"}]}}
    assert "['gate', 'items', 0]: 'title' is a required property" in errors(validator, partial_gate)

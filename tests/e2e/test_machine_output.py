"""Machine output through the real CLI against the emulator: `apply --format json` prints one
versioned JSON document on stdout (also when it refuses), plan and apply use the same words,
`--json-events` makes every stderr line a JSON event (start/done per resource, never a secret),
and `validate --format json` lists every problem with its place.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsc_reconcile import load_desired_state
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.plans import PLAN_FORMAT
from tests.conftest import run_cli
from tests.paths import DESIRED_STATE

LINK = "private_dns_zone_link/privatelink.openai.azure.com/link-nsc-vnet-dev"
ZONE = "private_dns_zone/privatelink.openai.azure.com"
VNET = "virtual_network/nsc-vnet-dev"


@pytest.fixture
def arm(emu: Emulator) -> str:
    return str(emu.info["arm"])


def events(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line as a JSON object (json.loads fails the test on any other line)."""
    return [json.loads(line) for line in stderr.splitlines()]


def test_apply_json_is_one_document_in_the_plans_words(
    arm: str, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes",
                         "--target", LINK, "--format", "json")  # fmt: skip
    assert code == 0, err
    document = json.loads(out)  # the whole of stdout: one document, nothing else
    assert (document["format"], document["tool"], document["kind"]) == (
        PLAN_FORMAT, "nsc-reconcile", "apply",
    )  # fmt: skip
    assert document["ok"] is True
    assert document["error"] is None
    assert document["plan"]["kind"] == "plan"
    planned = {r["address"]: r["action"] for r in document["plan"]["resources"]}
    done = {r["address"]: r["outcome"] for r in document["result"]["resources"]}
    assert planned == {ZONE: "create", VNET: "read", LINK: "create"}
    assert done == {ZONE: "created", VNET: "read", LINK: "created"}
    assert "create    " in err  # the plan for people went to stderr

    link = document["plan"]["resources"][2]["id"]  # drift on the link only
    body = ctl("GET", f"state?id={link}")
    body["properties"]["registrationEnabled"] = True
    ctl("PUT", f"state?id={link}", body)
    code, out, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes",
                         "--target", LINK, "--format", "json")  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    planned = {r["address"]: r["action"] for r in document["plan"]["resources"]}
    done = {r["address"]: r["outcome"] for r in document["result"]["resources"]}
    assert planned == {ZONE: "unchanged", VNET: "read", LINK: "update"}
    assert done == {ZONE: "unchanged", VNET: "read", LINK: "updated"}  # the same words
    assert document["plan"]["summary"]["unchanged"] == document["result"]["summary"]["unchanged"]

    code, out, _ = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes",
                       "--target", LINK, "--format", "json")  # fmt: skip
    assert code == 0
    document = json.loads(out)
    assert document["result"] is None
    assert document["ok"] is True


def test_apply_json_still_prints_one_document_when_it_refuses(
    arm: str,
    emu: Emulator,
    ctl: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    nsg = (
        f"/subscriptions/{emu.info['subscription_id']}/resourceGroups/2dt-final-team4/providers/"
        "Microsoft.Network/networkSecurityGroups/nsc-nsg-data-dev"
    )
    ctl("DELETE", f"state?id={nsg}")  # an existing reference is missing: blocked
    code, out, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes",
                         "--format", "json")  # fmt: skip
    assert code == 1
    document = json.loads(out)
    assert document["ok"] is False
    assert document["result"] is None
    assert "blocked" in document["error"]
    assert "nothing was written" in document["error"]
    assert document["plan"]["summary"]["blocked"] >= 1
    assert "error:" in err

    report = tmp_path / "apply.json"  # an apply report is no plan to apply
    report.write_text(out)
    code, _, err = run_cli(capsys, "apply", str(report), "--emulator", arm)
    assert code == 1
    assert "an nsc-reconcile apply document, not a saved plan" in err


def test_json_events_are_json_lines_with_start_and_done_and_no_secret(
    arm: str, emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "apply", str(DESIRED_STATE), "--emulator", arm, "--yes",
                         "--json-events")  # fmt: skip
    assert code == 0, err
    assert "Apply complete" in out  # stdout keeps its format (text here)
    stream = events(err)
    assert all({"time", "elapsed", "event"} <= e.keys() for e in stream)
    assert [e["elapsed"] for e in stream] == sorted(e["elapsed"] for e in stream)
    writes = {(e["event"], e.get("action") or e.get("outcome"))
              for e in stream if e.get("address") == "openai_account/nsc-aoai-dev"}  # fmt: skip
    assert {("start", "read"), ("done", "read"), ("start", "create"),
            ("done", "created")} <= writes  # fmt: skip
    starts = {e["address"] for e in stream if e["event"] == "start" and e["action"] != "read"}
    dones = {e["address"] for e in stream if e["event"] == "done" and e["outcome"] != "read"}
    assert starts == dones
    assert len(starts) >= 30
    assert stream[0]["event"] == "message"
    assert "applying" in stream[0]["message"]

    state = load_desired_state(DESIRED_STATE)
    assert state.secrets is not None
    plain = {s.name for s in state.secrets.items if not s.sensitive}  # shown on purpose
    store = emu.world.secrets
    values = [str(store.get("nsc-kv-dev", str(s["name"]))["value"])
              for s in store.list("nsc-kv-dev") if s["name"] not in plain]  # fmt: skip
    assert len(values) >= 8
    assert not [v for v in values if v in err]  # no secret value in the CI log

    code, out, err = run_cli(capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--target",
                         LINK, "--json-events")  # fmt: skip
    assert code == 0
    reads = [(e["event"], e["address"]) for e in events(err) if e["event"] in ("start", "done")]
    assert sorted(reads) == sorted((ev, a) for a in (ZONE, VNET, LINK) for ev in ("start", "done"))

    code, _, err = run_cli(capsys, "plan", str(DESIRED_STATE), "--emulator", arm, "--target",
                       "nsg_rule/nope", "--json-events")  # fmt: skip
    assert code == 1
    assert events(err)[-1]["event"] == "error"
    assert "no such resource" in events(err)[-1]["message"]


def test_validate_json_lists_every_problem_with_its_place(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "desired_state.yaml"
    shutil.copy(DESIRED_STATE, broken)
    text = broken.read_text()
    lines = text.splitlines()
    public = next(i for i, line in enumerate(lines) if "public_network_access: Disabled" in line)
    lines[public] = lines[public].replace("Disabled", "Enabled")
    lines.insert(public, lines[public].split("public")[0] + "colour: blue")
    broken.write_text("\n".join(lines) + "\n")

    code, out, _ = run_cli(capsys, "validate", str(broken), "--format", "json")
    assert code == 1
    document = json.loads(out)
    assert (document["format"], document["kind"], document["ok"]) == (PLAN_FORMAT, "validation",
                                                                     False)  # fmt: skip
    problems = {p["field"]: p for p in document["problems"]}
    unknown = problems["openai_accounts[0].colour"]
    assert (unknown["file"], unknown["line"]) == (str(broken), public + 1)
    assert unknown["column"] >= 1
    assert "unknown field 'colour'" in unknown["message"]
    policy = problems["openai_accounts[0].public_network_access"]
    assert policy["line"] == public + 2
    assert "must be 'Disabled'" in policy["message"]

    code, out, _ = run_cli(capsys, "validate", str(DESIRED_STATE), "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["ok"] is True
    assert document["problems"] == []
    assert VNET in {r["address"] for r in document["resources"]}

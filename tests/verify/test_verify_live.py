"""`verify` against the emulator with the real SDK, kubernetes and DNS clients: after applying
the repository's desired state every Definition-of-Done check passes (DNS through the
emulator's DNS server) and nothing is written; from the baseline the checks fail with evidence
and the CLI exits 3; drift (public access, a deleted A record, an exposed Service) fails
exactly the checks it breaks; JUnit XML parses; the alert smoke's events land."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import KEY_VAULT_NAME
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.verification import Status, VerifyReport, run_checks
from tests.conftest import run_cli, verify_on, write_requests
from tests.paths import DESIRED_STATE

RG = "2dt-final-team4"
ACCOUNT_ID = (
    "/subscriptions/00000000-0000-0000-0000-00000000a1b2/resourceGroups/2dt-final-team4/"
    "providers/Microsoft.CognitiveServices/accounts/nsc-aoai-dev"
)
TABLE = "NscAgentEvents_CL"


def _statuses(report: VerifyReport) -> dict[str, Status]:
    return {c.id: c.status for c in report.checks}


def _failed(report: VerifyReport) -> list[str]:
    return sorted(c.id for c in report.failed)


def test_after_apply_every_check_passes_and_verify_writes_nothing(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any], clients: Clients
) -> None:
    report = verify_on(applied, emu)
    assert report.ok, report.render()
    assert report.exit_code == 0
    assert all(c.status is Status.PASS for c in report.checks), report.render()
    assert {c.id for c in report.checks} >= {
        "openai-account/nsc-aoai-dev",
        "pe-connection/nsc-pe-openai",
        "pe-a-record/nsc-pe-openai",
        "pe-zone-link/nsc-pe-openai",
        "dns/nsc-pe-openai",
        "pe-connection/nsc-pe-pg-langfuse",
        "pe-a-record/nsc-pe-pg-langfuse",
        "pe-zone-link/nsc-pe-pg-langfuse",
        "dns/nsc-pe-pg-langfuse",
        "langfuse-postgres/nsc-pg-langfuse-dev",
        "langfuse-internal/langfuse",
        "langfuse-ready/langfuse",
        "key-vault-secrets/nsc-kv-dev",
        "execute-mode/agent-execute-mode",
        "alert-rules",
        "action-group/nsc-ag-agent-dev",
        "plan-clean",
    }
    assert write_requests(ctl) == []
    # Evidence a reviewer can trust: the NIC IP, the record, the resolution chain.
    ip = report.get("pe-connection/nsc-pe-openai").evidence.split("private IP ")[1].split(";")[0]
    assert ip.startswith("10.10.1.")
    assert (
        f"A nsc-aoai-dev.privatelink.openai.azure.com = {ip}"
        in report.get("pe-a-record/nsc-pe-openai").evidence
    )
    dns = report.get("dns/nsc-pe-openai").evidence
    assert f"CNAME nsc-aoai-dev.privatelink.openai.azure.com -> A {ip}" in dns
    assert emu.info["dns"] in dns
    assert "Approved" in report.get("pe-connection/nsc-pe-openai").evidence
    assert "0 pending change(s)" in report.get("plan-clean").evidence
    # No secret value in any rendering.
    assert applied.secrets is not None
    sensitive = [i.name for i in applied.secrets.items if i.sensitive]
    values = [str(emu.world.secrets.get(KEY_VAULT_NAME, n)["value"]) for n in sensitive]
    rendered = "\n".join(report.render(f) for f in ("text", "json", "markdown", "junit"))
    assert len(values) >= 10
    assert not [v for v in values if v in rendered]
    # Without a resolver (real Azure, no --resolver) the DNS checks SKIP, and SKIP passes.
    without = run_checks(Engine(applied, clients), resolver=None)
    skipped = sorted(c.id for c in without.checks if c.status is Status.SKIP)
    assert skipped == ["dns/nsc-pe-openai", "dns/nsc-pe-pg-langfuse"]
    assert "--resolver" in without.get("dns/nsc-pe-openai").detail
    assert without.ok
    assert without.exit_code == 0


@pytest.mark.usefixtures("desired_state")
def test_baseline_fails_with_evidence_and_the_cli_exits_3(
    emu: Emulator, ctl: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "verify", str(DESIRED_STATE), "--emulator", emu.info["arm"], "--format", "json"
    )
    assert code == 3, err
    report = json.loads(out)
    assert report["ok"] is False
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["openai-account/nsc-aoai-dev"]["status"] == "FAIL"
    assert "does not exist" in checks["openai-account/nsc-aoai-dev"]["detail"]
    assert (
        "Microsoft.CognitiveServices/accounts/nsc-aoai-dev"
        in (checks["openai-account/nsc-aoai-dev"]["evidence"])
    )
    assert "NXDOMAIN" in checks["dns/nsc-pe-openai"]["evidence"]
    assert "missing: azure-openai-api-key" in checks["key-vault-secrets/nsc-kv-dev"]["detail"]
    assert "create openai_account/nsc-aoai-dev" in checks["plan-clean"]["detail"]
    # The existing zone's VNet link predates this tool: that part already holds.
    assert checks["pe-zone-link/nsc-pe-pg-langfuse"]["status"] == "PASS"
    assert write_requests(ctl) == []


def test_public_access_enabled_on_the_account_fails_that_check(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    account = ctl("GET", f"state?id={ACCOUNT_ID}")
    account["properties"]["publicNetworkAccess"] = "Enabled"
    ctl("PUT", f"state?id={ACCOUNT_ID}", account)
    report = verify_on(applied, emu)
    assert _failed(report) == ["openai-account/nsc-aoai-dev", "plan-clean"]
    check = report.get("openai-account/nsc-aoai-dev")
    assert "publicNetworkAccess=Enabled" in check.evidence
    assert "publicNetworkAccess is Enabled (expected Disabled)" in check.detail
    assert "update openai_account/nsc-aoai-dev" in report.get("plan-clean").detail
    assert report.exit_code == 3


def test_a_deleted_a_record_fails_the_record_and_dns_checks(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    zone = ACCOUNT_ID.split("/providers/")[0] + "/providers/Microsoft.Network/privateDnsZones/"
    ctl("DELETE", f"state?id={zone}privatelink.openai.azure.com/A/nsc-aoai-dev")
    report = verify_on(applied, emu)
    failed = _failed(report)
    assert "pe-a-record/nsc-pe-openai" in failed
    assert "dns/nsc-pe-openai" in failed
    assert set(failed) <= {"pe-a-record/nsc-pe-openai", "dns/nsc-pe-openai", "plan-clean"}
    assert "no A record nsc-aoai-dev in privatelink.openai.azure.com" in (
        report.get("pe-a-record/nsc-pe-openai").detail
    )
    assert "NXDOMAIN" in report.get("dns/nsc-pe-openai").evidence
    assert _statuses(report)["dns/nsc-pe-pg-langfuse"] is Status.PASS


def test_a_service_switched_to_loadbalancer_fails_the_internal_check(
    applied: DesiredState, emu: Emulator, kube: k8s.ApiClient
) -> None:
    core: Any = k8s.CoreV1Api(kube)
    core.patch_namespaced_service(
        "langfuse-internal", "langfuse", {"spec": {"type": "LoadBalancer"}}
    )
    report = verify_on(applied, emu)
    assert "langfuse-internal/langfuse" in _failed(report)
    check = report.get("langfuse-internal/langfuse")
    assert "type=LoadBalancer" in check.evidence
    assert "langfuse-internal is LoadBalancer (expected ClusterIP)" in check.detail
    assert "Ingress: none" in check.evidence


@pytest.mark.usefixtures("applied")
def test_junit_has_one_testcase_per_check_with_failures_marked(
    emu: Emulator,
    ctl: Callable[..., Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = ctl("GET", f"state?id={ACCOUNT_ID}")
    account["properties"]["networkAcls"] = {"defaultAction": "Allow"}
    ctl("PUT", f"state?id={ACCOUNT_ID}", account)
    junit = tmp_path / "verify.xml"
    code, out, _ = run_cli(
        capsys, "verify", str(DESIRED_STATE), "--emulator", emu.info["arm"],
        "--format", "junit", "--out", str(junit),
    )  # fmt: skip
    assert code == 3
    assert "FAIL  openai-account/nsc-aoai-dev" in out  # stdout keeps the text report
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(cases) == int(suite.get("tests", "0")) >= 17
    assert len(failed) == int(suite.get("failures", "0")) == 2
    names = sorted(str(c.get("name")).split(":")[0] for c in failed)
    assert names == ["openai-account/nsc-aoai-dev", "plan-clean"]
    failure = failed[0].find("failure")
    assert failure is not None
    assert "defaultAction is Allow" in str(failure.get("message"))


def test_smoke_posts_one_event_per_type_and_they_land(
    applied: DesiredState, emu: Emulator, ctl: Callable[..., Any]
) -> None:
    report = verify_on(applied, emu, smoke=["alerts"])
    assert report.ok, report.render()
    statuses = _statuses(report)
    assert statuses["smoke-alert-ingest/nsc-dcr-agent-events-dev"] is Status.PASS
    assert statuses["smoke-alert-landed/NscAgentEvents_CL"] is Status.PASS
    rows = ctl("GET", f"logs?table={TABLE}")
    assert sorted(r["EventType"] for r in rows) == sorted(
        ["TRIAGE_READY", "APPROVAL_TIMEOUT", "EXECUTION_FAILED"]
    )
    assert len({r["IncidentId"] for r in rows}) == 1
    assert rows[0]["IncidentId"] in report.get("smoke-alert-landed/NscAgentEvents_CL").evidence
    # The only write is the one ingestion upload.
    assert [w.split(" ")[0:2] for w in write_requests(ctl)] == [["ingestion", "POST"]]


def test_a_non_loopback_resolver_is_refused_for_the_emulator(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "verify", str(DESIRED_STATE), "--emulator", emu.info["arm"],
        "--resolver", "10.10.0.4:53",
    )  # fmt: skip
    assert code == 1
    assert "loopback" in err

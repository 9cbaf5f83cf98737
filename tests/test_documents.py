"""`docs` against the emulator after applying the repository's desired state, through the real
CLI and SDK clients: the documents carry the live NIC IPs, FQDNs and ids; `--update` rewrites
only between the markers (every other byte kept, CRLF included) and a rerun changes no byte;
`--check` passes, then fails after drift (a NIC IP changed, an A record deleted) naming the
sections; Korean headings carry the same facts; no Key Vault value appears anywhere; nothing is
written to Azure."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from nsc_reconcile.azure import Clients
from nsc_reconcile.documents import render_documents
from nsc_reconcile.documents.files import wanted_sections
from nsc_reconcile.documents.markers import DocumentError, find_blocks, update_text
from nsc_reconcile.documents.words import EN, KO
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import KEY_VAULT_NAME
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.docs import DocumentPaths
from nsc_reconcile.model.state import DesiredState
from tests.conftest import run_cli, write_requests
from tests.paths import DESIRED_STATE

RG_ID = "/subscriptions/00000000-0000-0000-0000-00000000a1b2/resourceGroups/2dt-final-team4"
PE_ID = f"{RG_ID}/providers/Microsoft.Network/privateEndpoints/"
ZONE_ID = f"{RG_ID}/providers/Microsoft.Network/privateDnsZones/"
SECTIONS = ("4.3", "6.6", "7.2", "7.3", "credentials")


def write_state(folder: Path, language: str | None = None) -> Path:
    """The repository's desired state in ``folder`` (its documents go next to it)."""
    yaml = YAML(typ="safe")
    data = yaml.load(DESIRED_STATE.read_text(encoding="utf-8"))
    if language is not None:
        data["docs"] = {"language": language}
    path = folder / "desired_state.yaml"
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    return path


def writes(ctl: Callable[..., Any]) -> list[str]:
    """Requests that change something (tests/conftest.py: a list action or the registry's
    token exchange only reads)."""
    return write_requests(ctl)


def nic_of(ctl: Callable[..., Any], endpoint: str) -> dict[str, Any]:
    """The endpoint's NIC as the emulator stores it (read independently of the product)."""
    pe = ctl("GET", f"state?id={PE_ID}{endpoint}")
    nic: dict[str, Any] = ctl("GET", f"state?id={pe['properties']['networkInterfaces'][0]['id']}")
    return nic


def ip_of(nic: dict[str, Any]) -> str:
    return str(nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"])


def outside(text: str) -> str:
    """``text`` without the content of its owned sections (markers kept)."""
    kept, position = [], 0
    for block in find_blocks(text, SECTIONS):
        kept.append(text[position : block.start])
        position = block.end
    return "".join(kept) + text[position:]


def code_spans(text: str) -> set[str]:
    return set(re.findall(r"`[^`\n]+`", text))


def test_documents_carry_live_ips_fqdns_ids_and_nothing_is_written(
    applied: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    _, sections = render_documents(Engine(applied, clients))
    endpoints = sections["4.3"]
    for endpoint, record in (
        ("nsc-pe-openai", "nsc-aoai-dev.privatelink.openai.azure.com"),
        ("nsc-pe-pg-langfuse", "nsc-pg-langfuse-dev.privatelink.postgres.database.azure.com"),
    ):
        nic = nic_of(ctl, endpoint)
        ip = ip_of(nic)
        assert ip.startswith("10.10.1.")
        row = next(line for line in endpoints.splitlines() if line.startswith(f"| `{endpoint}`"))
        assert f"| `{ip}` |" in row
        assert f"`{record}` A `{ip}`" in row
        assert "(Data layer)" in row  # seed §4: private endpoints in the data layer subnet
        assert row.endswith("| Approved |")
        assert f"`{PE_ID}{endpoint}`" in endpoints
        assert f"`{nic['id']}`" in endpoints
        # 7.2: the NSG rules resolve the endpoint to its live address; placement shows it.
        assert f"`{endpoint}` → `{ip}/32`" in sections["7.2"]
        assert (
            f"| `{endpoint}` | `nsc-vnet-dev/snet-data` | Data layer | `{ip}` |" in sections["7.2"]
        )
    assert "| `nsc-vnet-dev/snet-aks` | `10.10.2.0/24` | Application layer |" in sections["7.2"]
    assert "| `allow-aks-to-openai-443` | `nsc-nsg-data-dev` | 200 | Inbound | Allow | Tcp | " \
           "`443` | `snet-aks` → `10.10.2.0/24` |" in sections["7.2"]  # fmt: skip
    flow = sections["6.6"]
    assert "```mermaid\nflowchart LR" in flow
    for rule, event, severity in (
        ("nsc-alert-triage-ready-dev", "TRIAGE_READY", 3),
        ("nsc-alert-approval-timeout-dev", "APPROVAL_TIMEOUT", 2),
        ("nsc-alert-execution-failed-dev", "EXECUTION_FAILED", 1),
    ):
        assert f"| `{rule}` | `{event}` | {severity} | `PT5M` | `PT5M` | yes | " \
               "`nsc-ag-agent-dev` |" in flow  # fmt: skip
        assert f'| where EventType == "{event}"' in flow
    assert "email `nsc-platform-oncall` (`nsc-platform-oncall@example.com`)" in flow
    assert "stream `Custom-NscAgentEvents_CL` → table `NscAgentEvents_CL`" in flow
    security = sections["7.3"]
    assert "| `openai_account/nsc-aoai-dev` | Disabled | Deny | Enabled |" in security
    assert "| `kubernetes_workload/langfuse` | Disabled (ClusterIP) |" in security
    assert "`nsc-kv-dev`: Azure RBAC" in security
    assert "| `langfuse-nextauth-secret` | `NEXTAUTH_SECRET` | `Deployment/langfuse env " \
           "NEXTAUTH_SECRET`, `Deployment/langfuse-worker env NEXTAUTH_SECRET` |" in security  # fmt: skip
    # The consumers' grants (seed §9), as declared.
    assert "No role assignments are declared" not in security
    assert (
        '- `deployer-writes-secrets` (principal `{"caller": true}`, consumer `deployer`, scope '
        "`key_vault/nsc-kv-dev`, role `Key Vault Secrets Officer`)" in security
    )
    assert (
        '- `agent-reads-agent-execute-mode` (principal `{"identity": "id-nsc-agent-dev"}`, '
        "consumer `runtime`, scope `key_vault_secret/agent-execute-mode`, role "
        "`Key Vault Secrets User`)" in security
    )
    credentials = sections["credentials"]
    assert "`az keyvault secret show --vault-name nsc-kv-dev --name azure-openai-api-key " \
           "--query value -o tsv`" in credentials  # fmt: skip
    assert "`secretKeyRef: {name: langfuse-secrets, key: NEXTAUTH_SECRET}`" in credentials
    assert '`dbutils.secrets.get(scope="nsc-kv-dev", key="databricks-agent-token")`' in credentials
    assert "| `databricks-agent-token` | Databricks Jobs API (existing) | external" in credentials
    assert writes(ctl) == []


def test_no_key_vault_value_appears_in_any_rendering(
    applied: DesiredState,
    clients: Clients,
    emu: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rendered: list[str] = []
    for language in ("en", "ko"):
        rendered += render_documents(Engine(applied, clients), language)[1].values()
    state_file = write_state(tmp_path)
    code, out, err = run_cli(capsys, "docs", str(state_file), "--emulator", emu.info["arm"])
    assert code == 0, err
    code, _, err = run_cli(capsys, "docs", str(state_file), "--emulator", emu.info["arm"],
                           "--update")  # fmt: skip
    assert code == 0, err
    files = [p.read_text(encoding="utf-8") for p in sorted(tmp_path.glob("*.md"))]
    assert len(files) == 2
    text = "\n".join([*rendered, out, err, *files])
    assert applied.secrets is not None
    names = {resource.name for _, resource in applied.resources()}
    checked = 0
    for item in applied.secrets.items:
        value = str(emu.world.secrets.get(KEY_VAULT_NAME, item.name)["value"])
        if not item.sensitive and value in names:
            continue  # a plain setting naming a resource (the deployment `gpt-4o-mini`)
        checked += 1
        assert value not in text, f"the value of {item.name} appears"
        assert base64.b64encode(value.encode()).decode() not in text
    assert checked >= 14


@pytest.mark.usefixtures("applied")
def test_update_rewrites_only_between_markers_and_a_rerun_changes_no_byte(
    emu: Emulator,
    ctl: Callable[..., Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state_file = write_state(tmp_path)
    manual = tmp_path / "Infra_Manual.md"
    credentials = tmp_path / "TEAM_CREDENTIALS.md"
    # CRLF line breaks, Korean text, a stale owned section, no final line break.
    manual_text = (
        "# Infra Manual\r\n\r\n## 4. 네트워크\r\n\r\n<!-- nsc-reconcile:begin 4.3 -->\r\n"
        "stale table\r\n<!-- nsc-reconcile:end 4.3 -->\r\n\r\n손으로 쓴 문단.  \r\n\r\n"
        "## 9. Other\r\nkept as is"
    )
    manual.write_bytes(manual_text.encode("utf-8"))
    credentials_text = "# TEAM CREDENTIALS\n\nAsk the platform team for access.\n"
    credentials.write_text(credentials_text, encoding="utf-8")
    arm = emu.info["arm"]
    code, _, err = run_cli(capsys, "docs", str(state_file), "--emulator", arm, "--update")
    assert code == 0, err
    assert f"{manual}: updated" in err
    new_manual = manual.read_bytes().decode("utf-8")
    assert outside(new_manual).startswith(outside(manual_text))
    appended = outside(new_manual)[len(outside(manual_text)) :]
    assert re.fullmatch(r"(\r\n|<!-- nsc-reconcile:(begin|end) (6\.6|7\.2|7\.3) -->)+", appended)
    assert new_manual.count("\n") == new_manual.count("\r\n")  # CRLF kept everywhere
    assert "stale table" not in new_manual
    ip = ip_of(nic_of(ctl, "nsc-pe-openai"))
    assert f"| `{ip}` |" in new_manual
    assert [b.section for b in find_blocks(new_manual, SECTIONS)] == ["4.3", "6.6", "7.2", "7.3"]
    new_credentials = credentials.read_text(encoding="utf-8")
    assert new_credentials.startswith(credentials_text + "\n<!-- nsc-reconcile:begin credentials")
    assert new_credentials.endswith("<!-- nsc-reconcile:end credentials -->\n")

    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (manual, credentials)}
    code, _, err = run_cli(capsys, "docs", str(state_file), "--emulator", arm, "--update",
                           str(manual), str(credentials))  # fmt: skip
    assert code == 0, err
    assert f"{manual}: unchanged" in err
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in before} == before
    code, out, err = run_cli(capsys, "docs", str(state_file), "--emulator", arm, "--check")
    assert code == 0, err
    assert f"{manual}: current" in out
    assert f"{credentials}: current" in out
    assert writes(ctl) == []


@pytest.mark.usefixtures("applied")
def test_check_fails_after_drift_naming_the_stale_sections(
    emu: Emulator,
    ctl: Callable[..., Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state_file = write_state(tmp_path)
    arm = emu.info["arm"]
    manual = tmp_path / "Infra_Manual.md"
    assert run_cli(capsys, "docs", str(state_file), "--emulator", arm, "--update")[0] == 0
    assert run_cli(capsys, "docs", str(state_file), "--emulator", arm, "--check")[0] == 0

    # Out of band: the OpenAI endpoint's NIC gets another address.
    nic = nic_of(ctl, "nsc-pe-openai")
    old_ip = ip_of(nic)
    nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = "10.10.1.77"
    ctl("PUT", f"state?id={nic['id']}", nic)
    code, out, _ = run_cli(capsys, "docs", str(state_file), "--emulator", arm, "--check")
    assert code == 1
    assert f"{manual}: stale: 4.3 (stale), 7.2 (stale)" in out  # NIC IP and placement
    assert f"{tmp_path / 'TEAM_CREDENTIALS.md'}: current" in out
    assert run_cli(capsys, "docs", str(state_file), "--emulator", arm, "--update")[0] == 0
    assert "| `10.10.1.77` |" in manual.read_text(encoding="utf-8")
    assert f"| `{old_ip}` |" not in manual.read_text(encoding="utf-8")
    assert run_cli(capsys, "docs", str(state_file), "--emulator", arm, "--check")[0] == 0

    # Out of band: the PostgreSQL endpoint's A record is deleted.
    ctl(
        "DELETE", f"state?id={ZONE_ID}privatelink.postgres.database.azure.com/A/nsc-pg-langfuse-dev"
    )
    code, out, _ = run_cli(capsys, "docs", str(state_file), "--emulator", arm, "--check")
    assert code == 1
    assert f"{manual}: stale: 4.3 (stale)\n" in out
    text = run_cli(capsys, "docs", str(state_file), "--emulator", arm)[1]
    assert "`nsc-pg-langfuse-dev.privatelink.postgres.database.azure.com` (missing)" in text


@pytest.mark.usefixtures("applied")
def test_korean_headings_carry_the_same_facts(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = {}
    for language in ("en", "ko"):
        folder = tmp_path / language
        folder.mkdir()
        state_file = write_state(folder, language)
        code, out, err = run_cli(capsys, "docs", str(state_file), "--emulator", emu.info["arm"])
        assert code == 0, err
        printed[language] = out
    for title in ("4.3 Private Endpoint 매핑", "6.6 알림 흐름", "7.2 네트워크 설정", "7.3 보안 설정",
                  "Key Vault 참조 키"):  # fmt: skip
        assert title in printed["ko"]
    assert "Private endpoint mapping" not in printed["ko"]
    assert "(Data 레이어)" in printed["ko"]
    # Same facts: every name, id, address, query and reference, in both languages.
    spans = code_spans(printed["en"])
    assert len(spans) > 100
    assert code_spans(printed["ko"]) == spans
    numbers = re.compile(r"\b\d+(?:\.\d+)*(?:/\d+)?\b")
    assert sorted(numbers.findall(printed["ko"])) == sorted(numbers.findall(printed["en"]))


@pytest.mark.usefixtures("desired_state")
def test_before_apply_the_documents_say_what_is_missing(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_file = write_state(tmp_path)
    code, out, err = run_cli(capsys, "docs", str(state_file), "--emulator", emu.info["arm"],
                             "--check")  # fmt: skip
    assert code == 1
    assert f"{tmp_path / 'Infra_Manual.md'}: stale: 4.3 (missing), 6.6 (missing), " \
           "7.2 (missing), 7.3 (missing)" in out  # fmt: skip
    assert "live state differs" in err
    out = run_cli(capsys, "docs", str(state_file), "--emulator", emu.info["arm"])[1]
    row = next(line for line in out.splitlines() if line.startswith("| `nsc-pe-openai`"))
    assert row.count("(missing)") >= 3
    assert not list(tmp_path.glob("*.md"))  # --check and printing write nothing


def test_markers_broken_or_unknown_are_errors_naming_the_line() -> None:
    sections = {s: f"### {s}\n" for s in SECTIONS}
    with pytest.raises(DocumentError, match=re.escape("line 3: begin 4.3 is never ended")):
        update_text("a\n\n<!-- nsc-reconcile:begin 4.3 -->\nx\n", sections, [])
    with pytest.raises(DocumentError, match=re.escape("line 2: end 7.2 without its begin")):
        update_text("a\n<!-- nsc-reconcile:end 7.2 -->\n", sections, [])
    with pytest.raises(DocumentError, match=re.escape("line 1: unknown section '9.9'")):
        update_text("<!-- nsc-reconcile:begin 9.9 -->\n<!-- nsc-reconcile:end 9.9 -->", sections,
                    [])  # fmt: skip
    with pytest.raises(DocumentError, match=re.escape("line 2: begin 6.6 inside section 4.3")):
        update_text("<!-- nsc-reconcile:begin 4.3 -->\n<!-- nsc-reconcile:begin 6.6 -->\n",
                    sections, [])  # fmt: skip
    paths = DocumentPaths()
    with pytest.raises(DocumentError, match="no nsc-reconcile markers"):
        wanted_sections(Path("README.md"), "# readme\n", paths, SECTIONS)
    # Any document may hold a section through its markers; an update is a fixed point.
    text = "# ops\n<!-- nsc-reconcile:begin credentials -->\n<!-- nsc-reconcile:end credentials -->"
    assert wanted_sections(Path("ops.md"), text, paths, SECTIONS) == ["credentials"]
    once = update_text(text, sections, ["credentials"])
    assert once == "# ops\n<!-- nsc-reconcile:begin credentials -->\n### credentials\n" \
                   "<!-- nsc-reconcile:end credentials -->"  # fmt: skip
    assert update_text(once, sections, ["credentials"]) == once


def test_both_languages_have_every_label() -> None:
    assert set(EN) == set(KO)
    assert all(KO[k] for k in KO)


def test_update_and_check_together_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, "docs", str(write_state(tmp_path)), "--update", "--check")
    assert code == 1
    assert "--update and --check exclude each other" in err
    code, _, err = run_cli(capsys, "docs", str(write_state(tmp_path)), "Infra_Manual.md")
    assert code == 1
    assert "name documents with --update or --check" in err

"""Bad desired states: each exits 1 with file:line:column, the field path and what is expected,
and never a traceback. Data-driven: each case edits the repository's desired_state.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from nsc_reconcile import DesiredStateError, load_desired_state
from nsc_reconcile.cli import main


@dataclass(frozen=True)
class Case:
    id: str
    old: str  # text replaced (must occur exactly once)
    new: str
    field: str  # expected field path in the message
    expect: str  # expected fragment of the message
    at: str | None = None  # text whose line the problem must point at (default: new's 1st line)


LONG = "x" * 65

CASES = [
    Case("gate-item-id", "    - id: DEV-043\n", "    - id: dev43\n", "gate.items[0].id",
         "should match pattern"),
    Case("gate-item-without-checks", '      checks: ["smoke-langfuse*", "smoke-alert*"]',
         "      checks: []", "gate.items[3].checks", "at least 1 item"),
    Case("malformed-yaml", "version: 1\n", "version: [1\n", "", "malformed YAML",
         at="environment: dev"),
    Case("unknown-field", "    mode: create", "    mode: create\n    colour: blue",
         "openai_accounts[0].colour", "unknown field 'colour'", at="colour: blue"),
    Case("unknown-field-typo", "    storage_gb: 32", "    storage_gib: 32",
         "postgresql_servers[0].storage_gib", "did you mean 'storage_gb'"),
    Case("wrong-type-int", "    storage_gb: 32", "    storage_gb: lots",
         "postgresql_servers[0].storage_gb", "valid integer"),
    Case("wrong-type-strict", '    version: "15"', "    version: 15",
         "postgresql_servers[0].version", "'15', '16' or '17'"),
    Case("wrong-enum", "    sku: GlobalStandard", "    sku: Global",
         "openai_accounts[0].deployments[0].sku", "GlobalStandard"),
    Case("missing-required", "    admin_login: langfuseadmin\n", "",
         "postgresql_servers[0].admin_login", "required field 'admin_login' is missing",
         at="  - name: nsc-pg-langfuse-${env}"),
    Case("dangling-reference", "    target: openai_account/nsc-aoai-${env}",
         "    target: openai_account/nsc-aoai-missing", "private_endpoints[0].target",
         "private_endpoint/nsc-pe-openai refers to openai_account/nsc-aoai-missing, which is "
         "not declared (declared openai_account: nsc-aoai-dev)"),
    Case("dangling-subnet", "    subnet: nsc-vnet-${env}/snet-data\n    dns_zone_group: {zones: [privatelink.openai",
         "    subnet: nsc-vnet-${env}/snet-nope\n    dns_zone_group: {zones: [privatelink.openai",
         "private_endpoints[0].subnet", "refers to subnet/nsc-vnet-dev/snet-nope"),
    Case("dangling-secret", "    password_secret: langfuse-pg-admin-password",
         "    password_secret: langfuse-pg-password", "langfuse.database.password_secret",
         "refers to key_vault_secret/langfuse-pg-password"),
    Case("dependency-cycle", "    local_auth: enabled ",
         "    depends_on: [private_endpoint/nsc-pe-openai]\n    local_auth: enabled ",
         "openai_accounts[0]", "dependency cycle", at="  - name: nsc-aoai-${env}"),
    Case("literal-secret", "      source: {generate: {length: 32, alphabet: hex, prefix: sk-lf-}}",
         "      value: not-a-real-key-but-literal", "secrets.items[4]",
         "literal `value` is allowed only for non-secret settings",
         at="  - name: langfuse-secret-key"),
    Case("literal-credential", "      value: dry-run ", "      value: sk-proj-A1b2C3d4E5f6G7h8 ",
         "secrets.items[6]", "looks like a credential", at="  - name: agent-execute-mode"),
    Case("secret-source-two-ways", "      source: {external: true}",
         "      source: {external: true, env: DATABRICKS_TOKEN}", "secrets.items[7].source",
         "exactly one of output, env, generate, external"),
    Case("bad-output-name", "openai_account/nsc-aoai-${env}.primary_key",
         "openai_account/nsc-aoai-${env}.password", "secrets.items[0].source.output",
         "has no output 'password'; expected one of: endpoint, primary_key, secondary_key"),
    Case("policy-openai-public", "    public_network_access: Disabled\n    network_acls",
         "    public_network_access: Enabled\n    network_acls",
         "openai_accounts[0].public_network_access", "policy violation (private-only"),
    Case("policy-acl-allow", "    network_acls: {default_action: Deny}",
         "    network_acls: {default_action: Allow}",
         "openai_accounts[0].network_acls.default_action", "policy violation (private-only"),
    Case("policy-pg-public", "    public_network_access: Disabled        # public-access",
         "    public_network_access: Enabled        # public-access",
         "postgresql_servers[0].public_network_access", "policy violation (private-only"),
    Case("policy-pg-firewall", "    storage_gb: 32",
         "    storage_gb: 32\n    firewall_rules: [0.0.0.0-255.255.255.255]",
         "postgresql_servers[0].firewall_rules", "firewall rules open the server's public endpoint",
         at="firewall_rules:"),
    Case("policy-service-loadbalancer", "    type: ClusterIP", "    type: LoadBalancer",
         "langfuse.service.type", "must be ClusterIP; LoadBalancer exposes it"),
    Case("policy-ingress", "  namespace: langfuse\n",
         "  namespace: langfuse\n  ingress: {host: langfuse.example.com}\n", "langfuse.ingress",
         "an Ingress would expose it", at="  ingress:"),
    Case("policy-live-outside-prod", "      value: dry-run ", "      value: live ",
         "secrets.items[6].value", "'live' is allowed only in prod"),
    Case("policy-business-db", "    server: nsc-pg-langfuse-${env}\n    database: langfuse",
         "    server: nsc-pg-${env}\n    database: langfuse", "langfuse.database.server",
         "policy violation (layer separation"),
    Case("policy-nsg-internet", 'source: {subnets: ["nsc-vnet-${env}/snet-aks"]}\n    destination: {private_endpoints: [nsc-pe-openai]}',
         'source: {address_prefixes: ["0.0.0.0/0"]}\n    destination: {private_endpoints: [nsc-pe-openai]}',
         "nsg_rules[0].source.address_prefixes", "opens the rule to the internet",
         at='source: {address_prefixes'),
    Case("policy-nsg-allow-internet-tag", 'source: {subnets: ["nsc-vnet-${env}/snet-aks"]}\n    destination: {private_endpoints: [nsc-pe-openai]}',
         'source: {service_tag: Internet}\n    destination: {private_endpoints: [nsc-pe-openai]}',
         "nsg_rules[0].source", "an Allow rule from 'Internet' opens the path to the internet",
         at="source: {service_tag: Internet}"),
    Case("policy-nsg-allow-every-port", 'destination: {private_endpoints: [nsc-pe-openai]}\n    destination_ports: ["443"]\n  - name: allow-databricks-to-openai-443',
         'destination: {private_endpoints: [nsc-pe-openai]}\n    destination_ports: ["*"]\n  - name: allow-databricks-to-openai-443',
         "nsg_rules[0].destination_ports", "name the ports the path needs (443, 5432), not `*`",
         at='destination_ports: ["*"]'),
    Case("nsg-unknown-service-tag", "source: {service_tag: VirtualNetwork}",
         "source: {service_tag: AzureCloud}", "nsg_rules[4].source.service_tag",
         "'VirtualNetwork', 'AzureLoadBalancer', 'Internet' or '*' (got 'AzureCloud')"),
    Case("nsg-rule-end-two-ways", "source: {service_tag: VirtualNetwork}",
         'source: {service_tag: VirtualNetwork, address_prefixes: ["10.10.0.0/16"]}',
         "nsg_rules[4].source", "exactly one of subnets, private_endpoints, address_prefixes, "
         "service_tag is expected (got address_prefixes, service_tag)"),
    Case("name-openai-too-long", "  - name: nsc-aoai-${env}\n", f"  - name: {LONG}\n",
         "openai_accounts[0].name", "must be 2-64 characters long (got 65)"),
    Case("name-pg-uppercase", "  - name: nsc-pg-langfuse-${env}\n", "  - name: NSC-PG-Langfuse\n",
         "postgresql_servers[0].name", "lower-case letters, digits and hyphens"),
    Case("name-secret-underscore", "    - name: langfuse-salt\n", "    - name: langfuse_salt\n",
         "secrets.items[10].name", "alphanumerics and hyphens"),
    Case("name-action-group-short", "    short_name: nscagent${env} ",
         "    short_name: nsc-agent-alerts ", "action_groups[0].short_name",
         "must be 1-12 characters long (got 16)"),
    Case("name-table-suffix", "  - name: NscAgentEvents_CL\n", "  - name: NscAgentEvents\n",
         "log_analytics_tables[0].name", "a custom table ends with _CL"),
    Case("name-private-endpoint-chars", "  - name: nsc-pe-openai\n", "  - name: nsc-pe-openai!\n",
         "private_endpoints[0].name", "alphanumerics, underscores, periods and hyphens"),
    Case("name-dns-zone", "  - name: privatelink.openai.azure.com\n", "  - name: openai.azure.com\n",
         "private_dns_zones[0].name", "privatelink."),
    Case("name-key-vault", "    - name: nsc-kv-${env}\n", "    - name: nsc--kv\n",
         "existing.key_vaults[0].name", "no consecutive hyphens"),
    Case("name-kubernetes-service", "    name: langfuse-internal ", "    name: LangFuse_Internal ",
         "langfuse.service.name", "DNS-1123 label"),
    Case("name-pg-reserved-login", "    admin_login: langfuseadmin", "    admin_login: postgres",
         "postgresql_servers[0].admin_login", "reserved"),
    Case("unknown-variable", "location: koreacentral", "location: ${region}", "location",
         "unknown variable ${region}"),
    Case("duplicate-name", "  - name: nsc-alert-approval-timeout-${env}\n",
         "  - name: nsc-alert-triage-ready-${env}\n", "log_alerts[1].name", "declared twice"),
    Case("zone-does-not-match-group", "dns_zone_group: {zones: [privatelink.openai.azure.com]}",
         "dns_zone_group: {zones: [privatelink.postgres.database.azure.com]}",
         "private_endpoints[0].dns_zone_group.zones[0]", "expected privatelink.openai.azure.com"),
]  # fmt: skip


def _write_case(tmp_path: Path, text: str, case: Case) -> tuple[Path, int]:
    assert text.count(case.old) == 1, f"case {case.id}: {case.old!r} must occur exactly once"
    edited = text.replace(case.old, case.new)
    target = tmp_path / "desired_state.yaml"
    target.write_text(edited, encoding="utf-8")
    if case.at is None:  # the line where the edit starts (skipping a leading blank)
        start = text.index(case.old) + (len(case.new) - len(case.new.lstrip("\n")))
        return target, edited.count("\n", 0, start) + 1
    lines = [i for i, line in enumerate(edited.splitlines(), start=1) if case.at in line]
    assert lines, f"case {case.id}: marker {case.at!r} not in the edited file"
    return target, lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_1_with_location_field_and_expectation(
    case: Case, seed_text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, line = _write_case(tmp_path, seed_text, case)
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 1
    assert "Traceback" not in err + out
    assert case.expect in err
    matching = [m for m in err.splitlines() if f"{path}:{line}:" in m and case.expect in m]
    assert matching, f"no problem at {path}:{line} with {case.expect!r} in:\n{err}"
    if case.field:
        assert f" {case.field}: " in matching[0], matching[0]


def test_many_problems_are_reported_in_one_run(seed_text: str, tmp_path: Path) -> None:
    edits = [CASES_BY_ID[i] for i in ("unknown-field-typo", "dangling-subnet",
                                      "policy-live-outside-prod", "name-table-suffix")]  # fmt: skip
    text = seed_text
    for case in edits:
        text = text.replace(case.old, case.new)
    path = tmp_path / "desired_state.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DesiredStateError) as error:
        load_desired_state(path)
    problems = error.value.problems
    for case in edits:
        assert any(case.expect in p.message and p.field == case.field for p in problems), case.id
    assert all(p.location is not None and p.location.file == path for p in problems)
    lines = [p.location.line for p in problems if p.location is not None]
    assert lines == sorted(lines)


def test_credential_values_are_not_echoed_in_errors(seed_text: str, tmp_path: Path) -> None:
    leaked = "AccountKey=c2VjcmV0LXZhbHVlLW5vdC1zaG93bg=="
    text = seed_text.replace("      source: {external: true}", f'      source: {{env: "{leaked}"}}')
    path = tmp_path / "desired_state.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DesiredStateError) as error:
        load_desired_state(path)
    assert leaked not in str(error.value)
    assert "looks like a credential; not shown" in str(error.value)


def test_overlay_problem_points_into_the_overlay_file(seed_text: str, tmp_path: Path) -> None:
    (tmp_path / "desired_state.yaml").write_text(seed_text, encoding="utf-8")
    (tmp_path / "envs").mkdir()
    overlay = tmp_path / "envs" / "staging.yaml"
    overlay.write_text(
        "environment: staging\naction_groups:\n  - name: nsc-ag-agent-${env}\n"
        "    short_name: nscagentstaging\n",
        encoding="utf-8",
    )
    with pytest.raises(DesiredStateError) as error:
        load_desired_state(tmp_path / "desired_state.yaml", env="staging")
    (problem,) = error.value.problems
    assert problem.location is not None
    assert (problem.location.file, problem.location.line) == (overlay, 4)
    assert problem.field == "action_groups[0].short_name"


def test_missing_overlay_is_a_clear_error(seed_text: str, tmp_path: Path) -> None:
    (tmp_path / "desired_state.yaml").write_text(seed_text, encoding="utf-8")
    with pytest.raises(DesiredStateError, match=r"no overlay for 'prod'.*envs/prod.yaml"):
        load_desired_state(tmp_path / "desired_state.yaml", env="prod")


def test_missing_file_exits_1_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(tmp_path / "absent.yaml")])
    _, err = capsys.readouterr()
    assert exit_info.value.code == 1
    assert "cannot read" in err
    assert "Traceback" not in err


CASES_BY_ID = {case.id: case for case in CASES}


def test_a_deny_rule_may_name_the_internet_and_every_port(seed_text: str, tmp_path: Path) -> None:
    """What an Allow rule must not name (the Internet, `*`), a Deny rule closes: accepted."""
    extra = (
        "  - name: deny-internet-to-pe\n    nsg: nsc-nsg-data-${env}\n    priority: 4001\n"
        "    direction: Inbound\n    access: Deny\n    protocol: '*'\n"
        "    source: {service_tag: Internet}\n"
        "    destination: {private_endpoints: [nsc-pe-openai]}\n    destination_ports: ['*']\n"
    )
    marker = "\n# Seed §3.4 alerts"
    assert seed_text.count(marker) == 1
    path = tmp_path / "desired_state.yaml"
    path.write_text(seed_text.replace(marker, extra + marker), encoding="utf-8")
    rule = {r.name: r for r in load_desired_state(path).nsg_rules}["deny-internet-to-pe"]
    assert rule.access == "Deny"
    assert rule.source.service_tag == "Internet"
    assert rule.destination_ports == ["*"]

"""Checks of the private PaaS services (seed §6): the OpenAI account and its deployments, the
LangFuse PostgreSQL server and its firewall. Reads ARM state only.
"""

from __future__ import annotations

from typing import Any

from nsc_reconcile.resources.base import to_wire
from nsc_reconcile.verification.context import Run, make_check, props_of, rg_of, same_id
from nsc_reconcile.verification.results import Check


def check_openai_account(run: Run, account: Any) -> Check:
    """Seed §6: "the OpenAI account / path is settled": the account exists, private-only
    (publicNetworkAccess Disabled, network ACL default Deny), deployments provisioned."""
    title = f"OpenAI account {account.name} exists and is private-only"
    address = account.address
    wire = run.wire(address)
    if wire is None:
        return make_check(
            f"openai-account/{account.name}",
            title,
            [f"expected id={run.id_of(address)}"],
            ["the account does not exist"],
        )
    props = props_of(wire)
    acls = props.get("networkAcls") or {}
    evidence = [
        f"id={wire.get('id')}",
        f"kind={wire.get('kind')}",
        f"provisioningState={props.get('provisioningState')}",
        f"publicNetworkAccess={props.get('publicNetworkAccess')}",
        f"networkAcls.defaultAction={acls.get('defaultAction')}",
        f"ipRules={len(acls.get('ipRules') or [])}",
        f"customSubDomainName={props.get('customSubDomainName')}",
        f"endpoint={props.get('endpoint')}",
    ]
    problems = []
    if props.get("publicNetworkAccess") != "Disabled":
        problems.append(f"publicNetworkAccess is {props.get('publicNetworkAccess')} (expected "
                        "Disabled)")  # fmt: skip
    if acls.get("defaultAction") != "Deny":
        problems.append(f"networkAcls.defaultAction is {acls.get('defaultAction')} (expected Deny)")
    if props.get("provisioningState") not in (None, "Succeeded"):
        problems.append(f"provisioningState is {props.get('provisioningState')}")
    if not props.get("customSubDomainName"):
        problems.append("no customSubDomainName (a private endpoint needs one)")
    deployments = []
    for deployment in account.deployments:
        found = run.wire(deployment.address)
        if found is None:
            problems.append(f"deployment {deployment.name} does not exist")
            continue
        dprops = props_of(found)
        model = dprops.get("model") or {}
        sku = found.get("sku") or {}
        state = dprops.get("provisioningState")
        deployments.append(
            f"{deployment.name} ({model.get('name')} {model.get('version')}, "
            f"{sku.get('name')} x{sku.get('capacity')}, {state})"
        )
        if state not in (None, "Succeeded"):
            problems.append(f"deployment {deployment.name} is {state}")
    if deployments:
        evidence.append("deployments: " + ", ".join(deployments))
    return make_check(f"openai-account/{account.name}", title, evidence, problems)


def check_langfuse_postgres(run: Run, server: Any) -> Check:
    """Seed §6: the LangFuse PostgreSQL Flexible Server exists, separate from the business
    DB, private only (public access Disabled, no firewall rules)."""
    check_id = f"langfuse-postgres/{server.name}"
    title = f"LangFuse PostgreSQL {server.name} exists, separate from the business DB, private"
    wire = run.wire(server.address)
    if wire is None:
        return make_check(check_id, title, [f"expected id={run.id_of(server.address)}"],
                          ["the server does not exist"])  # fmt: skip
    props = props_of(wire)
    network = props.get("network") or {}
    evidence = [
        f"id={wire.get('id')}",
        f"state={props.get('state')}",
        f"version={props.get('version')}",
        f"fqdn={props.get('fullyQualifiedDomainName')}",
        f"network.publicNetworkAccess={network.get('publicNetworkAccess')}",
    ]
    problems = []
    business = [s for s in run.state.existing.postgresql_servers if s.role == "business"]
    for other in business:
        other_id = run.id_of(other.address)
        evidence.append(f"business server {other.name}: {other_id}")
        if same_id(other_id, str(wire.get("id"))):
            problems.append(f"it is the business server {other.name}")
    if not business:
        evidence.append("no business server declared")
    if network.get("publicNetworkAccess") != "Disabled":
        problems.append(f"publicNetworkAccess is {network.get('publicNetworkAccess')} "
                        "(expected Disabled)")  # fmt: skip
    group = rg_of(str(wire.get("id")))
    listing = run.clients.postgres.firewall_rules.list_by_server(group, server.name)
    rules = [to_wire(r) for r in listing]
    if rules:
        shown = ", ".join(
            f"{r.get('name')} {props_of(r).get('startIpAddress')}-{props_of(r).get('endIpAddress')}"
            for r in rules
        )
        evidence.append(f"firewall rules: {shown}")
        problems.append(f"{len(rules)} firewall rule(s) present (expected none)")
    else:
        evidence.append("firewall rules: none")
    databases = []
    for database in server.databases:
        if run.live(database.address) is None:
            problems.append(f"database {database.name} does not exist")
        else:
            databases.append(database.name)
    if databases:
        evidence.append("databases: " + ", ".join(databases))
    return make_check(check_id, title, evidence, problems)

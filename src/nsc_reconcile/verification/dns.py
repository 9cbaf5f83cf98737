"""The DNS check (seed §5 phase 4 / §6): a service hostname resolves, through the given resolver
inside the VNet, to its private endpoint's IP via the privatelink zone. Sends DNS queries only.
"""

from __future__ import annotations

from nsc_reconcile.model.network import PrivateEndpoint
from nsc_reconcile.verification.context import Run, make_check
from nsc_reconcile.verification.endpoints import endpoint_facts
from nsc_reconcile.verification.resolver import resolve_a
from nsc_reconcile.verification.results import Check


def check_endpoint_dns(run: Run, endpoint: PrivateEndpoint) -> Check:
    """Seed §5 phase 4 / §6: the service hostname resolves to the endpoint's private IP
    through DNS inside the VNet (the given resolver)."""
    facts = endpoint_facts(run, endpoint)
    check_id = f"dns/{endpoint.name}"
    host = facts.hostname or f"(hostname of {endpoint.target})"
    title = f"{host} resolves to the private IP of {endpoint.name}"
    if facts.hostname is None:
        return make_check(check_id, title, [], [f"no service hostname known for {endpoint.target}"])
    if run.resolver is None:
        return make_check(
            check_id,
            title,
            [f"expected {facts.hostname} -> {facts.ip or '(NIC IP unknown)'}"],
            [],
            skip="needs a resolver inside the VNet: pass --resolver IP:PORT (a DNS server or "
            "Private Resolver inbound endpoint that answers as Azure DNS does for the VNet)",
        )
    where = f"{run.resolver[0]}:{run.resolver[1]}"
    try:
        rcode, chain, addresses = resolve_a(facts.hostname, run.resolver)
    except Exception as error:  # timeouts, refused: a failed check, not a crash
        return make_check(check_id, title, [f"resolver {where}"],
                          [f"query failed: {type(error).__name__}: {error}"])  # fmt: skip
    steps = [facts.hostname, *(f"CNAME {c}" for c in chain)]
    steps.append(f"A {', '.join(addresses)}" if addresses else rcode)
    evidence = [" -> ".join(steps) + f" (resolver {where})", f"NIC IP {facts.ip}"]
    problems = []
    if not addresses:
        problems.append(f"{facts.hostname} does not resolve to an address ({rcode})")
    if facts.ip is None:
        problems.append("the endpoint's NIC IP is unknown (endpoint or NIC missing)")
    elif addresses and sorted(set(addresses)) != [facts.ip]:
        problems.append(f"resolved to {', '.join(addresses)}, expected {facts.ip}")
    expected_name = f"{facts.label}.{facts.zone}"
    if addresses and expected_name not in chain:
        problems.append(f"not resolved through {facts.zone} (no CNAME to {expected_name})")
    return make_check(check_id, title, evidence, problems)

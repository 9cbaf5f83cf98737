"""The DNS checks (seed §5 phase 4 / §6): a service hostname resolves, through DNS inside the
VNet, to its private endpoint's IP via the privatelink zone. ``dns/<endpoint>`` asks the given
resolver (``--resolver``); the ``dns`` smoke asks as a client inside the VNet does (the
resolver, else the system's) and also resolves the in-cluster name of the LangFuse Service.
Sends DNS queries only.
"""

from __future__ import annotations

from collections.abc import Callable

from nsc_reconcile.model.network import PrivateEndpoint
from nsc_reconcile.verification.context import Run, make_check
from nsc_reconcile.verification.endpoints import endpoint_facts
from nsc_reconcile.verification.netview import Resolution
from nsc_reconcile.verification.resolver import resolve_a
from nsc_reconcile.verification.results import Check


def check_endpoint_dns(run: Run, endpoint: PrivateEndpoint) -> Check:
    """Seed §5 phase 4 / §6: the service hostname resolves to the endpoint's private IP
    through DNS inside the VNet (the given resolver)."""
    if run.resolver is None:
        facts = endpoint_facts(run, endpoint)
        return make_check(
            f"dns/{endpoint.name}",
            f"{facts.hostname or endpoint.target} resolves to the private IP of {endpoint.name}",
            [f"expected {facts.hostname} -> {facts.ip or '(NIC IP unknown)'}"],
            [],
            skip="needs a resolver inside the VNet: pass --resolver IP:PORT (a DNS server or "
            "Private Resolver inbound endpoint that answers as Azure DNS does for the VNet)",
        )
    resolver = run.resolver
    where = f"resolver {resolver[0]}:{resolver[1]}"

    def ask(name: str) -> Resolution:
        rcode, chain, addresses = resolve_a(name, resolver)
        return Resolution(name, rcode, tuple(chain), tuple(addresses))

    return _endpoint_resolution(run, endpoint, f"dns/{endpoint.name}", ask, where)


def _endpoint_resolution(
    run: Run,
    endpoint: PrivateEndpoint,
    check_id: str,
    resolve: Callable[[str], Resolution],
    where: str,
) -> Check:
    facts = endpoint_facts(run, endpoint)
    host = facts.hostname or f"(hostname of {endpoint.target})"
    title = f"{host} resolves to the private IP of {endpoint.name}"
    if facts.hostname is None:
        return make_check(check_id, title, [], [f"no service hostname known for {endpoint.target}"])
    try:
        found = resolve(facts.hostname)
    except Exception as error:  # timeouts, refused: a failed check, not a crash
        return make_check(check_id, title, [where],
                          [f"query failed: {type(error).__name__}: {error}"])  # fmt: skip
    steps = [facts.hostname, *(f"CNAME {c}" for c in found.chain)]
    steps.append(f"A {', '.join(found.addresses)}" if found.addresses else found.rcode)
    evidence = [" -> ".join(steps) + f" ({where})", f"NIC IP {facts.ip}"]
    problems = []
    if not found.addresses:
        problems.append(f"{facts.hostname} does not resolve to an address ({found.rcode})")
    if facts.ip is None:
        problems.append("the endpoint's NIC IP is unknown (endpoint or NIC missing)")
    elif found.addresses and sorted(set(found.addresses)) != [facts.ip]:
        problems.append(f"resolved to {', '.join(found.addresses)}, expected {facts.ip}")
    expected_name = f"{facts.label}.{facts.zone}"
    # The system resolver does not show the CNAME chain; only a DNS query does.
    if found.addresses and found.chain and expected_name not in found.chain:
        problems.append(f"not resolved through {facts.zone} (no CNAME to {expected_name})")
    if found.addresses and not found.chain and run.network.resolver is not None:
        problems.append(f"not resolved through {facts.zone} (no CNAME to {expected_name})")
    return make_check(check_id, title, evidence, problems)


def smoke_dns(run: Run) -> list[Check]:
    """The ``dns`` smoke: every private endpoint's service name resolves, as a client inside
    the VNet resolves it, to the endpoint's NIC IP through its privatelink zone; and the
    LangFuse Service's in-cluster name resolves (only inside the cluster: SKIP elsewhere)."""
    view = run.network
    where = (
        f"resolver {view.resolver[0]}:{view.resolver[1]}" if view.resolver else "system resolver"
    )
    checks = [
        _endpoint_resolution(run, endpoint, f"smoke-dns/{endpoint.name}", view.resolve, where)
        for endpoint in run.state.private_endpoints
    ]
    workload = run.state.langfuse
    if workload is not None:
        name = f"{workload.service.name}.{workload.namespace}.svc.cluster.local"
        check_id = f"smoke-dns/{workload.service.name}"
        title = f"{name} resolves (the LangFuse Service, inside the cluster)"
        try:
            found = view.resolve(name)
        except Exception as error:
            failed = f"query failed: {type(error).__name__}: {error}"
            return [*checks, make_check(check_id, title, [where], [failed])]
        if found.addresses:
            checks.append(make_check(check_id, title, [found.describe() + f" ({where})"], []))
        else:
            checks.append(make_check(check_id, title, [found.describe() + f" ({where})"], [],
                                     skip="cluster DNS names resolve only inside the cluster: "
                                     "run verify --smoke --from aks"))  # fmt: skip
    return checks

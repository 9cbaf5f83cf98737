"""Which failures are retried, per kind, and how: a retried write re-reads and re-plans first
(If-Match/412 included); permanent errors (a taken name, an operation that failed for good)
fail at once. Real SDK clients against the emulator, with injected faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from nsc_reconcile import load_desired_state
from nsc_reconcile.azure import Clients
from nsc_reconcile.engine import Engine
from nsc_reconcile.model.state import DesiredState
from nsc_reconcile.plans import Outcome
from nsc_reconcile.resources import reconciler_for
from nsc_reconcile.retry import RetryPolicy
from tests.paths import DESIRED_STATE

LINK = "private_dns_zone_link/privatelink.openai.azure.com/link-nsc-vnet-dev"
ZONE = "private_dns_zone/privatelink.openai.azure.com"
PE = "private_endpoint/nsc-pe-openai"
GROUP = "action_group/nsc-ag-agent-dev"
FAST = RetryPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.05, patience_s=10)


@pytest.fixture
def state() -> DesiredState:
    return load_desired_state(DESIRED_STATE)


def requests_to(ctl: Callable[..., Any], pattern: str) -> list[tuple[str, int | None]]:
    """(method, status) of every logged request whose path ends with ``pattern``."""
    return [
        (r["method"], r["status"]) for r in ctl("GET", "requests") if r["path"].endswith(pattern)
    ]


def apply_targets(state: DesiredState, clients: Clients, *targets: str, **kw: Any) -> Any:
    engine = Engine(state, clients, retry=FAST, parallelism=4, **kw)
    return engine.apply(engine.plan(list(targets)))


# ---------------------------------------------------------------- per-kind codes
CASES = [
    pytest.param(
        PE,
        {"method": "PUT", "path": "/privateEndpoints/nsc-pe-openai$", "status": 400,
         "code": "AccountProvisioningStateInvalid",
         "message": "Call to Microsoft.CognitiveServices/accounts failed: account is in state "
                    "Accepted.", "count": 2},
        Outcome.CREATED, 3,
        id="private endpoint vs account still provisioning: transient (azurerm#31712)",
    ),
    pytest.param(
        GROUP,
        {"method": "PUT", "path": "/actionGroups/nsc-ag-agent-dev$", "status": 409,
         "code": "Conflict", "message": "The name 'nsc-ag-agent-dev' is already in use.",
         "count": None},
        Outcome.FAILED, 1,
        id="generic 409 Conflict for a taken name: permanent",
    ),
    pytest.param(
        GROUP,
        {"method": "PUT", "path": "/actionGroups/nsc-ag-agent-dev$", "status": 409,
         "code": "Conflict", "message": "Another operation on this resource is in progress.",
         "count": 1},
        Outcome.CREATED, 2,
        id="generic 409 Conflict of an operation in flight: transient",
    ),
    pytest.param(
        ZONE,
        {"method": "PUT", "path": "/privateDnsZones/privatelink.openai.azure.com$",
         "action": "fail_lro", "code": "Conflict",
         "message": "A zone with this name already exists in another resource group.",
         "count": None},
        Outcome.FAILED, 1,
        id="LRO ended Failed with a permanent code: not re-PUT",
    ),
    pytest.param(
        ZONE,
        {"method": "PUT", "path": "/privateDnsZones/privatelink.openai.azure.com$",
         "action": "fail_lro", "code": "InternalServerError", "count": 1},
        Outcome.CREATED, 2,
        id="LRO ended Failed with a transient code: re-read, then re-PUT",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("address", "fault", "outcome", "puts"), CASES)
def test_retry_decision_per_kind_and_code(
    state: DesiredState,
    clients: Clients,
    ctl: Callable[..., Any],
    address: str,
    fault: dict[str, Any],
    outcome: Outcome,
    puts: int,
) -> None:
    ctl("POST", "faults", fault)
    result = apply_targets(state, clients, address)
    got = result.get(address)
    assert got.outcome is outcome, result.render()
    if outcome is Outcome.FAILED:
        assert fault["code"] in (got.detail or "")
        assert "\n" not in (got.detail or "")
    suffix = fault["path"].rstrip("$")
    assert [m for m, _ in requests_to(ctl, suffix) if m == "PUT"] == ["PUT"] * puts


# ---------------------------------------------------------------- fresh reads, If-Match
class _SomeoneTagsItBetweenTries:
    """A progress sink that, when the engine announces a retry, has someone else change the
    resource (a tag of theirs): what a retry from a stale snapshot would wipe out."""

    def __init__(self, ctl: Callable[..., Any], rid: str) -> None:
        self.ctl = ctl
        self.rid = rid

    def started(self, address: str, action: str) -> None: ...

    def finished(self, address: str, outcome: str, seconds: float) -> None: ...

    def retrying(self, address: str, error: str, delay: float) -> None:
        live = self.ctl("GET", f"state?id={self.rid}")
        live.setdefault("tags", {})["owner"] = "network-team"
        del live["etag"]  # a write of theirs: a new ETag
        self.ctl("PUT", f"state?id={self.rid}", live)


def test_a_retried_write_re_reads_first_and_keeps_what_others_wrote_meanwhile(
    state: DesiredState, make_clients: Callable[..., Clients], ctl: Callable[..., Any]
) -> None:
    clients = make_clients(retry_total=0)
    apply_targets(state, clients, LINK)
    rid = Engine(state, clients).plan([LINK]).get(LINK).id
    assert rid is not None
    drifted = ctl("GET", f"state?id={rid}")
    drifted["properties"]["registrationEnabled"] = True
    ctl("PUT", f"state?id={rid}", drifted)
    ctl("POST", "faults", {"method": "PUT", "path": "/virtualNetworkLinks/link-nsc-vnet-dev$",
                           "status": 409, "code": "AnotherOperationInProgress", "count": 1})  # fmt: skip
    ctl("DELETE", "requests")

    result = apply_targets(state, clients, LINK, progress=_SomeoneTagsItBetweenTries(ctl, rid))

    assert result.get(LINK).outcome is Outcome.UPDATED, result.render()
    now = ctl("GET", f"state?id={rid}")
    assert now["properties"]["registrationEnabled"] is False
    assert now["tags"]["owner"] == "network-team"  # the retry did not write a stale body
    calls = requests_to(ctl, "/virtualNetworkLinks/link-nsc-vnet-dev")
    failed = calls.index(("PUT", 409))
    assert ("GET", 200) in calls[failed : calls.index(("PUT", 202))]


def test_updates_of_private_dns_carry_if_match_and_creates_if_none_match(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    apply_targets(state, clients, LINK)
    created = [r for r in ctl("GET", "requests") if r["method"] == "PUT"
               and r["path"].endswith(("/privateDnsZones/privatelink.openai.azure.com",
                                       "/virtualNetworkLinks/link-nsc-vnet-dev"))]  # fmt: skip
    assert len(created) == 2
    assert all(r["request_headers"].get("if-none-match") == "*" for r in created)

    rid = Engine(state, clients).plan([LINK]).get(LINK).id
    drifted = ctl("GET", f"state?id={rid}")
    drifted["properties"]["registrationEnabled"] = True
    ctl("PUT", f"state?id={rid}", drifted)
    etag = ctl("GET", f"state?id={rid}")["etag"]
    ctl("DELETE", "requests")
    apply_targets(state, clients, LINK)
    (update,) = [r for r in ctl("GET", "requests") if r["method"] == "PUT"]
    assert update["request_headers"].get("if-match") == etag


def test_a_write_from_a_stale_read_is_refused_with_412_and_theirs_survives(
    state: DesiredState, clients: Clients, ctl: Callable[..., Any]
) -> None:
    apply_targets(state, clients, LINK)
    engine = Engine(state, clients)
    engine.plan([LINK])
    resource = engine.graph.nodes[LINK]
    reconciler = reconciler_for(resource)
    stale = reconciler.read(engine.context, resource)
    assert stale is not None
    assert stale.etag
    theirs = ctl("GET", f"state?id={stale.id}")
    theirs["tags"]["owner"] = "network-team"
    del theirs["etag"]  # a write of theirs: a new ETag
    ctl("PUT", f"state?id={stale.id}", theirs)

    from nsc_reconcile.resources.base import if_match

    with pytest.raises(HttpResponseError) as refused, if_match(stale.id, stale):
        reconciler.write(engine.context, resource, stale)
    assert refused.value.status_code == 412
    assert ctl("GET", f"state?id={stale.id}")["tags"]["owner"] == "network-team"


def test_a_412_makes_the_engine_re_read_and_re_plan_that_resource(
    state: DesiredState, make_clients: Callable[..., Clients], ctl: Callable[..., Any]
) -> None:
    clients = make_clients(retry_total=0)
    ctl("POST", "faults", {"method": "PUT", "path": "/virtualNetworkLinks/link-nsc-vnet-dev$",
                           "status": 412, "code": "PreconditionFailed", "count": 1})  # fmt: skip
    result = apply_targets(state, clients, LINK)
    assert result.get(LINK).outcome is Outcome.CREATED, result.render()
    calls = requests_to(ctl, "/virtualNetworkLinks/link-nsc-vnet-dev")
    assert calls.index(("PUT", 412)) < calls.index(("GET", 404), calls.index(("PUT", 412)))

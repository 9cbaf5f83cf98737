"""Log alert evaluation in the emulator. Through the real clients (azure-mgmt-monitor,
azure-monitor-ingestion, azure-mgmt-alertsmanagement): rows posted to a DCR make each matching
rule fire at its next (scaled) evaluation, the alert is read back with the spec's filters and
paging, each receiver of the wired action group gets a notification, a disabled rule never
fires and an unsupported query is reported, never silently ignored. In-process with a fake
clock: thresholds, failing periods, aggregations, time filters, muting and the KQL subset."""

# The SDK overloads type bodies as models or IO; the clients accept JSON dicts at runtime.
# mypy: disable-error-code="call-overload"

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.alerting import DEFAULT_TIME_SCALE, Alerting, iso
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.arm import World
from nsc_reconcile.emulator.kql import Context, KqlError, parse_query
from nsc_reconcile.emulator.worlds import LOCATION, LOG_ANALYTICS_NAME, RESOURCE_GROUP
from tests.oav import SpecPack, validate_requests

TABLE = "AgentEvents_CL"
STREAM = f"Custom-{TABLE}"
SCALE = 0.005  # PT5M -> an evaluation every 1.5 s
PERIOD = 300 * SCALE
WEBHOOK = "https://hooks.example.com/workflows/abc?sig=s3cr3t-token-value"


def _workspace(sub: str) -> str:
    return (
        f"/subscriptions/{sub}/resourceGroups/{RESOURCE_GROUP}/providers/"
        f"Microsoft.OperationalInsights/workspaces/{LOG_ANALYTICS_NAME}"
    )


def _dcr(clients: Clients, sub: str) -> Any:
    return clients.monitor.data_collection_rules.create(
        RESOURCE_GROUP,
        "dcr-alert-events",
        {
            "location": LOCATION,
            "kind": "Direct",
            "properties": {
                "streamDeclarations": {
                    STREAM: {
                        "columns": [
                            {"name": "TimeGenerated", "type": "datetime"},
                            {"name": "EventType", "type": "string"},
                            {"name": "Attempt", "type": "int"},
                        ]
                    }
                },
                "destinations": {
                    "logAnalytics": [{"workspaceResourceId": _workspace(sub), "name": "law"}]
                },
                "dataFlows": [
                    {"streams": [STREAM], "destinations": ["law"], "outputStream": STREAM}
                ],
            },
        },
    )


def _action_group(clients: Clients, name: str = "ag-oncall", enabled: bool = True) -> Any:
    return clients.monitor.action_groups.create_or_update(
        RESOURCE_GROUP,
        name,
        {
            "location": "Global",
            "group_short_name": "oncall",
            "enabled": enabled,
            "email_receivers": [{"name": "oncall", "email_address": "oncall@example.com"}],
            "sms_receivers": [
                {"name": "pager", "country_code": "82", "phone_number": "1012345678"}
            ],
            "webhook_receivers": [{"name": "teams", "service_uri": WEBHOOK}],
        },
    )


def _rule(
    clients: Clients,
    sub: str,
    name: str,
    query: str,
    groups: list[str],
    severity: int = 2,
    enabled: bool = True,
) -> Any:
    return clients.monitor.scheduled_query_rules.create_or_update(
        RESOURCE_GROUP,
        name,
        {
            "location": LOCATION,
            "kind": "LogAlert",
            "severity": severity,
            "enabled": enabled,
            "evaluation_frequency": "PT5M",
            "window_size": "PT5M",
            "scopes": [_workspace(sub)],
            "criteria": {
                "all_of": [
                    {
                        "query": query,
                        "time_aggregation": "Count",
                        "operator": "GreaterThan",
                        "threshold": 0,
                        "failing_periods": {
                            "number_of_evaluation_periods": 1,
                            "min_failing_periods_to_alert": 1,
                        },
                    }
                ]
            },
            "actions": {"action_groups": groups},
            "description": f"{name} test rule",
        },
    )


def _post(clients: Clients, dcr: Any, *events: str) -> datetime:
    now = datetime.now(UTC)
    rows: list[MutableMapping[str, Any]] = [
        {"TimeGenerated": now.isoformat(), "EventType": e, "Attempt": 1} for e in events
    ]
    clients.logs_ingestion_client(dcr.endpoints.logs_ingestion).upload(
        rule_id=dcr.immutable_id, stream_name=STREAM, logs=rows
    )
    return now


def _until(found: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = found()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _evaluations(ctl: Callable[..., Any], rule_id: str) -> dict[str, Any]:
    report = ctl("GET", "alert-evaluations")
    return next(r for r in report["rules"] if r["alertRule"].lower() == rule_id.lower())


# ------------------------------------------------------------------- through the real clients


def test_rows_fire_each_matching_rule_at_its_next_evaluation(
    emu: Emulator, ctl: Callable[..., Any], clients: Clients
) -> None:
    assert ctl("GET", "config")["alert_time_scale"] == DEFAULT_TIME_SCALE
    ctl("POST", "config", {"alert_time_scale": SCALE})
    sub = emu.info["subscription_id"]
    dcr = _dcr(clients, sub)
    group = _action_group(clients)
    triage = _rule(clients, sub, "r-triage", f'{TABLE}\n| where EventType == "TRIAGE_READY"',
                   [group.id], severity=2)  # fmt: skip
    timeout = _rule(clients, sub, "r-timeout", f'{TABLE} | where EventType == "APPROVAL_TIMEOUT"',
                    [group.id], severity=3)  # fmt: skip
    either = _rule(clients, sub, "r-either",
                   f'{TABLE} | where EventType in ("TRIAGE_READY", "APPROVAL_TIMEOUT")',
                   [group.id], severity=1)  # fmt: skip
    alerts = clients.alertsmanagement.alerts
    assert list(alerts.get_all(time_range="1h")) == []

    posted = _post(clients, dcr, "TRIAGE_READY", "EXECUTION_FAILED")
    fired = _until(lambda: list(alerts.get_all(alert_rule=either.id, time_range="1h")))
    assert len(fired) == 1
    essentials = fired[0].properties.essentials
    assert essentials.alert_rule == either.id
    assert essentials.severity == "Sev1"
    assert essentials.monitor_condition == "Fired"
    assert essentials.alert_state == "New"
    assert essentials.monitor_service == "Log Alerts V2"
    assert essentials.signal_type == "Log"
    assert essentials.target_resource == _workspace(sub)
    assert essentials.target_resource_group == RESOURCE_GROUP
    # Fired at the first evaluation after the rows landed: within one (scaled) period.
    assert posted <= essentials.start_date_time <= posted + timedelta(seconds=PERIOD + 1.0)

    # Only the rule whose query matches fired; the APPROVAL_TIMEOUT rule saw no event.
    triage_alerts = _until(lambda: list(alerts.get_all(alert_rule=triage.id, time_range="1h")))
    assert [a.properties.essentials.severity for a in triage_alerts] == ["Sev2"]
    time.sleep(PERIOD + 0.2)  # one more evaluation: old rows are outside its window
    assert list(alerts.get_all(alert_rule=timeout.id, time_range="1h")) == []
    assert len(list(alerts.get_all(alert_rule=triage.id, time_range="1h"))) == 1

    # The spec's filters, sorting and paging (nextLink) through the real client.
    both = list(alerts.get_all(monitor_condition="Fired", sort_by="severity", sort_order="asc"))
    assert [a.name for a in both] == ["r-either", "r-triage"]
    pages = [[a.name for a in page] for page in alerts.get_all(page_count=1).by_page()]
    assert sorted(pages) == [["r-either"], ["r-triage"]]  # the second page through nextLink
    assert list(alerts.get_all(monitor_condition="Resolved")) == []
    assert [a.name for a in alerts.get_all(severity="Sev2")] == ["r-triage"]
    assert [a.name for a in alerts.get_all(target_resource_type="workspaces")] != []
    earlier = f"{iso(time.time() - 3600)}/{iso(posted.timestamp() - 60)}"
    assert list(alerts.get_all(custom_time_range=earlier)) == []
    selected: list[Any] = list(alerts.get_all(alert_rule=triage.id, select="severity,alertRule"))
    assert selected[0].properties.essentials.severity == "Sev2"
    assert selected[0].properties.essentials.monitor_condition is None  # not selected

    # get_by_id, with the evaluation's context (the query and the value that fired).
    alert_guid = fired[0].id.rsplit("/", 1)[1]
    one: Any = alerts.get_by_id(alert_guid)
    assert one.id == fired[0].id
    condition = one.properties.context["condition"]["allOf"][0]
    assert condition["metricValue"] == 1.0
    assert "TRIAGE_READY" in condition["searchQuery"]
    with pytest.raises(ResourceNotFoundError):
        alerts.get_by_id("00000000-0000-0000-0000-000000000000")

    # One notification per receiver of the wired action group, per alert; no webhook token.
    sent = [n for n in ctl("GET", "notifications") if n["alertId"] == fired[0].id]
    assert sorted((n["kind"], n["receiver"], n["address"]) for n in sent) == [
        ("email", "oncall", "oncall@example.com"),
        ("sms", "pager", "+82 1012345678"),
        ("webhook", "teams", "https://hooks.example.com/..."),
    ]
    assert {n["actionGroup"] for n in sent} == {group.id}
    assert {n["alertRule"] for n in sent} == {either.id}
    assert {n["severity"] for n in sent} == {"Sev1"}
    assert "s3cr3t" not in str(ctl("GET", "notifications"))

    # Reset forgets alerts, notifications and the time scale.
    ctl("POST", "reset")
    assert ctl("GET", "notifications") == []
    assert ctl("GET", "config")["alert_time_scale"] == DEFAULT_TIME_SCALE


def test_a_disabled_rule_never_fires_and_a_disabled_group_notifies_no_one(
    emu: Emulator, ctl: Callable[..., Any], clients: Clients
) -> None:
    ctl("POST", "config", {"alert_time_scale": SCALE})
    sub = emu.info["subscription_id"]
    dcr = _dcr(clients, sub)
    group = _action_group(clients)
    silent = _action_group(clients, "ag-silent", enabled=False)
    query = f'{TABLE} | where EventType == "EXECUTION_FAILED"'
    on = _rule(clients, sub, "r-on", query, [silent.id])
    off = _rule(clients, sub, "r-off", query, [group.id], enabled=False)
    _post(clients, dcr, "EXECUTION_FAILED")
    alerts = clients.alertsmanagement.alerts
    assert _until(lambda: list(alerts.get_all(alert_rule=on.id, time_range="1h")))
    time.sleep(PERIOD + 0.2)
    assert list(alerts.get_all(alert_rule=off.id, time_range="1h")) == []
    assert ctl("GET", "notifications") == []  # the rule that fired is wired to a disabled group
    evaluations = _evaluations(ctl, off.id)
    assert evaluations["enabled"] is False
    assert evaluations["evaluations"] == 0
    assert evaluations["disabledInstants"] >= 1
    assert evaluations["last"]["result"] == "disabled"
    assert _evaluations(ctl, on.id)["fired"] == 1


def test_an_unsupported_query_never_fires_and_says_why(
    emu: Emulator, ctl: Callable[..., Any], clients: Clients
) -> None:
    ctl("POST", "config", {"alert_time_scale": SCALE})
    sub = emu.info["subscription_id"]
    dcr = _dcr(clients, sub)
    group = _action_group(clients)
    rule = _rule(clients, sub, "r-extend",
                 f'{TABLE} | extend Kind = EventType | where Kind == "TRIAGE_READY"', [group.id])  # fmt: skip
    # Known before any evaluation: the rule cannot run.
    assert "unsupported KQL: operator 'extend'" in _evaluations(ctl, rule.id)["error"]
    _post(clients, dcr, "TRIAGE_READY")
    time.sleep(PERIOD * 2)
    assert list(clients.alertsmanagement.alerts.get_all(time_range="1h")) == []
    evaluations = _evaluations(ctl, rule.id)
    assert evaluations["errors"] >= 1
    assert evaluations["fired"] == 0
    assert evaluations["last"]["result"] == "error"
    assert ctl("GET", "notifications") == []


def test_the_alerts_api_refuses_what_the_spec_does_not_allow(
    ctl: Callable[..., Any], clients: Clients
) -> None:
    alerts = clients.alertsmanagement.alerts
    with pytest.raises(HttpResponseError) as both:
        list(alerts.get_all(time_range="1h", custom_time_range=f"{iso(0)}/{iso(1)}"))
    assert both.value.status_code == 400
    with pytest.raises(HttpResponseError) as paging:
        list(alerts.get_all(page_count=251))
    assert paging.value.status_code == 400
    with pytest.raises(HttpResponseError) as version:
        list(alerts.get_all(api_version="2015-01-01"))
    assert version.value.status_code == 400
    with pytest.raises(urllib.error.HTTPError) as scale:
        ctl("POST", "config", {"alert_time_scale": 0})
    assert scale.value.code == 400
    assert ctl("GET", "config")["alert_time_scale"] == DEFAULT_TIME_SCALE


# ----------------------------------------------------------------- in-process, fake clock

SUB = "00000000-0000-0000-0000-00000000a1b2"
RULE_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Insights/scheduledQueryRules/r"
)
GROUP_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag"
T0 = 1_900_000_000.0  # the rule's creation


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _world(condition: dict[str, Any], **props: Any) -> World:
    world = World(subscription_id=SUB)
    world.put(
        GROUP_ID,
        {"properties": {"enabled": True, "emailReceivers": [
            {"name": "oncall", "emailAddress": "oncall@example.com"}]}},
    )  # fmt: skip
    world.put(
        RULE_ID,
        {
            "kind": "LogAlert",
            "systemData": {"createdAt": iso(T0)},
            "properties": {
                "enabled": True,
                "severity": 3,
                "evaluationFrequency": "PT5M",
                "windowSize": "PT5M",
                "scopes": [f"/subscriptions/{SUB}/resourceGroups/rg/providers/x/workspaces/w"],
                "criteria": {
                    "allOf": [
                        {
                            "timeAggregation": "Count",
                            "operator": "GreaterThan",
                            "threshold": 0,
                            **condition,
                        }
                    ]
                },
                "actions": {"actionGroups": [GROUP_ID]},
                **props,
            },
        },
    )
    return world


def _rows(world: World, *at: float, event: str = "A", **extra: Any) -> None:
    world.logs.setdefault("T", []).extend(
        {"TimeGenerated": iso(t), "EventType": event, **extra} for t in at
    )


def _alerting(world: World, scale: float = 1.0) -> tuple[Alerting, Clock]:
    clock = Clock()
    alerting = Alerting(world, clock=clock)
    alerting.set_time_scale(scale)
    return alerting, clock


def test_evaluation_instants_follow_the_rules_frequency_from_its_creation() -> None:
    world = _world({"query": 'T | where EventType == "A"'})
    alerting, clock = _alerting(world)
    _rows(world, T0 + 10)
    clock.now = T0 + 299
    assert alerting.alerts() == []  # the first evaluation is at creation + PT5M
    clock.now = T0 + 300
    fired = alerting.alerts()
    assert [a["properties"]["essentials"]["startDateTime"] for a in fired] == [iso(T0 + 300)]
    _rows(world, T0 + 650)  # lands in the third window (600, 900]
    clock.now = T0 + 1000
    assert len(alerting.alerts()) == 2
    assert alerting.report()["rules"][0]["evaluations"] == 3
    assert [n["address"] for n in alerting.notifications()] == ["oncall@example.com"] * 2


def test_time_scale_shrinks_frequency_window_and_ago() -> None:
    world = _world({"query": "T | where TimeGenerated > ago(1m)"})
    alerting, clock = _alerting(world, scale=0.01)  # PT5M -> 3 s, ago(1m) -> 0.6 s
    _rows(world, T0 + 1.0, T0 + 5.5)
    clock.now = T0 + 3.0  # window (0, 3]: the row at 1.0 is older than ago(1m) = 2.4
    assert alerting.alerts() == []
    clock.now = T0 + 6.0  # window (3, 6]: 5.5 is within ago(1m)
    assert len(alerting.alerts()) == 1


def test_threshold_operator_and_failing_periods_as_the_rule_says() -> None:
    condition = {
        "query": "T",
        "threshold": 1,
        "operator": "GreaterThanOrEqual",
        "failingPeriods": {"numberOfEvaluationPeriods": 2, "minFailingPeriodsToAlert": 2},
    }
    world = _world(condition)
    alerting, clock = _alerting(world)
    _rows(world, T0 + 350)  # only the newest of the two periods at the evaluation at 600
    clock.now = T0 + 600
    assert alerting.alerts() == []
    _rows(world, T0 + 700)
    clock.now = T0 + 900  # periods (600, 900] and (300, 600]: both have a row
    assert len(alerting.alerts()) == 1
    last = alerting.report()["rules"][0]["last"]
    assert last["result"] == "fired"
    assert last["values"] == [[1.0, 1.0]]


def test_total_over_a_measure_column_and_less_than() -> None:
    world = _world({"query": "T | summarize Attempts = sum(Attempt)", "timeAggregation": "Total",
                    "metricMeasureColumn": "Attempts", "operator": "LessThan", "threshold": 3})  # fmt: skip
    alerting, clock = _alerting(world)
    _rows(world, T0 + 10, T0 + 20, Attempt=2)  # 4 attempts: not below 3
    clock.now = T0 + 300
    assert alerting.alerts() == []
    clock.now = T0 + 600  # no rows: a total of 0 is below 3
    assert len(alerting.alerts()) == 1


def test_mute_actions_keeps_alerts_but_holds_notifications() -> None:
    world = _world({"query": "T"}, muteActionsDuration="PT10M")
    alerting, clock = _alerting(world)
    _rows(world, T0 + 10, T0 + 310, T0 + 910)
    clock.now = T0 + 1200  # fired at 300 (notified, muted until 900), 600 (muted), 1200
    assert len(alerting.alerts()) == 3
    assert [n["time"] for n in alerting.notifications()] == [iso(T0 + 300), iso(T0 + 1200)]


def test_a_long_gap_is_computed_cheaply_and_capped() -> None:
    world = _world({"query": "T"})
    alerting, clock = _alerting(world, scale=0.001)  # an evaluation every 0.3 s
    _rows(world, T0 + 3600 * 4.5)  # within the 10000 most recent instants
    clock.now = T0 + 3600 * 5  # 60000 instants passed
    started = time.monotonic()
    assert len(alerting.alerts()) == 1
    assert time.monotonic() - started < 5
    rule = alerting.report()["rules"][0]
    assert rule["evaluations"] == 10_000
    assert rule["skippedInstants"] == 50_000


# ----------------------------------------------------------------------------- KQL subset

ROWS = [
    {"TimeGenerated": iso(T0 - 30), "EventType": "TRIAGE_READY", "Attempt": 1,
     "Message": "disk full on node-1"},
    {"TimeGenerated": iso(T0 - 5), "EventType": "APPROVAL_TIMEOUT", "Attempt": 3,
     "Message": "no approver"},
    {"TimeGenerated": iso(T0 - 1), "EventType": "EXECUTION_FAILED", "Attempt": 2,
     "Message": "Disk quota"},
]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('T | where EventType == "TRIAGE_READY"', ["TRIAGE_READY"]),
        ("T\n| where EventType == 'TRIAGE_READY' // a comment", ["TRIAGE_READY"]),
        ('T | where EventType != "TRIAGE_READY"', ["APPROVAL_TIMEOUT", "EXECUTION_FAILED"]),
        ('T | where EventType =~ "triage_ready"', ["TRIAGE_READY"]),
        ('T | where EventType in ("TRIAGE_READY", "EXECUTION_FAILED") and Attempt > 1',
         ["EXECUTION_FAILED"]),
        ('T | where EventType !in ("TRIAGE_READY")', ["APPROVAL_TIMEOUT", "EXECUTION_FAILED"]),
        ('T | where EventType in~ ("triage_ready")', ["TRIAGE_READY"]),
        ('T | where Attempt >= 2 or EventType == "TRIAGE_READY"',
         ["TRIAGE_READY", "APPROVAL_TIMEOUT", "EXECUTION_FAILED"]),
        ('T | where not(EventType == "TRIAGE_READY") and Attempt < 3', ["EXECUTION_FAILED"]),
        ('T | where Message has "disk"', ["TRIAGE_READY", "EXECUTION_FAILED"]),
        ('T | where Message !contains "disk"', ["APPROVAL_TIMEOUT"]),
        ('T | where Message startswith "no"', ["APPROVAL_TIMEOUT"]),
        ("T | where TimeGenerated > ago(10s)", ["APPROVAL_TIMEOUT", "EXECUTION_FAILED"]),
        ("T | where TimeGenerated <= now() | take 1", ["TRIAGE_READY"]),
        ("T | where isnotempty(Message) | project EventType", None),
    ],
)  # fmt: skip
def test_the_kql_subset_filters_rows(query: str, expected: list[str] | None) -> None:
    result = parse_query(query).run(ROWS, Context(now=T0))
    if expected is None:
        assert result == [{"EventType": r["EventType"]} for r in ROWS]
    else:
        assert [r["EventType"] for r in result] == expected


def test_the_kql_subset_summarizes_and_counts() -> None:
    context = Context(now=T0)
    assert parse_query("T | summarize count()").run(ROWS, context) == [{"count_": 3}]
    assert parse_query("T | summarize count()").run([], context) == [{"count_": 0}]
    assert parse_query("T | summarize count() by EventType").run([], context) == []
    grouped = parse_query("T | summarize n = count(), top = max(Attempt) by EventType")
    assert grouped.run(ROWS[:2], context) == [
        {"EventType": "TRIAGE_READY", "n": 1, "top": 1.0},
        {"EventType": "APPROVAL_TIMEOUT", "n": 1, "top": 3.0},
    ]
    assert parse_query("T | where Attempt > 1 | count").run(ROWS, context) == [{"Count": 2}]
    query = parse_query('NscAgentEvents_CL\n| where EventType == "TRIAGE_READY"')
    assert query.table == "NscAgentEvents_CL"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("T | extend X = 1", "unsupported KQL: operator 'extend'"),
        ("T | summarize count() by bin(TimeGenerated, 5m)", "function 'bin()'"),
        ("T | summarize percentile(Attempt, 95)", "aggregation 'percentile()'"),
        ("T | where strlen(Message) > 3", "function 'strlen()'"),
        ("T | where EventType matches regex 'x'", "expected a comparison operator"),
        ("T | join (U) on EventType", "unsupported KQL: operator 'join'"),
        ("T | where TimeGenerated > datetime(2024-01-01)", "function 'datetime()'"),
        ("T | where", "expected a column name"),
        ("T EventType", "expected '|'"),
        ("| where EventType == 'x'", "starts with a table name"),
        ("", "the query is empty"),
        ('T | where EventType == "open', "unexpected character"),
    ],
)
def test_unsupported_or_malformed_kql_is_refused_by_name(query: str, message: str) -> None:
    with pytest.raises(KqlError) as refused:
        parse_query(query)
    assert message in str(refused.value)


def test_alerts_api_answers_pass_oav(
    spec_pack: SpecPack, emu: Emulator, ctl: Callable[..., Any], clients: Clients, tmp_path: Path
) -> None:
    ctl("POST", "config", {"alert_time_scale": SCALE})
    sub = emu.info["subscription_id"]
    dcr = _dcr(clients, sub)
    group = _action_group(clients)
    rule = _rule(clients, sub, "r-oav", f"{TABLE} | where Attempt >= 1", [group.id])
    _post(clients, dcr, "TRIAGE_READY")
    alerts = clients.alertsmanagement.alerts
    fired = _until(lambda: list(alerts.get_all(alert_rule=rule.id, time_range="1h")))
    assert fired
    ctl("DELETE", "requests")
    list(alerts.get_all(monitor_condition="Fired", include_context=True, page_count=1))
    list(alerts.get_all(severity="Sev2", sort_by="startDateTime", select="severity,alertRule"))
    alerts.get_by_id(fired[0].id.rsplit("/", 1)[1])
    with pytest.raises(ResourceNotFoundError):
        alerts.get_by_id("00000000-0000-0000-0000-000000000000")
    requests = [r for r in emu.controls.requests() if "AlertsManagement" in r["path"]]
    verdict = validate_requests(spec_pack, requests, tmp_path / "traffic")
    assert not verdict.failed, "\n".join([*verdict.failed, *verdict.details[:40]])
    assert len(verdict.passed) == 4, verdict.output

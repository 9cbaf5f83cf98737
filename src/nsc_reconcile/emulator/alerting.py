"""Log alert evaluation: every enabled scheduled query rule (``Microsoft.Insights/
scheduledQueryRules``, kind ``LogAlert``) runs over the rows the Logs Ingestion API accepted
(``world.logs``) on its ``evaluationFrequency``, looking back ``windowSize`` per aggregated
period, with every duration multiplied by ``time_scale``. A rule that fires makes an alert
(served by the Alerts Management API, alertsapi.py) and one notification per receiver of each
enabled action group it is wired to.

Evaluation is lazy: whenever alerts, notifications or evaluations are read, every evaluation
instant that has passed since the last read is computed. No thread to start, stop or race with
a reset; a long gap costs one bisect of the table per instant (capped, see MAX_INSTANTS). Each
evaluation sees the rules and rows as they are when it is computed. Reads only ``world``.
"""

from __future__ import annotations

import bisect
import copy
import math
import re
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from nsc_reconcile.emulator.kql import Context, KqlError, Query, parse_query, row_time

__all__ = ["DEFAULT_TIME_SCALE", "Alerting", "duration_seconds"]

RULE_TYPE = "Microsoft.Insights/scheduledQueryRules"
ALERTS_PROVIDER = "Microsoft.AlertsManagement"
# What Azure reports as the monitor service of a scheduled query rule's alerts (the common
# alert schema's monitoringService for log search alerts of API 2021-08-01 and later).
MONITOR_SERVICE = "Log Alerts V2"
# Emulated minutes pass a hundred times faster by default: PT5M evaluates every 3 s (like the
# short LRO durations, long enough to be observable, short enough for tests). 1 = real time.
DEFAULT_TIME_SCALE = 0.01
# At most this many passed evaluation instants are computed per rule and read; older ones are
# counted as skipped (a gap of hours at a tiny time scale).
MAX_INSTANTS = 10_000
RECENT = 20  # evaluation records kept per rule for GET alert-evaluations

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_AGGREGATIONS = ("Count", "Average", "Minimum", "Maximum", "Total")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqual": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqual": lambda a, b: a <= b,
}
# Receiver list -> (notification kind, field shown as the address). Fields that embed a
# credential (a webhook URI's token, a Logic App callback signature) are never shown whole.
_RECEIVERS: dict[str, tuple[str, str | None]] = {
    "emailReceivers": ("email", "emailAddress"),
    "smsReceivers": ("sms", None),
    "voiceReceivers": ("voice", None),
    "webhookReceivers": ("webhook", "serviceUri"),
    "azureAppPushReceivers": ("push", "emailAddress"),
    "armRoleReceivers": ("armRole", "roleId"),
    "itsmReceivers": ("itsm", "connectionId"),
    "automationRunbookReceivers": ("runbook", "runbookName"),
    "logicAppReceivers": ("logicApp", "resourceId"),
    "azureFunctionReceivers": ("azureFunction", "functionAppResourceId"),
    "eventHubReceivers": ("eventHub", "eventHubName"),
}


class WorldView(Protocol):
    """What alerting reads from the ARM world (``arm.World`` satisfies it)."""

    subscription_id: str
    logs: dict[str, list[dict[str, Any]]]
    lock: Any
    urls: dict[str, str]

    def get(self, rid: str) -> dict[str, Any] | None: ...

    def list_by_type(self, arm_type: str) -> list[dict[str, Any]]: ...


def duration_seconds(value: Any) -> float | None:
    """An ISO 8601 duration as Azure Monitor takes it (``PT5M``, ``P1D``) in seconds."""
    match = _DURATION.match(str(value or "").strip().upper())
    if match is None or str(value).strip().upper() in ("P", "PT"):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


@dataclass(frozen=True)
class Condition:
    """One ``criteria.allOf`` entry, checked and parsed."""

    query: Query
    aggregation: str
    measure: str | None
    operator: str
    threshold: float
    periods: int  # failingPeriods.numberOfEvaluationPeriods
    min_failing: int  # failingPeriods.minFailingPeriodsToAlert
    raw: dict[str, Any]


def parse_condition(raw: dict[str, Any]) -> Condition:
    """A condition as the evaluator runs it; raises KqlError for anything it cannot run
    (the query outside the KQL subset, dimensions, an unknown aggregation or operator)."""
    query = parse_query(str(raw.get("query") or ""))
    if raw.get("dimensions"):
        raise KqlError("dimensions (alert splitting by columns) are not supported")
    aggregation = str(raw.get("timeAggregation") or "")
    if aggregation not in _AGGREGATIONS:
        raise KqlError(f"timeAggregation {aggregation!r} is not one of {', '.join(_AGGREGATIONS)}")
    measure = raw.get("metricMeasureColumn") or None
    if aggregation != "Count" and not measure:
        raise KqlError(f"timeAggregation {aggregation} needs a metricMeasureColumn")
    operator = str(raw.get("operator") or "")
    if operator not in _OPERATORS:
        raise KqlError(f"operator {operator!r} is not one of {', '.join(_OPERATORS)}")
    failing = raw.get("failingPeriods") or {}
    periods = int(failing.get("numberOfEvaluationPeriods") or 1)
    min_failing = int(failing.get("minFailingPeriodsToAlert") or 1)
    if not 1 <= min_failing <= periods:
        raise KqlError("failingPeriods: minFailingPeriodsToAlert must be within 1..periods")
    return Condition(
        query=query,
        aggregation=aggregation,
        measure=str(measure) if measure else None,
        operator=operator,
        threshold=float(raw.get("threshold") or 0),
        periods=periods,
        min_failing=min_failing,
        raw=raw,
    )


def _measure(condition: Condition, result: list[dict[str, Any]]) -> float | None:
    """The aggregated value of one period: Count counts the query's result rows; the others
    aggregate ``metricMeasureColumn`` over them (None: no value, never a violation)."""
    if condition.aggregation == "Count":
        return float(len(result))
    column = condition.measure or ""
    if result and not any(column in row for row in result):
        raise KqlError(f"metricMeasureColumn '{column}' is not a column of the query's results")
    values = [
        float(v)
        for v in (row.get(column) for row in result)
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    if condition.aggregation == "Total":
        return float(sum(values))
    if not values:
        return None
    if condition.aggregation == "Average":
        return sum(values) / len(values)
    return min(values) if condition.aggregation == "Minimum" else max(values)


@dataclass
class _Table:
    """One table's rows with a parsable TimeGenerated, sorted by it (for bisecting)."""

    times: list[float]
    rows: list[dict[str, Any]]

    def between(self, low: float, high: float) -> list[dict[str, Any]]:
        """Rows with ``low < TimeGenerated <= high``."""
        start = bisect.bisect_right(self.times, low)
        return self.rows[start : bisect.bisect_right(self.times, high)]


@dataclass
class _RuleState:
    key: tuple[str, float]  # (systemData.createdAt, evaluationFrequency s): a change restarts
    anchor: float  # evaluation instants are anchor + k * period, k >= 1
    done: int = 0  # k of the last instant computed
    evaluations: int = 0
    fired: int = 0
    disabled: int = 0  # instants passed while the rule was disabled (not evaluated)
    errors: int = 0
    skipped: int = 0  # instants beyond MAX_INSTANTS, never computed
    error: str | None = None
    last: dict[str, Any] | None = None
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT))
    muted_until: float = -math.inf


class Alerting:
    """Fired alerts, notifications and evaluation records of one emulated world.

    Thread-safe. ``clock`` (epoch seconds) is injectable for tests."""

    def __init__(self, world: WorldView, clock: Callable[[], float] = time.time) -> None:
        self.world = world
        self.clock = clock
        self._lock = threading.RLock()
        self._conditions: dict[str, Condition | KqlError] = {}
        self._clear()

    def _clear(self) -> None:
        self.time_scale = DEFAULT_TIME_SCALE
        self._since = self.clock()  # no schedule starts before this (start, reset, new scale)
        self._alerts: list[dict[str, Any]] = []
        self._notifications: list[dict[str, Any]] = []
        self._rules: dict[str, _RuleState] = {}

    def reset(self) -> None:
        """Forget every alert, notification and schedule; back to the default time scale."""
        with self._lock:
            self._clear()

    def set_time_scale(self, scale: float) -> None:
        """Evaluate what has passed at the old scale, then restart every schedule now with
        ``scale`` (> 0; 1 = real time). Raises ValueError otherwise."""
        if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0):
            raise ValueError("alert_time_scale must be a number > 0 (1 = real time)")
        with self._lock:
            now = self.clock()
            self._catch_up(now)
            self.time_scale = float(scale)
            self._since = now
            for state in self._rules.values():
                state.anchor, state.done = now, 0

    # ---- reads (each computes what has passed first) --------------------------------------
    def alerts(self) -> list[dict[str, Any]]:
        """Every fired alert, oldest first (copies; ``properties.context`` included)."""
        with self._lock:
            self._catch_up(self.clock())
            return copy.deepcopy(self._alerts)

    def notifications(self) -> list[dict[str, Any]]:
        """Every notification sent, oldest first: ``{time, actionGroup, receiver, kind,
        address, alertRule, severity, alertId}``."""
        with self._lock:
            self._catch_up(self.clock())
            return copy.deepcopy(self._notifications)

    def report(self) -> dict[str, Any]:
        """Per rule: schedule, counters, the query's error (a rule that cannot run never
        fires) and the most recent evaluations."""
        with self._lock:
            now = self.clock()
            self._catch_up(now)
            rules = []
            for rule in self.world.list_by_type(RULE_TYPE):
                props = rule.get("properties") or {}
                state = self._rules.get(str(rule.get("id", "")).lower())
                error = self._rule_error(props)
                frequency = duration_seconds(props.get("evaluationFrequency"))
                rules.append(
                    {
                        "alertRule": rule.get("id"),
                        "kind": rule.get("kind", "LogAlert"),
                        "enabled": props.get("enabled") is True,
                        "evaluationFrequency": props.get("evaluationFrequency"),
                        "windowSize": props.get("windowSize"),
                        "secondsBetweenEvaluations": (
                            frequency * self.time_scale if frequency else None
                        ),
                        "nextEvaluation": (
                            iso(state.anchor + (state.done + 1) * frequency * self.time_scale)
                            if state is not None and frequency
                            else None
                        ),
                        "evaluations": state.evaluations if state else 0,
                        "fired": state.fired if state else 0,
                        "disabledInstants": state.disabled if state else 0,
                        "errors": state.errors if state else 0,
                        "skippedInstants": state.skipped if state else 0,
                        "error": error or (state.error if state else None),
                        "last": copy.deepcopy(state.last) if state else None,
                        "recent": copy.deepcopy(list(state.recent)) if state else [],
                    }
                )
            return {"time_scale": self.time_scale, "time": iso(now), "rules": rules}

    # ---- evaluation ----------------------------------------------------------------------
    def _condition(self, raw: dict[str, Any]) -> Condition | KqlError:
        key = repr(sorted(raw.items(), key=lambda kv: kv[0]))
        found = self._conditions.get(key)
        if found is None:
            try:
                found = parse_condition(raw)
            except KqlError as error:
                found = error
            if len(self._conditions) > 512:
                self._conditions.clear()
            self._conditions[key] = found
        return found

    def _rule_error(self, props: dict[str, Any]) -> str | None:
        conditions = (props.get("criteria") or {}).get("allOf") or []
        if not conditions:
            return "the rule has no condition"
        for raw in conditions:
            parsed = self._condition(raw if isinstance(raw, dict) else {})
            if isinstance(parsed, KqlError):
                return str(parsed)
        return None

    def _catch_up(self, now: float) -> None:
        tables: dict[str, _Table] = {}
        for rule in self.world.list_by_type(RULE_TYPE):
            if str(rule.get("kind", "LogAlert")) == "LogAlert":
                self._catch_up_rule(rule, now, tables)

    def _state(self, rule: dict[str, Any], frequency: float, now: float) -> _RuleState:
        rid = str(rule.get("id", "")).lower()
        created_text = str((rule.get("systemData") or {}).get("createdAt") or "")
        key = (created_text, frequency)
        state = self._rules.get(rid)
        if state is None or state.key != key:
            created = row_time(created_text)
            # A new rule's schedule starts at its creation; an edited or recreated one, or one
            # without systemData, at the first read that sees it.
            start = created if state is None and created is not None else now
            state = _RuleState(key=key, anchor=max(start, self._since))
            self._rules[rid] = state
        return state

    def _catch_up_rule(self, rule: dict[str, Any], now: float, tables: dict[str, _Table]) -> None:
        props = rule.get("properties") or {}
        frequency = duration_seconds(props.get("evaluationFrequency"))
        if not frequency:
            return
        state = self._state(rule, frequency, now)
        period = frequency * self.time_scale
        last = math.floor((now - state.anchor) / period)
        if last <= state.done:
            return
        first, state.done = state.done + 1, last
        if props.get("enabled") is not True:
            state.disabled += last - first + 1
            state.last = {"time": iso(state.anchor + last * period), "result": "disabled"}
            return
        error = self._rule_error(props)
        if error is not None:
            self._record(state, state.anchor + last * period, "error", error=error)
            state.errors += last - first + 1
            state.error = error
            return
        if last - first + 1 > MAX_INSTANTS:
            state.skipped += last - first + 1 - MAX_INSTANTS
            first = last - MAX_INSTANTS + 1
        conditions = [self._condition(c) for c in (props.get("criteria") or {})["allOf"]]
        runnable = [c for c in conditions if isinstance(c, Condition)]
        for index in range(first, last + 1):
            self._evaluate(rule, state, runnable, state.anchor + index * period, tables)

    def _lookback(self, props: dict[str, Any], condition: Condition) -> float:
        """Seconds one aggregated period covers: windowSize (or overrideQueryTimeRange for a
        single period), scaled."""
        window = duration_seconds(props.get("windowSize")) or 0.0
        override = duration_seconds(props.get("overrideQueryTimeRange"))
        if condition.periods == 1 and override:
            window = override
        return window * self.time_scale

    def _table(self, name: str, tables: dict[str, _Table]) -> _Table:
        if name not in tables:
            with self.world.lock:
                rows = list(self.world.logs.get(name, []))
            timed = sorted(
                ((t, i, r) for i, r in enumerate(rows) if (t := row_time(r.get("TimeGenerated")))),
                key=lambda item: (item[0], item[1]),
            )
            tables[name] = _Table([t for t, _, _ in timed], [r for _, _, r in timed])
        return tables[name]

    def _evaluate(
        self,
        rule: dict[str, Any],
        state: _RuleState,
        conditions: list[Condition],
        at: float,
        tables: dict[str, _Table],
    ) -> None:
        props = rule.get("properties") or {}
        state.evaluations += 1
        results = []
        try:
            for condition in conditions:
                window = self._lookback(props, condition)
                table = self._table(condition.query.table, tables)
                values: list[float | None] = []
                for period in range(condition.periods):
                    high = at - period * window
                    rows = table.between(high - window, high)
                    result = condition.query.run(rows, Context(now=at, scale=self.time_scale))
                    values.append(_measure(condition, result))
                test = _OPERATORS[condition.operator]
                failing = sum(1 for v in values if v is not None and test(v, condition.threshold))
                results.append((condition, values, failing >= condition.min_failing, window))
        except KqlError as error:
            state.errors += 1
            state.error = str(error)
            self._record(state, at, "error", error=str(error))
            return
        values_seen = [values for _, values, _, _ in results]
        if not results or not all(fires for _, _, fires, _ in results):
            self._record(state, at, "not fired", values=values_seen)
            return
        alert = self._fire(rule, state, at, results)
        self._record(state, at, "fired", values=values_seen, alertId=alert["id"])

    def _record(self, state: _RuleState, at: float, result: str, **extra: Any) -> None:
        record = {"time": iso(at), "result": result, **extra}
        state.last = record
        if result != "not fired" or not state.recent or state.recent[-1]["result"] != result:
            state.recent.append(record)
        else:
            state.recent[-1] = record  # a run of quiet evaluations keeps one record

    def _fire(
        self,
        rule: dict[str, Any],
        state: _RuleState,
        at: float,
        results: list[tuple[Condition, list[float | None], bool, float]],
    ) -> dict[str, Any]:
        props = rule.get("properties") or {}
        rid = str(rule.get("id"))
        scope = str((props.get("scopes") or [""])[0])
        parts = scope.split("/")
        group = parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else ""
        guid = str(uuid.uuid4())
        when = iso(at)
        severity = f"Sev{props.get('severity', 3)}"
        subscription = self.world.subscription_id
        alert_id = f"/subscriptions/{subscription}/providers/{ALERTS_PROVIDER}/alerts/{guid}"
        first_window = results[0][3] * results[0][0].periods
        essentials = {
            "severity": severity,
            "signalType": "Log",
            "alertState": "New",
            "monitorCondition": "Fired",
            "monitorService": MONITOR_SERVICE,
            "targetResource": scope,
            "targetResourceName": parts[-1] if scope else "",
            "targetResourceGroup": group,
            "targetResourceType": parts[-2] if len(parts) > 2 else "",
            "sourceCreatedId": guid,
            "alertRule": rid,
            "startDateTime": when,
            "lastModifiedDateTime": when,
            "lastModifiedUserName": "System",
            "actionStatus": {"isSuppressed": False},
            "description": str(props.get("description") or ""),
        }
        context = {
            "conditionType": "LogQueryCriteria",
            "condition": {
                "windowSize": props.get("windowSize"),
                "windowStartTime": iso(at - first_window),
                "windowEndTime": when,
                "allOf": [
                    {
                        "searchQuery": condition.query.text,
                        "metricMeasureColumn": condition.measure,
                        "operator": condition.operator,
                        "threshold": str(condition.raw.get("threshold")),
                        "timeAggregation": condition.aggregation,
                        "metricValue": values[0],
                        "failingPeriods": {
                            "numberOfEvaluationPeriods": condition.periods,
                            "minFailingPeriodsToAlert": condition.min_failing,
                        },
                    }
                    for condition, values, _, _ in results
                ],
            },
        }
        alert = {
            "properties": {"essentials": essentials, "context": context, "egressConfig": {}},
            "id": alert_id,
            "type": f"{ALERTS_PROVIDER}/alerts",
            "name": rid.rsplit("/", 1)[-1],
        }
        self._alerts.append(alert)
        state.fired += 1
        if at >= state.muted_until:
            self._notify(props, alert_id, rid, severity, when)
            mute = duration_seconds(props.get("muteActionsDuration"))
            if mute:
                state.muted_until = at + mute * self.time_scale
        return alert

    def _notify(
        self, props: dict[str, Any], alert_id: str, rule_id: str, severity: str, when: str
    ) -> None:
        for group_id in (props.get("actions") or {}).get("actionGroups") or []:
            group = self.world.get(str(group_id))
            group_props = (group or {}).get("properties") or {}
            if group is None or group_props.get("enabled") is not True:
                continue  # a disabled (or deleted) action group notifies no one
            for list_name, (kind, address_field) in _RECEIVERS.items():
                for receiver in group_props.get(list_name) or []:
                    if str(receiver.get("status", "Enabled")) == "Disabled":
                        continue  # e.g. an e-mail receiver that unsubscribed
                    self._notifications.append(
                        {
                            "time": when,
                            "actionGroup": group.get("id", group_id),
                            "receiver": receiver.get("name"),
                            "kind": kind,
                            "address": _address(receiver, kind, address_field),
                            "alertRule": rule_id,
                            "severity": severity,
                            "alertId": alert_id,
                        }
                    )


def _address(receiver: dict[str, Any], kind: str, address_field: str | None) -> str:
    if kind in ("sms", "voice"):
        return f"+{receiver.get('countryCode', '')} {receiver.get('phoneNumber', '')}".strip()
    value = str(receiver.get(address_field or "", "") or "")
    if kind == "webhook":  # the URI's path and query carry its token: show where it goes only
        split = urllib.parse.urlsplit(value)
        return f"{split.scheme}://{split.hostname}/..." if split.hostname else "(webhook)"
    return value

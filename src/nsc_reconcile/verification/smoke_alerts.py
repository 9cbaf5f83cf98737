"""The alert smoke's second half: once the test events were accepted, wait (bounded, with
progress) until every declared log alert rule has fired an alert since the smoke started, read
through the Alerts Management API (``azure-mgmt-alertsmanagement``); on the emulator also the
notifications its action groups delivered. One check per rule. Reads only.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nsc_reconcile.model.monitoring import LogAlert
from nsc_reconcile.resources.monitoring import duration_seconds
from nsc_reconcile.verification.context import Run, make_check, name_of, props_of
from nsc_reconcile.verification.resolver import is_loopback
from nsc_reconcile.verification.results import Check, Status

# Azure: a row is queryable within minutes of ingestion (a new custom table can take longer)
# and a fired alert shows a minute or two after its evaluation; wait one evaluation period
# plus this.
AZURE_LATENCY_S = 300.0
AZURE_POLL_S = 15.0
# Azure's clock and ours may differ: an alert up to this much before the smoke counts.
CLOCK_SKEW_S = 60.0
# Emulator: two (scaled) evaluation periods plus this slack for a loaded machine.
EMULATOR_SLACK_S = 3.0
PROGRESS_EVERY_S = 5.0
_PERMANENT = (400, 401, 403, 404)  # answers waiting will not change


@dataclass
class _Rule:
    """One declared log alert rule as the smoke waits for it."""

    alert: LogAlert
    rule_id: str
    enabled: bool | None  # None: the rule does not exist
    frequency_s: float
    groups: list[str]
    fired: Any = None  # the first alert since the smoke started (SDK model)
    error: str | None = None
    gave_up: bool = False
    seconds: float | None = None  # after the start, when first seen fired
    notes: list[str] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        return self.fired is None and not self.gave_up and self.enabled is True


def emulator_json(arm: str, what: str) -> Any:
    """GET ``{arm}/_emulator/{what}`` (loopback only, never through a proxy)."""
    host = urllib.parse.urlsplit(arm).hostname or ""
    if host != "localhost" and not is_loopback(host):
        raise ValueError(f"not a loopback emulator URL: {arm}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{arm.rstrip('/')}/_emulator/{what}", timeout=10) as answer:
        return json.load(answer)


def _rules(run: Run) -> list[_Rule]:
    rules = []
    for alert in run.state.log_alerts:
        wire = run.wire(alert.address)
        props = props_of(wire)
        frequency = duration_seconds(props.get("evaluationFrequency") or alert.evaluation_frequency)
        groups = [str(g) for g in (props.get("actions") or {}).get("actionGroups") or []]
        rules.append(
            _Rule(
                alert=alert,
                rule_id=run.id_of(alert.address),
                enabled=None if wire is None else props.get("enabled") is True,
                frequency_s=float(frequency) if isinstance(frequency, (int, float)) else 300.0,
                groups=groups,
            )
        )
    return rules


def default_wait_s(frequencies_s: list[float], scale: float | None) -> float:
    """How long to wait for every rule to fire: on Azure (``scale`` None) one evaluation
    period plus ingestion and alert latency (10 min for PT5M rules); on the emulator two
    scaled periods plus a little slack (9 s for PT5M at the default scale 0.01)."""
    longest = max(frequencies_s, default=300.0)
    if scale is None:
        return longest + AZURE_LATENCY_S
    return 2 * longest * scale + EMULATOR_SLACK_S


def skip_reason(posted: list[Check]) -> str | None:
    """Why there is nothing to wait for: the events were refused or did not land (a SKIP of
    the landed check, as on Azure where rows are not read back, is no reason)."""
    if any(c.status is Status.FAIL for c in posted):
        return "the test events were not accepted or did not land (see above)"
    return None


def check_alerts_fired(run: Run, started: datetime, posted: list[Check]) -> list[Check]:
    """Seed §5 phase 4 "alert smoke", last step: one check per declared log alert rule,
    ``smoke-alert-fired/<rule>``: PASS when an alert of the rule fired after ``started`` (the
    smoke's start), with its id, time, severity and action groups (on the emulator also the
    notifications delivered; a fired alert that notified no one FAILs there); FAIL when none
    fired within the bound (``run.alert_wait_s``, default ``default_wait_s``), naming a
    disabled rule. SKIP when the events were not accepted or did not land. Reads only."""
    rules = _rules(run)
    if not rules:
        return []
    reason = skip_reason(posted)
    if reason:
        return [make_check(_id(r), _title(r), [], [], skip=reason) for r in rules]
    arm = run.clients.target.arm_url
    scale = float(emulator_json(arm, "config").get("alert_time_scale") or 1.0) if arm else None
    bound = (
        run.alert_wait_s
        if run.alert_wait_s is not None
        else default_wait_s([r.frequency_s for r in rules], scale)
    )
    since = started - timedelta(seconds=0 if arm else CLOCK_SKEW_S)
    _wait(run, rules, since, bound, scale)
    notifications = emulator_json(arm, "notifications") if arm else None
    evaluations = emulator_json(arm, "alert-evaluations") if arm else None
    return [_check(r, since, bound, notifications, evaluations) for r in rules]


def _wait(run: Run, rules: list[_Rule], since: datetime, bound: float, scale: float | None) -> None:
    """Poll the Alerts Management API until every enabled rule fired or ``bound`` passed,
    reporting progress through ``run.progress``."""
    start = time.monotonic()
    deadline = start + bound
    if scale is None:
        poll = AZURE_POLL_S
    else:
        poll = min(1.0, max(0.1, min(r.frequency_s for r in rules) * scale / 5))
    time_range = "1h" if bound < 3000 else "1d"
    waiting = [r for r in rules if r.waiting]
    said = -PROGRESS_EVERY_S
    while True:
        now = time.monotonic()
        if waiting and now - said >= PROGRESS_EVERY_S:  # before the first poll too
            run.progress(
                f"alerts: waiting for {len(waiting)}/{len(rules)} rules to fire "
                f"({max(0.0, deadline - now):.0f} s left)"
            )
            said = now
        for rule in rules:
            if rule.fired is None and not rule.gave_up and rule.enabled is not None:
                _look(run, rule, since, time_range, time.monotonic() - start)
        waiting = [r for r in rules if r.waiting]
        now = time.monotonic()
        if not waiting or now >= deadline:
            return
        time.sleep(min(poll, max(0.0, deadline - now)))


def _look(run: Run, rule: _Rule, since: datetime, time_range: str, elapsed: float) -> None:
    """The rule's first alert since ``since``, if any (filtered by rule id and time range)."""
    try:
        listed = run.clients.alertsmanagement.alerts.get_all(
            alert_rule=rule.rule_id, time_range=time_range
        )
        found = [(when, a) for a in listed if (when := _started(a)) is not None and when >= since]
    except Exception as error:
        from nsc_reconcile.retry import describe_error

        rule.error = f"could not read alerts: {describe_error(error)}"
        rule.gave_up = getattr(error, "status_code", None) in _PERMANENT
        return
    rule.error = None
    if found:
        rule.fired = min(found, key=lambda pair: pair[0])[1]
        rule.seconds = elapsed


def _started(alert: Any) -> datetime | None:
    essentials = getattr(getattr(alert, "properties", None), "essentials", None)
    value = getattr(essentials, "start_date_time", None)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _id(rule: _Rule) -> str:
    return f"smoke-alert-fired/{rule.alert.name}"


def _title(rule: _Rule) -> str:
    return f"Alert smoke: {rule.alert.name} fired on {rule.alert.event} and notified"


def _check(
    rule: _Rule,
    since: datetime,
    bound: float,
    notifications: list[dict[str, Any]] | None,
    evaluations: dict[str, Any] | None,
) -> Check:
    groups = ", ".join(name_of(g) for g in rule.groups) or "none"
    if rule.fired is None:
        evidence = [f"rule {rule.rule_id}", f"event {rule.alert.event}",
                    f"action groups: {groups}"]  # fmt: skip
        evaluated = _evaluation_evidence(rule, evaluations)
        evidence += evaluated
        problems: list[str]
        if rule.enabled is None:
            problems = [f"{rule.alert.name} does not exist"]
        elif rule.enabled is False:
            problems = [f"{rule.alert.name} is disabled (enabled=false): it never evaluates, "
                        f"so no alert fired since {_iso(since)}"]  # fmt: skip
        else:
            problems = [f"no alert of {rule.alert.name} fired within {bound:.0f} s "
                        f"(since {_iso(since)})"]  # fmt: skip
        if rule.error:
            problems.append(rule.error)
        problems += [line for line in evaluated if line.startswith("emulator evaluation error")]
        return make_check(_id(rule), _title(rule), evidence, problems)
    alert = rule.fired
    essentials = alert.properties.essentials
    started = _started(alert)
    evidence = [
        f"alert {alert.id}",
        f"fired {_iso(started) if started else '?'} ({rule.seconds:.1f} s into the wait)"
        if rule.seconds is not None
        else f"fired {_iso(started) if started else '?'}",
        f"severity {essentials.severity}",
        f"monitorCondition {essentials.monitor_condition}",
        f"action groups: {groups}",
    ]
    problems = []
    if notifications is None:
        evidence.append(
            "notifications: not readable through the Alerts Management API; the action "
            "group's receivers get the test alert"
        )
    else:
        sent = [n for n in notifications if str(n.get("alertId", "")).lower() == alert.id.lower()]
        evidence.append(
            "notified: "
            + (
                ", ".join(
                    f"{n.get('kind')} {n.get('receiver')} <{n.get('address')}> via "
                    f"{name_of(str(n.get('actionGroup', '')))}"
                    for n in sent
                )
                or "no one"
            )
        )
        if not sent:
            problems.append(
                f"the alert fired but no notification was delivered (action groups: {groups}: "
                "disabled, deleted or without receivers)"
            )
    return make_check(_id(rule), _title(rule), evidence, problems)


def _evaluation_evidence(rule: _Rule, evaluations: dict[str, Any] | None) -> list[str]:
    """On the emulator, what its evaluator did for the rule (runs, last result, error)."""
    for entry in (evaluations or {}).get("rules") or []:
        if str(entry.get("alertRule", "")).lower() != rule.rule_id.lower():
            continue
        last = entry.get("last") or {}
        text = (
            f"emulator: {entry.get('evaluations', 0)} evaluation(s), "
            f"{entry.get('fired', 0)} fired, {entry.get('disabledInstants', 0)} skipped while "
            f"disabled; last: {last.get('result', 'none')} {last.get('time', '')}".rstrip()
        )
        found = [text]
        if entry.get("error"):
            found.append(f"emulator evaluation error: {entry['error']}")
        return found
    return []


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

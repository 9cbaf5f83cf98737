"""Smoke tests (seed §5 phase 4): the alert smoke posts one test event per agent event type to
the data collection rule (the only write verify makes: log rows), confirms they landed, then
waits until each log alert rule fired (smoke_alerts.py).
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from nsc_reconcile.verification.alerts import SEED_EVENTS
from nsc_reconcile.verification.context import Run, make_check
from nsc_reconcile.verification.results import Check
from nsc_reconcile.verification.smoke_alerts import check_alerts_fired, emulator_json

SMOKE_PREFIX = "nsc-verify-smoke-"


def _smoke_rule(run: Run) -> Any:
    tables = {a.table for a in run.state.log_alerts}
    return next(
        (r for r in run.state.data_collection_rules if r.table in tables),
        run.state.data_collection_rules[0] if run.state.data_collection_rules else None,
    )


def smoke_alerts(run: Run) -> list[Check]:
    """The "alerts" smoke (``verify --smoke alerts``): the test events are accepted and land,
    then every declared log alert rule fires (bounded wait with progress)."""
    started = datetime.now(UTC)
    posted = check_alert_smoke(run)
    return posted + check_alerts_fired(run, started, posted)


def check_alert_smoke(run: Run) -> list[Check]:
    """Seed §5 phase 4 "alert smoke": one test event per agent event type, posted through
    the Logs Ingestion API to the DCR (writes log rows only), then confirmed in the table
    (emulator: its log store; Azure: needs a Log Analytics query, so SKIP)."""
    rule = _smoke_rule(run)
    events = list(dict.fromkeys(a.event for a in run.state.log_alerts)) or list(SEED_EVENTS)
    ingest_id = f"smoke-alert-ingest/{rule.name if rule else '-'}"
    landed_id = f"smoke-alert-landed/{rule.table if rule else '-'}"
    ingest_title = f"Alert smoke: {len(events)} test events accepted by the Logs Ingestion API"
    landed_title = "Alert smoke: the test events landed in the table"
    if rule is None:
        fail = make_check(ingest_id, ingest_title, [], ["no data collection rule declared"])
        return [fail, make_check(landed_id, landed_title, [], [], skip="nothing was posted")]
    live = run.live(rule.address)
    immutable_id = live.fields.get("properties.immutableId") if live else None
    endpoint = live.fields.get("properties.endpoints.logsIngestion") if live else None
    if not immutable_id or not endpoint:
        fail = make_check(ingest_id, ingest_title, [f"rule {run.id_of(rule.address)}"],
                          ["the rule does not exist or has no ingestion endpoint"])  # fmt: skip
        return [fail, make_check(landed_id, landed_title, [], [], skip="nothing was posted")]
    marker = SMOKE_PREFIX + uuid.uuid4().hex[:12]
    rows = _smoke_rows(run, rule, events, marker)
    stream = f"Custom-{rule.table}"
    evidence = [
        f"rule {rule.name} immutableId={immutable_id}",
        f"endpoint={endpoint}",
        f"stream={stream}",
        f"IncidentId={marker}",
        "events: " + ", ".join(events),
    ]
    try:
        client = run.clients.logs_ingestion_client(str(endpoint))
        client.upload(rule_id=str(immutable_id), stream_name=stream, logs=rows)
    except Exception as error:
        fail = make_check(ingest_id, ingest_title, evidence,
                          [f"upload refused: {type(error).__name__}: {error}"])  # fmt: skip
        return [fail, make_check(landed_id, landed_title, [], [], skip="nothing was accepted")]
    ingest = make_check(ingest_id, ingest_title, [*evidence, f"{len(rows)} row(s) accepted"], [])
    return [ingest, _check_landed(run, rule.table, events, marker, landed_id, landed_title)]


def _smoke_rows(
    run: Run, rule: Any, events: list[str], marker: str
) -> list[MutableMapping[str, Any]]:
    columns: set[str] = set()
    for table in run.state.log_analytics_tables:
        if table.name == rule.table and table.workspace == rule.workspace:
            columns = {c.name for c in table.columns}
    event_column = next((a.event_column for a in run.state.log_alerts), "EventType")
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    rows: list[MutableMapping[str, Any]] = []
    for event in events:
        row: dict[str, Any] = {
            "TimeGenerated": now,
            event_column: event,
            "IncidentId": marker,
            "Pipeline": "nsc-reconcile-verify",
            "Severity": "Informational",
            "Message": "nsc-reconcile verify alert smoke test event: no action needed",
            "Properties": {"smoke": True, "source": "nsc-reconcile verify"},
        }
        rows.append({k: v for k, v in row.items() if not columns or k in columns})
    return rows


def _check_landed(
    run: Run, table: str, events: list[str], marker: str, check_id: str, title: str
) -> Check:
    arm = run.clients.target.arm_url
    query = f'{table} | where IncidentId == "{marker}" | summarize count() by EventType'
    if arm is None:
        return make_check(
            check_id,
            title,
            [f"to confirm, run in Log Analytics: {query}"],
            [],
            skip="confirming rows in Log Analytics needs a query client (azure-monitor-query), "
            "not a dependency of nsc-reconcile; ingestion was accepted above",
        )
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5.0
    while True:  # the emulator stores rows at once; tolerate a short delay anyway
        rows = [r for r in _emulator_logs(arm, table) if r.get("IncidentId") == marker]
        if len(rows) >= len(events) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    seen = [str(r.get("EventType")) for r in rows]
    evidence = [f"{len(rows)}/{len(events)} row(s) in {table} with IncidentId={marker}: "
                + ", ".join(seen)]  # fmt: skip
    missing = [e for e in events if e not in seen]
    return make_check(
        check_id, title, evidence, [f"not found: {', '.join(missing)}"] if missing else []
    )


def _emulator_logs(arm: str, table: str) -> list[dict[str, Any]]:
    """Rows the emulator's Logs Ingestion API accepted for ``table`` (loopback only)."""
    loaded = emulator_json(arm, f"logs?table={urllib.parse.quote(table)}")
    return [r for r in loaded if isinstance(r, dict)] if isinstance(loaded, list) else []

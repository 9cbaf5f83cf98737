"""Agent-event alerting: custom Log Analytics table, Direct data collection rule (DCR), action
group and log alert rules. Touches only `clients.loganalytics.tables` and `clients.monitor`
(plus, to write a webhook receiver, one Key Vault data-plane read of its URI, a secret).

PUBLIC PATH: a `Direct` DCR's logs ingestion endpoint (`properties.endpoints.logsIngestion`,
`https://<dcr>.<region>-1.ingest.monitor.azure.com`) is reachable from the public internet
unless an Azure Monitor Private Link Scope (AMPLS) and a data collection endpoint (DCE) are
added; this tool cannot close it by itself. `DataCollectionRuleReconciler.notes` says so in
the plan.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, ClassVar

from nsc_reconcile.changes import ReplacePolicy, Unknown
from nsc_reconcile.model.monitoring import (
    ActionGroup,
    DataCollectionRule,
    LogAlert,
    LogAnalyticsTable,
)
from nsc_reconcile.resources.base import (
    ArmReconciler,
    Context,
    Listing,
    Live,
    deep_merge,
    norm_id,
    sdk_model,
    tag_fields,
    to_wire,
    unflatten,
)

# ------------------------------------------------------------------------------- helpers


class PathPattern(frozenset[str]):
    """A set of flat paths given by a regular expression (per-item paths such as
    ``properties.schema.columns[Severity].type``); only ``in`` is meaningful."""

    pattern: re.Pattern[str]

    def __new__(cls, pattern: str) -> PathPattern:
        made = super().__new__(cls)
        made.pattern = re.compile(pattern)
        return made

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.pattern.fullmatch(path) is not None


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def duration_seconds(value: Any) -> Any:
    """``PT5M``, ``PT5M0S`` and ``PT300S`` are one duration: compare them as seconds.

    Values that are not ISO 8601 durations are returned unchanged (and then differ)."""
    if not isinstance(value, str):
        return value
    match = _DURATION.fullmatch(value.strip().upper())
    if match is None or value.strip().upper() in ("P", "PT"):
        return value
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _sorted(items: list[Any], key: str = "name") -> list[Any]:
    return sorted(items, key=lambda v: json.dumps(v.get(key) if isinstance(v, dict) else v))


def _project(items: Any, keys: tuple[str, ...]) -> Any:
    """Each dict of ``items`` reduced to ``keys`` (server-added fields dropped), by name."""
    if not isinstance(items, list):
        return items
    projected = [
        {k: item.get(k) for k in keys if k in item} if isinstance(item, dict) else item
        for item in items
    ]
    return _sorted(projected)


def _workspace_id(ctx: Context, workspace: str) -> str:
    live = ctx.live(f"log_analytics_workspace/{workspace}")
    if live is not None:
        return live.id
    return f"{ctx.rg_id()}/providers/Microsoft.OperationalInsights/workspaces/{workspace}"


def _workspace_group(ctx: Context, workspace: str) -> str:
    """The workspace's resource group (an existing workspace may live in another group)."""
    return _workspace_id(ctx, workspace).split("/")[4]


def _table_columns(ctx: Context, workspace: str, table: str) -> list[Any]:
    for _, resource in ctx.state.resources():
        if (
            isinstance(resource, LogAnalyticsTable)
            and resource.workspace == workspace
            and resource.name == table
        ):
            return list(resource.columns)
    raise LookupError(f"log_analytics_table/{workspace}/{table} is not declared")


# ------------------------------------------------------------------ Log Analytics table


def _column_path(name: str) -> str:
    return f"properties.schema.columns[{name}].type"


class LogAnalyticsTableReconciler(ArmReconciler[LogAnalyticsTable]):
    """A custom ``*_CL`` table. Only declared columns are compared (the service adds
    ``TenantId``, ``Type``, ``_ResourceId``... and others may add columns: kept). A column's
    type cannot change in place (400 InvalidParameter): that requires replacement, which
    DELETES the table and its data, and is never done without ``--allow-replace``."""

    kind = "log_analytics_table"
    holds_data = True  # its rows (tables carry no marks: never found as orphans)
    tagged = False  # tables carry no tags
    immutable = PathPattern(r"properties\.schema\.columns\[[^\]]+\]\.type")
    replace_policy = ReplacePolicy.DATA_LOSS
    replace_steps = "deleting table {name} deletes every row it holds"

    def resource_id(self, ctx: Context, resource: LogAnalyticsTable) -> str:
        return f"{_workspace_id(ctx, resource.workspace)}/tables/{resource.name}"

    def get(self, ctx: Context, resource: LogAnalyticsTable) -> Any:
        return ctx.clients.loganalytics.tables.get(
            _workspace_group(ctx, resource.workspace), resource.workspace, resource.name
        )

    def put(
        self, ctx: Context, resource: LogAnalyticsTable, body: dict[str, Any], etag: str | None
    ) -> None:
        from azure.mgmt.loganalytics.models import Table

        ctx.clients.loganalytics.tables.begin_create_or_update(
            _workspace_group(ctx, resource.workspace),
            resource.workspace,
            resource.name,
            sdk_model(Table, body),
        ).result()

    def refine(self, ctx: Context, resource: LogAnalyticsTable, live: Live) -> Live:
        """Add the per-column fields derived from the live schema (pure, no calls)."""
        live.fields.update(self._column_fields(resource, to_wire(live.raw)))
        return live

    @staticmethod
    def _column_fields(resource: LogAnalyticsTable, wire: dict[str, Any]) -> dict[str, Any]:
        """Declared columns as they are live: which exist, and the type of each that does.

        A declared column that does not exist yet has no type conflict: its type path takes
        the declared type, so adding a column is an update and only a real type change of an
        existing column requires replacement."""
        schema = (wire.get("properties") or {}).get("schema") or {}
        live_types = {
            str(c.get("name")): c.get("type")
            for c in (schema.get("columns") or []) + (schema.get("standardColumns") or [])
            if isinstance(c, dict)
        }
        fields: dict[str, Any] = {
            "properties.schema.columns": sorted(
                c.name for c in resource.columns if c.name in live_types
            )
        }
        for column in resource.columns:
            fields[_column_path(column.name)] = live_types.get(column.name, column.type)
        return fields

    def declared(self, ctx: Context, resource: LogAnalyticsTable) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "properties.schema.name": resource.name,
            "properties.schema.columns": sorted(c.name for c in resource.columns),
            **{_column_path(c.name): c.type for c in resource.columns},
            "properties.retentionInDays": resource.retention_days,
            "properties.plan": resource.plan,
        }
        if resource.total_retention_days is not None:
            fields["properties.totalRetentionInDays"] = resource.total_retention_days
        return fields

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        normalized = super().normalize(fields)
        for path, value in normalized.items():
            if path in self.immutable and isinstance(value, str):
                normalized[path] = value.lower()  # the service takes `dateTime` and `datetime`
        return normalized

    def delete(self, ctx: Context, resource: LogAnalyticsTable, live: Live) -> None:
        """A column type changes only by deleting the table (and its rows) first: reached
        only once the engine accepted the replacement (--allow-replace, --confirm-data-loss)."""
        ctx.clients.loganalytics.tables.begin_delete(
            _workspace_group(ctx, resource.workspace), resource.workspace, resource.name
        ).result()

    def body(
        self,
        ctx: Context,
        resource: LogAnalyticsTable,
        fields: dict[str, Any],
        live: Live | None,
    ) -> dict[str, Any]:
        """The live table with the declared columns (other columns kept, without the
        read-only display flags), retention and plan; the declared fields are per-column
        paths, not the REST shape."""
        declared_types = {c.name: c.type for c in resource.columns}
        base = self.kept(live)
        props = base.setdefault("properties", {})
        schema = props.setdefault("schema", {})
        kept = [
            {k: v for k, v in c.items() if k not in ("isHidden", "isDefaultDisplay")}
            for c in schema.get("columns") or []
            if c.get("name") not in declared_types
        ]
        schema["name"] = resource.name
        schema["columns"] = [{"name": c.name, "type": c.type} for c in resource.columns] + kept
        props["retentionInDays"] = resource.retention_days
        props["plan"] = resource.plan
        if resource.total_retention_days is not None:
            props["totalRetentionInDays"] = resource.total_retention_days
        else:
            props.pop("totalRetentionInDays", None)  # keep the service default (= retention)
        return base


# ------------------------------------------------------------------ data collection rule

# Log Analytics column type -> DCR stream declaration type (the DCR has no `guid`: a string
# stream column lands in a guid table column).
_DCR_TYPES = {"dateTime": "datetime", "guid": "string"}
_DCR_DESTINATION = "workspace"


class DataCollectionRuleReconciler(ArmReconciler[DataCollectionRule]):
    """A ``Direct`` DCR: stream ``Custom-<table>`` -> the workspace table. Its ``immutableId``
    survives updates (it is the `log-analytics-dcr-id` secret)."""

    kind = "data_collection_rule"
    listing = Listing("monitor", "data_collection_rules", delete_method="delete")

    PUBLIC_ENDPOINT_NOTE = (
        "PUBLIC PATH LEFT OPEN: this Direct data collection rule's logs ingestion endpoint "
        "({endpoint}) is reachable from the public internet (authenticated with Entra ID "
        "tokens only). Closing it needs an Azure Monitor Private Link Scope and a data "
        "collection endpoint with public network access disabled, which this desired state "
        "does not declare; nsc-reconcile cannot close it by itself."
    )

    def resource_id(self, ctx: Context, resource: DataCollectionRule) -> str:
        return f"{ctx.rg_id()}/providers/Microsoft.Insights/dataCollectionRules/{resource.name}"

    def get(self, ctx: Context, resource: DataCollectionRule) -> Any:
        return ctx.clients.monitor.data_collection_rules.get(ctx.resource_group, resource.name)

    def put(
        self, ctx: Context, resource: DataCollectionRule, body: dict[str, Any], etag: str | None
    ) -> None:
        from azure.mgmt.monitor.models import DataCollectionRuleResource

        ctx.clients.monitor.data_collection_rules.create(
            ctx.resource_group, resource.name, sdk_model(DataCollectionRuleResource, body)
        )

    @staticmethod
    def stream(resource: DataCollectionRule) -> str:
        return f"Custom-{resource.table}"

    def declared(self, ctx: Context, resource: DataCollectionRule) -> dict[str, Any]:
        stream = self.stream(resource)
        columns = [
            {"name": c.name, "type": _DCR_TYPES.get(c.type, c.type)}
            for c in _table_columns(ctx, resource.workspace, resource.table)
        ]
        return {
            "kind": "Direct",
            "location": ctx.state.location,
            f"properties.streamDeclarations.{stream}.columns": columns,
            "properties.destinations.logAnalytics": [
                {
                    "workspaceResourceId": _workspace_id(ctx, resource.workspace),
                    "name": _DCR_DESTINATION,
                }
            ],
            "properties.dataFlows": [
                {
                    "streams": [stream],
                    "destinations": [_DCR_DESTINATION],
                    "transformKql": resource.transform_kql,
                    "outputStream": stream,
                }
            ],
            **tag_fields(ctx.tags(resource.tags)),
        }

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        normalized = super().normalize(fields)
        for path, value in normalized.items():
            if isinstance(value, Unknown) or not isinstance(value, list):
                continue
            if path.endswith(".columns"):
                normalized[path] = _sorted(
                    [
                        {"name": c.get("name"), "type": str(c.get("type", "")).lower()}
                        for c in value
                        if isinstance(c, dict)
                    ]
                )
            elif path == "properties.destinations.logAnalytics":
                normalized[path] = _sorted(
                    [
                        {
                            "name": d.get("name"),
                            "workspaceResourceId": norm_id(d.get("workspaceResourceId")),
                        }
                        for d in value
                        if isinstance(d, dict)
                    ]
                )
            elif path == "properties.dataFlows":
                normalized[path] = _sorted(
                    [
                        {
                            "streams": sorted(f.get("streams") or []),
                            "destinations": sorted(f.get("destinations") or []),
                            "transformKql": (f.get("transformKql") or "source").strip(),
                            "outputStream": f.get("outputStream"),
                        }
                        for f in value
                        if isinstance(f, dict)
                    ],
                    key="outputStream",
                )
        if isinstance(normalized.get("kind"), str):
            normalized["kind"] = normalized["kind"].lower()
        return normalized

    def output(self, ctx: Context, resource: DataCollectionRule, live: Live, name: str) -> Any:
        if name == "immutable_id":
            return live.fields.get("properties.immutableId")
        if name == "logs_ingestion_endpoint":
            return live.fields.get("properties.endpoints.logsIngestion")
        return super().output(ctx, resource, live, name)

    def notes(self, ctx: Context, resource: DataCollectionRule) -> list[str]:
        """What the plan must say about this rule beyond its field changes (never writes)."""
        live = ctx.live(f"{self.kind}/{resource.name}")
        endpoint = live.fields.get("properties.endpoints.logsIngestion") if live else None
        text = self.PUBLIC_ENDPOINT_NOTE.format(
            endpoint=endpoint
            or "https://<rule>.<region>-1.ingest.monitor.azure.com, known after apply"
        )
        return [text]


# -------------------------------------------------------------------------- action group

_EMAIL_KEYS = ("name", "emailAddress", "useCommonAlertSchema")
_WEBHOOK_KEYS = ("name", "useCommonAlertSchema")
# The webhook URIs (they embed a token) are compared as name -> "<Key Vault secret>@<version>":
# a tag per receiver pins the version written with a digest of the URI (the action group shows
# the URI to its readers anyway), so a plan needs no value and works outside a private vault's
# VNet; the URI is read from the vault only to write it. Shown only as "(sensitive)".
WEBHOOK_URIS = "properties.webhookReceivers[].serviceUri"
WEBHOOK_PIN_TAG = "nsc-webhook-"  # + receiver name: "<secret>@<version>:<URI digest>"
UNPINNED = "(not pinned by nsc-reconcile)"
EDITED = "(changed outside nsc-reconcile)"


def _digest(value: Any) -> str:
    return hashlib.sha256(str(value or "").encode()).hexdigest()[:32]


def _pin_tag(receiver: str) -> str:
    """The tag pinning receiver ``receiver`` (characters Azure refuses in tag names -> _)."""
    return WEBHOOK_PIN_TAG + re.sub(r"[<>%&\\?/]", "_", receiver)


class ActionGroupReconciler(ArmReconciler[ActionGroup]):
    """An action group (location ``Global``). We own its e-mail and webhook receiver lists.

    Webhook URIs come from Key Vault secrets: compared by the Key Vault version pinned per
    receiver (no value read), shown only as ``(sensitive)``; ``Live.fields`` keeps only pins,
    the value is read (data plane) and put in the request body at write time."""

    kind = "action_group"
    listing = Listing("monitor", "action_groups", delete_method="delete")
    sensitive: ClassVar[frozenset[str]] = frozenset({WEBHOOK_URIS})

    def resource_id(self, ctx: Context, resource: ActionGroup) -> str:
        return f"{ctx.rg_id()}/providers/Microsoft.Insights/actionGroups/{resource.name}"

    def get(self, ctx: Context, resource: ActionGroup) -> Any:
        return ctx.clients.monitor.action_groups.get(ctx.resource_group, resource.name)

    def put(
        self, ctx: Context, resource: ActionGroup, body: dict[str, Any], etag: str | None
    ) -> None:
        from azure.mgmt.monitor.models import ActionGroupResource

        ctx.clients.monitor.action_groups.create_or_update(
            ctx.resource_group, resource.name, sdk_model(ActionGroupResource, body)
        )

    def refine(self, ctx: Context, resource: ActionGroup, live: Live) -> Live:
        """Webhook URIs leave ``fields``: each receiver shows the Key Vault version pinned in
        its tag when the URI still matches the pin's digest, else EDITED (pure, no calls;
        taken from ``raw``, so applying it twice changes nothing)."""
        wire = to_wire(live.raw)
        hooks = (wire.get("properties") or {}).get("webhookReceivers") or []
        tags = wire.get("tags") or {}
        live.fields["properties.webhookReceivers"] = [
            {k: v for k, v in h.items() if k != "serviceUri"} for h in hooks if isinstance(h, dict)
        ]
        pins: dict[str, str] = {}
        for hook in (h for h in hooks if isinstance(h, dict)):
            name = str(hook.get("name"))
            pin, _, digest = str(tags.get(_pin_tag(name)) or "").rpartition(":")
            if not pin:
                pins[name] = UNPINNED
            else:
                pins[name] = pin if digest == _digest(hook.get("serviceUri")) else EDITED
        live.fields[WEBHOOK_URIS] = pins
        return live

    def _webhook_pins(self, ctx: Context, resource: ActionGroup) -> dict[str, str] | Unknown:
        """name -> "<secret>@<current version>" from the secrets' ARM reads (no value);
        Unknown while a secret is absent (it is written earlier in the same apply)."""
        pins: dict[str, str] = {}
        for hook in resource.webhook_receivers:
            address = f"key_vault_secret/{hook.uri_secret}"
            version = ctx.output(address, "version")
            if not isinstance(version, str) or not version:
                return Unknown(f"{address}.version")
            pins[hook.name] = f"{hook.uri_secret}@{version}"
        return pins

    def _webhook_uris(self, ctx: Context, resource: ActionGroup) -> dict[str, str] | Unknown:
        """name -> URI of the pinned version: as written in this run, else read from the
        vault's data plane (needs its VNet when it is private). Every URI is registered
        with the redactor."""
        from azure.core.exceptions import ResourceNotFoundError

        pins = self._webhook_pins(ctx, resource)
        if isinstance(pins, Unknown):
            return pins
        secrets = ctx.state.secrets
        if secrets is None:
            raise LookupError("webhook receivers need a `secrets` section (their URIs)")
        vault = ctx.live(f"key_vault/{secrets.vault}")
        vault_uri = vault.fields.get("properties.vaultUri") if vault is not None else None
        if not vault_uri:
            return Unknown(f"key_vault/{secrets.vault}.uri")
        uris: dict[str, str] = {}
        for hook in resource.webhook_receivers:
            value = ctx.written_secret(f"key_vault_secret/{hook.uri_secret}")
            if value is None:
                version = pins[hook.name].rpartition("@")[2]
                client = ctx.clients.secret_client(str(vault_uri))
                try:
                    value = client.get_secret(hook.uri_secret, version).value
                except ResourceNotFoundError:
                    return Unknown(f"key_vault_secret/{hook.uri_secret}")
            if not value:
                return Unknown(f"key_vault_secret/{hook.uri_secret}")
            ctx.register_secret(value)
            uris[hook.name] = value
        return uris

    def declared(self, ctx: Context, resource: ActionGroup) -> dict[str, Any]:
        fields = self._plain(ctx, resource)
        if resource.webhook_receivers:  # else `webhookReceivers: []` already says it all
            fields[WEBHOOK_URIS] = self._webhook_pins(ctx, resource)
        return fields

    def notes(self, ctx: Context, resource: ActionGroup) -> list[str]:
        """What needs the VNet: writing webhook URIs reads them from a private vault."""
        secrets = ctx.state.secrets
        live = ctx.live(resource.address)
        if not resource.webhook_receivers or secrets is None:
            return []
        vault = ctx.live(f"key_vault/{secrets.vault}")
        access = vault.fields.get("properties.publicNetworkAccess") if vault else None
        pins = self._webhook_pins(ctx, resource)
        if str(access or "").lower() != "disabled" or (
            live is not None and live.fields.get(WEBHOOK_URIS) == pins
        ):
            return []
        return [
            f"writing the webhook URIs reads them from Key Vault {secrets.vault}, whose data "
            "plane is private: run apply inside the vault's VNet (plans compare Key Vault "
            "versions and work from anywhere)"
        ]

    def _plain(self, ctx: Context, resource: ActionGroup) -> dict[str, Any]:
        """The declared fields except the webhook URIs."""
        return {
            "location": "Global",
            "properties.groupShortName": resource.short_name,
            "properties.enabled": resource.enabled,
            "properties.emailReceivers": [
                {"name": e.name, "emailAddress": e.address, "useCommonAlertSchema": False}
                for e in resource.email_receivers
            ],
            "properties.webhookReceivers": [
                {"name": w.name, "useCommonAlertSchema": False} for w in resource.webhook_receivers
            ],
            **tag_fields(ctx.tags(resource.tags)),
        }

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        normalized = super().normalize(fields)
        if "properties.emailReceivers" in normalized:
            normalized["properties.emailReceivers"] = _project(
                normalized["properties.emailReceivers"], _EMAIL_KEYS
            )
        if "properties.webhookReceivers" in normalized:
            normalized["properties.webhookReceivers"] = _project(
                normalized["properties.webhookReceivers"], _WEBHOOK_KEYS
            )
        return normalized

    def body(
        self, ctx: Context, resource: ActionGroup, fields: dict[str, Any], live: Live | None
    ) -> dict[str, Any]:
        """The merged body with each webhook receiver's URI (the values, read only now) and
        its pin tag; the declared fields hold pins, not URIs."""
        fields = {path: value for path, value in fields.items() if path != WEBHOOK_URIS}
        uris = self._webhook_uris(ctx, resource)
        pins = self._webhook_pins(ctx, resource)
        if isinstance(uris, Unknown) or isinstance(pins, Unknown):
            missing = uris if isinstance(uris, Unknown) else pins
            raise LookupError(f"webhook URI not available: {missing}")
        hooks = fields.pop("properties.webhookReceivers")
        body = deep_merge(self.kept(live), unflatten(fields))
        body["properties"]["webhookReceivers"] = [
            {**h, "serviceUri": uris[h["name"]]} for h in hooks
        ]
        tags = {
            k: v for k, v in (body.get("tags") or {}).items() if not k.startswith(WEBHOOK_PIN_TAG)
        }
        for name, pin in pins.items():
            tags[_pin_tag(name)] = f"{pin}:{_digest(uris[name])}"
        body["tags"] = tags
        return body


# ----------------------------------------------------------------------------- log alert

_CONDITION_KEYS = ("query", "timeAggregation", "operator", "threshold", "failingPeriods")
_DURATIONS = ("properties.evaluationFrequency", "properties.windowSize")


class LogAlertReconciler(ArmReconciler[LogAlert]):
    """A scheduled query rule (kind ``LogAlert``) counting one agent event type in the table.

    Written with ``skipQueryValidation`` (the table may have been created a moment before)."""

    kind = "log_alert"
    listing = Listing("monitor", "scheduled_query_rules", delete_method="delete")
    set_like: ClassVar[frozenset[str]] = frozenset({"properties.scopes"})

    def resource_id(self, ctx: Context, resource: LogAlert) -> str:
        return f"{ctx.rg_id()}/providers/Microsoft.Insights/scheduledQueryRules/{resource.name}"

    def get(self, ctx: Context, resource: LogAlert) -> Any:
        return ctx.clients.monitor.scheduled_query_rules.get(ctx.resource_group, resource.name)

    def put(self, ctx: Context, resource: LogAlert, body: dict[str, Any], etag: str | None) -> None:
        from azure.mgmt.monitor.models import ScheduledQueryRuleResource

        # A write-time directive, not state: the just-created table has no data yet.
        body.setdefault("properties", {})["skipQueryValidation"] = True
        ctx.clients.monitor.scheduled_query_rules.create_or_update(
            ctx.resource_group, resource.name, sdk_model(ScheduledQueryRuleResource, body)
        )

    def _action_group_ids(self, ctx: Context, resource: LogAlert) -> list[str] | Unknown:
        ids: list[str] = []
        for name in resource.action_groups:
            live = ctx.live(f"action_group/{name}")
            if live is None:
                return Unknown(f"action_group/{name}.id")
            ids.append(live.id)
        return ids

    def declared(self, ctx: Context, resource: LogAlert) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "kind": "LogAlert",
            "location": ctx.state.location,
            "properties.severity": resource.severity,
            "properties.enabled": resource.enabled,
            "properties.evaluationFrequency": resource.evaluation_frequency,
            "properties.windowSize": resource.window_size,
            "properties.scopes": [_workspace_id(ctx, resource.workspace)],
            "properties.criteria.allOf": [
                {
                    "query": resource.effective_query,
                    "timeAggregation": "Count",
                    "operator": "GreaterThan",
                    "threshold": resource.threshold,
                    "failingPeriods": {
                        "numberOfEvaluationPeriods": 1,
                        "minFailingPeriodsToAlert": 1,
                    },
                }
            ],
            "properties.autoMitigate": resource.auto_mitigate,
            "properties.actions.actionGroups": self._action_group_ids(ctx, resource),
            **tag_fields(ctx.tags(resource.tags)),
        }
        if resource.description is not None:
            fields["properties.description"] = resource.description
        return fields

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        normalized = super().normalize(fields)
        for path in _DURATIONS:
            if path in normalized:
                normalized[path] = duration_seconds(normalized[path])
        ids = normalized.get("properties.actions.actionGroups")
        if isinstance(ids, list):
            normalized["properties.actions.actionGroups"] = sorted(norm_id(str(i)) for i in ids)
        scopes = normalized.get("properties.scopes")
        if isinstance(scopes, list):
            normalized["properties.scopes"] = sorted(norm_id(str(s)) for s in scopes)
        conditions = normalized.get("properties.criteria.allOf")
        if isinstance(conditions, list):
            normalized["properties.criteria.allOf"] = [
                {
                    **{k: c.get(k) for k in _CONDITION_KEYS},
                    "query": str(c.get("query") or "").strip().replace("\r\n", "\n"),
                    "threshold": float(c.get("threshold") or 0),
                }
                for c in conditions
                if isinstance(c, dict)
            ]
        if isinstance(normalized.get("kind"), str):
            normalized["kind"] = normalized["kind"].lower()
        return normalized

"""Agent-event alerting: custom Log Analytics table, data collection rule, action group and
log alert rules (TRIAGE_READY, APPROVAL_TIMEOUT, EXECUTION_FAILED).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from nsc_reconcile.model.base import Model, Reference, Resource, name_of

_DURATION = r"^PT(\d+H)?(\d+M)?$|^P1D$"


class Column(Model):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,44}$", description="Column name.")
    type: Literal["string", "int", "long", "real", "boolean", "dateTime", "guid", "dynamic"] = (
        Field(description="Log Analytics column type (the DCR maps `dateTime` to `datetime`).")
    )


class LogAnalyticsTable(Resource):
    """A custom table (`*_CL`) in an existing workspace, fed by the DCR."""

    kind = "log_analytics_table"

    workspace: str = Field(description="Workspace (`log_analytics_workspace/<name>`).")
    retention_days: int = Field(default=30, ge=4, le=730, description="Interactive retention.")
    total_retention_days: int | None = Field(
        default=None, ge=4, le=4383, description="Total retention including archive."
    )
    plan: Literal["Analytics", "Basic"] = Field(
        default="Analytics", description="Table plan; alerts need `Analytics`."
    )
    columns: list[Column] = Field(min_length=1, description="Schema; includes `TimeGenerated`.")

    @field_validator("columns")
    @classmethod
    def _time_generated(cls, value: list[Column]) -> list[Column]:
        if not any(c.name == "TimeGenerated" and c.type == "dateTime" for c in value):
            raise PydanticCustomError(
                "columns", "a custom table needs a `TimeGenerated` column of type dateTime", {}
            )
        return value

    @property
    def key(self) -> str:
        return f"{self.workspace}/{self.name}"

    def references(self) -> list[Reference]:
        return [Reference(("workspace",), f"log_analytics_workspace/{self.workspace}")]


class DataCollectionRule(Resource):
    """A `Direct` DCR: the agent posts events to its ingestion endpoint, they land in the table."""

    kind = "data_collection_rule"

    workspace: str = Field(description="Destination workspace (`log_analytics_workspace/<name>`).")
    table: str = Field(description="Destination custom table (`log_analytics_table`) by name.")
    transform_kql: str = Field(default="source", description="Ingestion-time transformation.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags.")

    def references(self) -> list[Reference]:
        return [
            Reference(("workspace",), f"log_analytics_workspace/{self.workspace}"),
            Reference(("table",), f"log_analytics_table/{self.workspace}/{self.table}"),
        ]


class EmailReceiver(Model):
    name: str = Field(description="Receiver name.")
    address: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="E-mail address.")


class WebhookReceiver(Model):
    name: str = Field(description="Receiver name.")
    uri_secret: str = Field(
        description="Key Vault secret (under `secrets.items`) holding the webhook URI; such "
        "URIs embed a token, so they never appear here."
    )


class ActionGroup(Resource):
    """Who is notified (location Global)."""

    kind = "action_group"

    short_name: Annotated[str, name_of("action_group_short_name")] = Field(
        description="`groupShortName`, at most 12 characters (shown in SMS/e-mail)."
    )
    enabled: bool = Field(default=True, description="Whether notifications are sent.")
    email_receivers: list[EmailReceiver] = Field(default_factory=list, description="E-mails.")
    webhook_receivers: list[WebhookReceiver] = Field(
        default_factory=list, description="Webhooks (e.g. a Teams workflow)."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags.")

    def references(self) -> list[Reference]:
        return [
            Reference(("webhook_receivers", i, "uri_secret"), f"key_vault_secret/{w.uri_secret}")
            for i, w in enumerate(self.webhook_receivers)
        ]


class LogAlert(Resource):
    """A scheduled query (log search) alert on one agent event type."""

    kind = "log_alert"

    event: str = Field(
        pattern=r"^[A-Z][A-Z0-9_]*$", description="Agent event type, e.g. `TRIAGE_READY`."
    )
    workspace: str = Field(description="Workspace queried (`log_analytics_workspace/<name>`).")
    table: str = Field(description="Custom table with the events (`log_analytics_table`).")
    event_column: str = Field(default="EventType", description="Column holding the event type.")
    query: str | None = Field(
        default=None,
        description="KQL; default: the table filtered on `event_column == event`.",
    )
    severity: int = Field(ge=0, le=4, description="0 (critical) to 4 (verbose).")
    evaluation_frequency: str = Field(
        default="PT5M", pattern=_DURATION, description="ISO 8601 duration, e.g. PT5M."
    )
    window_size: str = Field(
        default="PT5M", pattern=_DURATION, description="ISO 8601 duration, e.g. PT5M."
    )
    threshold: int = Field(default=0, ge=0, description="Fires when the count is above this.")
    enabled: bool = Field(default=True, description="Whether the rule evaluates.")
    auto_mitigate: bool = Field(default=False, description="Resolve automatically.")
    action_groups: list[str] = Field(min_length=1, description="Action groups by name.")
    description: str | None = Field(default=None, description="Shown in notifications.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags.")

    @property
    def effective_query(self) -> str:
        if self.query is not None:
            return self.query
        return f'{self.table}\n| where {self.event_column} == "{self.event}"'

    def references(self) -> list[Reference]:
        return [
            Reference(("workspace",), f"log_analytics_workspace/{self.workspace}"),
            Reference(("table",), f"log_analytics_table/{self.workspace}/{self.table}"),
            *(
                Reference(("action_groups", i), f"action_group/{g}")
                for i, g in enumerate(self.action_groups)
            ),
        ]

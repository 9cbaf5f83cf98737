"""The monitoring kinds: the Log Analytics workspace (existing) and table, the data
collection rule, action groups and log alerts."""

from __future__ import annotations

from nsc_reconcile.kinds import ExistingRead, KindSpec, Output, register
from nsc_reconcile.model.existing import ExistingLogAnalyticsWorkspace
from nsc_reconcile.model.monitoring import (
    ActionGroup,
    DataCollectionRule,
    LogAlert,
    LogAnalyticsTable,
)
from nsc_reconcile.naming import NameRule

_MODULE = "nsc_reconcile.resources.monitoring"

register(
    KindSpec(
        kind="log_analytics_workspace",
        existing_model=ExistingLogAnalyticsWorkspace,
        name_rule=NameRule(
            4,
            63,
            r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
            "alphanumerics and hyphens; start and end with an alphanumeric",
        ),
        existing_read=ExistingRead(
            "Microsoft.OperationalInsights/workspaces", "loganalytics", "workspaces"
        ),
        outputs=(Output("customer_id"),),
    )
)
register(
    KindSpec(
        kind="log_analytics_table",
        model=LogAnalyticsTable,
        reconciler=f"{_MODULE}:LogAnalyticsTableReconciler",
        name_rule=NameRule(
            4,
            63,
            r"[A-Za-z][A-Za-z0-9_]*_CL",
            "letters, digits and underscores; start with a letter; a custom table ends with _CL",
        ),
        collection=("log_analytics_tables",),
        phase=60,
        sdk_clients=("loganalytics",),
    )
)
register(
    KindSpec(
        kind="data_collection_rule",
        model=DataCollectionRule,
        reconciler=f"{_MODULE}:DataCollectionRuleReconciler",
        name_rule=NameRule(
            3,
            44,
            r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?",
            "alphanumerics, underscores, periods and hyphens; start with an alphanumeric",
        ),
        collection=("data_collection_rules",),
        phase=70,
        sdk_clients=("monitor",),
        outputs=(Output("immutable_id"), Output("logs_ingestion_endpoint")),
    )
)
register(
    KindSpec(
        kind="action_group",
        model=ActionGroup,
        reconciler=f"{_MODULE}:ActionGroupReconciler",
        name_rule=NameRule(
            1,
            260,
            r"[^:<>+/&%\\?|]*[^:<>+/&%\\?|. ]",
            "no : < > + / & % \\ ? | characters; not ending in a space or period",
        ),
        collection=("action_groups",),
        phase=80,
        sdk_clients=("monitor", "secret_client"),
    )
)
register(
    KindSpec(
        kind="log_alert",
        model=LogAlert,
        reconciler=f"{_MODULE}:LogAlertReconciler",
        name_rule=NameRule(
            1,
            260,
            r"[^*<>%{}&:\\?/#|\x00-\x1f]*[^*<>%{}&:\\?/#|\x00-\x1f. ]",
            "no * < > % { } & : \\ ? / # | or control characters; not ending in a space or period",
        ),
        collection=("log_alerts",),
        phase=90,
        sdk_clients=("monitor",),
    )
)

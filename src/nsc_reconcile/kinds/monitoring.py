"""The monitoring kinds: the Log Analytics workspace (existing) and table, the data
collection rule, action groups and log alerts."""

from __future__ import annotations

from nsc_reconcile.kinds import KindSpec, Output, register
from nsc_reconcile.model.existing import ExistingLogAnalyticsWorkspace
from nsc_reconcile.model.monitoring import (
    ActionGroup,
    DataCollectionRule,
    LogAlert,
    LogAnalyticsTable,
)

_MODULE = "nsc_reconcile.resources.monitoring"

register(
    KindSpec(
        kind="log_analytics_workspace",
        existing_model=ExistingLogAnalyticsWorkspace,
        outputs=(Output("customer_id"),),
    )
)
register(KindSpec(kind="log_analytics_table", model=LogAnalyticsTable, reconciler=_MODULE))
register(
    KindSpec(
        kind="data_collection_rule",
        model=DataCollectionRule,
        reconciler=_MODULE,
        outputs=(Output("immutable_id"), Output("logs_ingestion_endpoint")),
    )
)
register(KindSpec(kind="action_group", model=ActionGroup, reconciler=_MODULE))
register(KindSpec(kind="log_alert", model=LogAlert, reconciler=_MODULE))

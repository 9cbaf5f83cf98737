"""The Azure OpenAI kinds: the account (keys, endpoint, private link) and its deployments."""

from __future__ import annotations

from nsc_reconcile.kinds import KindSpec, Output, Parent, PrivateLink, register
from nsc_reconcile.model.openai import ModelDeployment, OpenAIAccount
from nsc_reconcile.naming import NameRule

_MODULE = "nsc_reconcile.resources.openai"

register(
    KindSpec(
        kind="openai_account",
        model=OpenAIAccount,
        reconciler=f"{_MODULE}:OpenAIAccountReconciler",
        name_rule=NameRule(
            2,
            64,
            r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?",
            "alphanumerics and hyphens; start and end with an alphanumeric",
        ),
        collection=("openai_accounts",),
        children=("deployments",),
        phase=10,
        sdk_clients=("cognitive",),
        outputs=(
            Output("endpoint"),
            Output("primary_key", sensitive=True),
            Output("secondary_key", sensitive=True),
        ),
        private_link=(
            PrivateLink(
                group_id="account",
                zones=("privatelink.openai.azure.com", "privatelink.cognitiveservices.azure.com"),
                service_suffix="openai.azure.com",
                port=443,
                label_field="custom_subdomain",
            ),
        ),
    )
)
register(
    KindSpec(
        kind="openai_deployment",
        model=ModelDeployment,
        reconciler=f"{_MODULE}:ModelDeploymentReconciler",
        name_rule=NameRule(
            2,
            64,
            r"[A-Za-z0-9][A-Za-z0-9_.-]*",
            "alphanumerics, underscores, periods and hyphens; start with an alphanumeric",
        ),
        phase=11,
        parent=Parent("openai_account", "account"),
        sdk_clients=("cognitive",),
        outputs=(Output("name"),),
    )
)

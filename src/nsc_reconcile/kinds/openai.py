"""The Azure OpenAI kinds: the account (keys, endpoint, private link) and its deployments."""

from __future__ import annotations

from nsc_reconcile.kinds import KindSpec, Output, PrivateLink, register
from nsc_reconcile.model.openai import ModelDeployment, OpenAIAccount

register(
    KindSpec(
        kind="openai_account",
        model=OpenAIAccount,
        reconciler="nsc_reconcile.resources.openai",
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
            ),
        ),
    )
)
register(
    KindSpec(
        kind="openai_deployment",
        model=ModelDeployment,
        reconciler="nsc_reconcile.resources.openai",
        outputs=(Output("name"),),
    )
)

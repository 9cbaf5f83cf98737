"""Azure OpenAI: the account (create or reuse) and its model deployments.

The account is private-only: a custom subdomain (required for a private endpoint and
immutable), public network access disabled, network ACLs default Deny.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from nsc_reconcile.model.base import (
    PRIVATE_ONLY,
    ChildResource,
    Model,
    Reference,
    Resource,
    name_of,
    policy_violation,
)


class NetworkAcls(Model):
    """The account's network rules; with public access disabled they are a second gate."""

    default_action: Literal["Deny", "Allow"] = Field(
        default="Deny", description="Must be `Deny` (private-only)."
    )
    ip_rules: list[str] = Field(
        default_factory=list, description="Public IP allow-list; must stay empty (private-only)."
    )

    @field_validator("default_action")
    @classmethod
    def _deny(cls, value: str) -> str:
        if value != "Deny":
            raise policy_violation(
                PRIVATE_ONLY, "network ACL default action must be 'Deny', not 'Allow'"
            )
        return value

    @field_validator("ip_rules")
    @classmethod
    def _no_ip_rules(cls, value: list[str]) -> list[str]:
        if value:
            raise policy_violation(PRIVATE_ONLY, "public IP rules open the account to the internet")
        return value


class ModelDeployment(ChildResource):
    """A model deployment, addressed as `openai_deployment/<account>/<name>`."""

    kind = "openai_deployment"

    model: str = Field(description="Model name, e.g. `gpt-4o-mini`.")
    model_version: str = Field(
        description="Model version, e.g. `2024-07-18`: the version created, and with an "
        "auto-upgrade option the oldest one accepted (see `version_upgrade_option`)."
    )
    model_format: Literal["OpenAI"] = Field(default="OpenAI", description="Model format.")
    sku: Literal["Standard", "GlobalStandard", "DataZoneStandard", "ProvisionedManaged"] = Field(
        default="Standard", description="Deployment type."
    )
    capacity: int = Field(ge=1, le=10000, description="Capacity in thousands of tokens/minute.")
    version_upgrade_option: Literal[
        "OnceNewDefaultVersionAvailable", "OnceCurrentVersionExpired", "NoAutoUpgrade"
    ] = Field(
        default="NoAutoUpgrade",
        description="Automatic model version upgrades by Azure. `NoAutoUpgrade`: the live "
        "version must equal `model_version` (a different one is a change). "
        "`OnceNewDefaultVersionAvailable` / `OnceCurrentVersionExpired`: Azure may move the "
        "deployment to a newer version; a live version newer than `model_version` (both "
        "dated, or both numbers) is no change and later writes keep it; an older one is.",
    )

    @property
    def account(self) -> str:
        """Name of the holding account."""
        return self._parent


class OpenAIAccount(Resource):
    """An Azure OpenAI (Cognitive Services, kind OpenAI) account."""

    kind = "openai_account"

    mode: Literal["create", "reuse"] = Field(
        default="create",
        description="`create`: create it if missing. `reuse`: it must already exist (an "
        "account made elsewhere); its settings are still reconciled.",
    )
    custom_subdomain: Annotated[str, name_of("custom_subdomain")] = Field(
        description="Custom subdomain (`https://<sub>.openai.azure.com/`); required for a "
        "private endpoint; cannot change after creation."
    )
    sku: Literal["S0"] = Field(default="S0", description="Pricing tier.")
    public_network_access: Literal["Disabled", "Enabled"] = Field(
        default="Disabled", description="Must be `Disabled` (private-only)."
    )
    network_acls: NetworkAcls = Field(
        default_factory=NetworkAcls, description="Network rules (default action Deny)."
    )
    local_auth: Literal["enabled", "disabled"] = Field(
        default="enabled",
        description="API-key authentication. The plan stores `azure-openai-api-key`, which "
        "needs keys enabled; `disabled` means Entra ID only.",
    )
    deployments: list[ModelDeployment] = Field(
        default_factory=list, description="Model deployments (written one at a time)."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags.")
    depends_on: list[str] = Field(default_factory=list, description="Extra `kind/name` edges.")

    @field_validator("public_network_access")
    @classmethod
    def _private(cls, value: str) -> str:
        if value != "Disabled":
            raise policy_violation(PRIVATE_ONLY, "public_network_access must be 'Disabled'")
        return value

    @property
    def must_exist(self) -> bool:
        return self.mode == "reuse"

    def model_post_init(self, _context: object, /) -> None:
        for deployment in self.deployments:
            deployment.adopt_parent(self.name)

    def references(self) -> list[Reference]:
        return [Reference(("depends_on", i), d) for i, d in enumerate(self.depends_on)]

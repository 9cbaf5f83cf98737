"""Azure OpenAI accounts (Cognitive Services, kind OpenAI) and their model deployments.

Owns the account's private-only settings, subdomain, SKU, location and our tags, and each
deployment's SKU/capacity, model and upgrade option (with auto-upgrade on, a newer model
version Azure moved to is kept). Reads with one GET; the account's API
keys are an output read with `listKeys` (POST) only when a secret needs them.
"""

from __future__ import annotations

import re
from typing import Any

from nsc_reconcile.changes import FieldChange
from nsc_reconcile.model.openai import ModelDeployment, OpenAIAccount
from nsc_reconcile.resources.base import (
    ArmReconciler,
    Context,
    Listing,
    Live,
    sdk_model,
    tag_fields,
)

ACCOUNT_TYPE = "Microsoft.CognitiveServices/accounts"

# Kinds that satisfy a declared `OpenAI` account: Microsoft upgrades eligible OpenAI
# accounts to Foundry (`AIServices`) in place; the OpenAI endpoint and keys keep working.
_OPENAI_COMPATIBLE = {"openai": "OpenAI", "aiservices": "OpenAI"}

# What an absent field of an existing account means: Azure may omit empty ACL lists and
# unset flags on GET. (A create shows them: nothing exists to default from.)
_ABSENT_MEANS: dict[str, Any] = {
    "properties.networkAcls.ipRules": [],
    "properties.disableLocalAuth": False,
}


def _account_id(ctx: Context, name: str) -> str:
    return f"{ctx.rg_id()}/providers/{ACCOUNT_TYPE}/{name}"


class OpenAIAccountReconciler(ArmReconciler[OpenAIAccount]):
    """An OpenAI account, private-only. `kind` is sent on create; an account Microsoft
    upgraded to `AIServices` is no drift and keeps its kind on later writes."""

    kind = "openai_account"
    holds_data = True  # its keys, deployments and what it learned (soft-deleted: purge)
    listing = Listing("cognitive", "accounts")
    immutable = frozenset({"kind", "location", "properties.customSubDomainName"})
    replace_steps = (
        "replacing {name} would lose its keys, deployments and private endpoint connection: "
        "delete and purge it deliberately, then apply again"
    )
    set_like = frozenset({"properties.networkAcls.ipRules"})

    def resource_id(self, ctx: Context, resource: OpenAIAccount) -> str:
        return _account_id(ctx, resource.name)

    def get(self, ctx: Context, resource: OpenAIAccount) -> Any:
        return ctx.clients.cognitive.accounts.get(ctx.resource_group, resource.name)

    def put(
        self, ctx: Context, resource: OpenAIAccount, body: dict[str, Any], etag: str | None
    ) -> None:
        from azure.mgmt.cognitiveservices.models import Account

        ctx.clients.cognitive.accounts.begin_create(
            ctx.resource_group, resource.name, sdk_model(Account, body)
        ).result()

    def declared(self, ctx: Context, resource: OpenAIAccount) -> dict[str, Any]:
        acls = resource.network_acls
        return {
            "kind": "OpenAI",
            "sku.name": resource.sku,
            "location": ctx.state.location,
            "properties.customSubDomainName": resource.custom_subdomain,
            "properties.publicNetworkAccess": resource.public_network_access,
            "properties.networkAcls.defaultAction": acls.default_action,
            "properties.networkAcls.ipRules": [{"value": ip} for ip in acls.ip_rules],
            "properties.disableLocalAuth": resource.local_auth == "disabled",
            **tag_fields(ctx.tags(resource.tags)),
        }

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        normalized = super().normalize(fields)
        if normalized:  # an account that exists (a missing one has no fields at all)
            for path, default in _ABSENT_MEANS.items():
                if normalized.get(path) is None:
                    normalized[path] = default
        kind = normalized.get("kind")
        if isinstance(kind, str):
            normalized["kind"] = _OPENAI_COMPATIBLE.get(kind.lower(), kind)
        subdomain = normalized.get("properties.customSubDomainName")
        if isinstance(subdomain, str):  # DNS labels: case does not matter
            normalized["properties.customSubDomainName"] = subdomain.lower()
        return normalized

    def sent(
        self, ctx: Context, resource: OpenAIAccount, fields: dict[str, Any], live: Live | None
    ) -> dict[str, Any]:
        """`kind` only on create: an update keeps the live kind (OpenAI or the AIServices
        upgrade). A change of subdomain or location is refused before this (manual
        ``replace_policy``): replacing an account loses its keys, deployments and private
        endpoint connection."""
        sent = super().sent(ctx, resource, fields, live)
        if live is not None:
            sent.pop("kind", None)
        return sent

    def current_keys(self, ctx: Context, resource: OpenAIAccount) -> tuple[str, str]:
        """The account's key1 and key2 now (``listKeys``), registered for redaction."""
        keys = ctx.clients.cognitive.accounts.list_keys(ctx.resource_group, resource.name)
        return _registered(ctx, keys)

    def regenerate_key(
        self, ctx: Context, resource: OpenAIAccount, key_name: str
    ) -> tuple[str, str]:
        """``regenerateKey`` of ``Key1`` or ``Key2`` (credential rotation): the old value stops
        working at once. Returns key1 and key2 as the answer gives them (registered for
        redaction)."""
        keys = ctx.clients.cognitive.accounts.regenerate_key(
            ctx.resource_group, resource.name, key_name
        )
        return _registered(ctx, keys)

    def output(self, ctx: Context, resource: OpenAIAccount, live: Live, name: str) -> Any:
        if name == "endpoint":
            return live.fields.get("properties.endpoint")
        if name in ("primary_key", "secondary_key"):
            keys = ctx.clients.cognitive.accounts.list_keys(ctx.resource_group, resource.name)
            return keys.key1 if name == "primary_key" else keys.key2
        return super().output(ctx, resource, live, name)


def _registered(ctx: Context, keys: Any) -> tuple[str, str]:
    pair = (str(keys.key1 or ""), str(keys.key2 or ""))
    for key in pair:
        ctx.register_secret(key)
    return pair


_VERSION = "properties.model.version"
_UPGRADE_OPTION = "properties.versionUpgradeOption"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _newer(live: Any, declared: Any) -> bool:
    """Whether model version ``live`` is known to be newer than ``declared``: both carry an
    ISO date (``2024-07-18``, ``turbo-2024-04-09``) or both are numbers (``1``, ``2``). Other
    pairs cannot be ordered, so they are not taken as an upgrade."""
    if not isinstance(live, str) or not isinstance(declared, str):
        return False
    live_date, declared_date = _ISO_DATE.search(live), _ISO_DATE.search(declared)
    if live_date and declared_date:
        return live_date.group() > declared_date.group()
    if live.isdigit() and declared.isdigit():
        return int(live) > int(declared)
    return False


def upgraded_by_azure(upgrade_option: Any, declared: Any, live: Any) -> bool:
    """True when the live model version is one Azure moved the deployment to and the desired
    state lets it: an upgrade option other than NoAutoUpgrade and a newer live version. Such
    a version is kept, never written back to the declared one."""
    return upgrade_option != "NoAutoUpgrade" and _newer(live, declared)


class ModelDeploymentReconciler(ArmReconciler[ModelDeployment]):
    """A model deployment of one account; writes under one account are serialized (Azure
    answers 409 RequestConflict to parallel deployment writes). With an auto-upgrade option,
    a newer model version Azure moved it to is no change and is kept on later writes."""

    kind = "openai_deployment"
    listing = Listing("cognitive", "deployments", list_method="list", parent="openai_account")

    def changes(self, desired: dict[str, Any], live: Live | None) -> list[FieldChange]:
        if live is not None and upgraded_by_azure(
            desired.get(_UPGRADE_OPTION), desired.get(_VERSION), live.fields.get(_VERSION)
        ):
            desired = {**desired, _VERSION: live.fields[_VERSION]}
        return super().changes(desired, live)

    def sent(
        self, ctx: Context, resource: ModelDeployment, fields: dict[str, Any], live: Live | None
    ) -> dict[str, Any]:
        """A model version Azure upgraded the deployment to is written back as it is."""
        sent = super().sent(ctx, resource, fields, live)
        version = live.fields.get(_VERSION) if live is not None else None
        if upgraded_by_azure(resource.version_upgrade_option, resource.model_version, version):
            sent[_VERSION] = version
        return sent

    def resource_id(self, ctx: Context, resource: ModelDeployment) -> str:
        return f"{_account_id(ctx, resource.account)}/deployments/{resource.name}"

    def get(self, ctx: Context, resource: ModelDeployment) -> Any:
        return ctx.clients.cognitive.deployments.get(
            ctx.resource_group, resource.account, resource.name
        )

    def put(
        self, ctx: Context, resource: ModelDeployment, body: dict[str, Any], etag: str | None
    ) -> None:
        from azure.mgmt.cognitiveservices.models import Deployment

        ctx.clients.cognitive.deployments.begin_create_or_update(
            ctx.resource_group, resource.account, resource.name, sdk_model(Deployment, body)
        ).result()

    def declared(self, ctx: Context, resource: ModelDeployment) -> dict[str, Any]:
        return {
            "sku.name": resource.sku,
            "sku.capacity": resource.capacity,
            "properties.model.format": resource.model_format,
            "properties.model.name": resource.model,
            "properties.model.version": resource.model_version,
            "properties.versionUpgradeOption": resource.version_upgrade_option,
            **tag_fields(ctx.tags()),
        }

    def lock_key(self, resource: ModelDeployment) -> str | None:
        return f"openai_account/{resource.account}"

    def output(self, ctx: Context, resource: ModelDeployment, live: Live, name: str) -> Any:
        if name == "name":
            return live.fields.get("name") or resource.name
        return super().output(ctx, resource, live, name)

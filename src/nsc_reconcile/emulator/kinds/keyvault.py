"""Key Vault control plane: vaults and ``vaults/secrets`` (2025-05-01 semantics).

A vault's ``vaultUri`` is the emulator's data-plane URL for it (``world.secrets.vault_url``);
an ARM secret PUT writes a new version into the shared ``SecretStore`` and, as on Azure, the
value never comes back from GET. Imports only kinds.base, protocol, the secret store, stdlib.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nsc_reconcile.emulator.kinds.base import Kind, Reply, Resource
from nsc_reconcile.emulator.protocol import ArmError
from nsc_reconcile.emulator.secrets import SecretError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

VAULT_TYPE = "Microsoft.KeyVault/vaults"
SECRET_TYPE = "Microsoft.KeyVault/vaults/secrets"
_VAULT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
_SECRET_NAME = re.compile(r"^[a-zA-Z0-9-]{1,127}$")


class Vault(Kind):
    """``Microsoft.KeyVault/vaults``: name globally unique, URI on the emulator's plane."""

    type = VAULT_TYPE
    etag_field = False  # not in the 2025-05-01 schema
    # Recorded (Test_KeyVault_Vault_CRUD): create is a synchronous 200 with no polling headers
    # that says RegisteringDns; a later GET says Succeeded. Delete: synchronous 200.
    on_create = Reply(200, state="RegisteringDns")
    on_update = Reply(200)
    on_delete = Reply(200)

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        name = rid.rsplit("/", 1)[1]
        if existing is None and (not _VAULT_NAME.match(name) or "--" in name):
            raise ArmError(
                400,
                "VaultNameNotValid",
                f"The vault name '{name}' is invalid. A vault's name must be between 3-24 "
                "alphanumeric characters. The name must begin with a letter, end with a letter "
                "or digit, and not contain consecutive hyphens.",
            )
        if existing is None:
            for other in world.list_by_type(VAULT_TYPE):
                if other["name"].lower() == name.lower() and other["id"].lower() != rid.lower():
                    raise ArmError(
                        409,
                        "VaultAlreadyExists",
                        f"The vault name '{name}' is already in use. Vault names are globally "
                        "unique so it is possible that the name is already taken.",
                    )
        props = body.get("properties") or {}
        if not props.get("tenantId"):
            raise ArmError(400, "BadRequest", "The property 'tenantId' is required.")
        sku = props.get("sku") or {}
        if str(sku.get("name", "")).lower() not in ("standard", "premium"):
            raise ArmError(400, "BadRequest", f"The sku name '{sku.get('name')}' is invalid.")
        old = (existing or {}).get("properties", {})
        if old.get("enablePurgeProtection") and props.get("enablePurgeProtection") is False:
            raise ArmError(
                400,
                "BadRequest",
                'The property "enablePurgeProtection" cannot be set to false. Enabling the '
                "purge protection for a vault is an irreversible action.",
            )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        name = rid.rsplit("/", 1)[1]
        props = resource.setdefault("properties", {})
        props["vaultUri"] = world.secrets.vault_url(name)
        props.setdefault("accessPolicies", [])
        props.setdefault("enabledForDeployment", False)
        props.setdefault("enabledForDiskEncryption", False)
        props.setdefault("enabledForTemplateDeployment", False)
        props.setdefault("enableRbacAuthorization", False)
        props["enableSoftDelete"] = True
        props.setdefault("softDeleteRetentionInDays", 90)
        props.setdefault("publicNetworkAccess", "Enabled")
        acls = props.setdefault("networkAcls", {})
        acls.setdefault("bypass", "AzureServices")
        acls.setdefault("defaultAction", "Allow")
        acls.setdefault("ipRules", [])
        acls.setdefault("virtualNetworkRules", [])
        props["privateEndpointConnections"] = (
            (existing or {}).get("properties", {}).get("privateEndpointConnections", [])
        )
        props.pop("createMode", None)


class VaultSecret(Kind):
    """``Microsoft.KeyVault/vaults/secrets``: write-only values through ARM."""

    type = SECRET_TYPE
    etag_field = False  # not in the 2025-05-01 schema
    system_data = False
    location_required = False
    provisioning_state = False  # the 2025-05-01 SecretProperties have no provisioningState

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        name = rid.rsplit("/", 1)[1]
        if not _SECRET_NAME.match(name):
            raise ArmError(
                400,
                "BadRequest",
                f"The secret name '{name}' is invalid: use 1-127 letters, digits and dashes.",
            )
        props = body.get("properties") or {}
        if existing is None and props.get("value") is None:
            raise ArmError(400, "BadRequest", "The property 'value' is required.")

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        # The value goes to the data-plane store here (the only hook that sees it) and is
        # dropped from what ARM keeps, so GET never returns it.
        vault_id, _, name = rid.rsplit("/", 2)
        vault = vault_id.rsplit("/", 1)[1]
        props = resource.setdefault("properties", {})
        value = props.pop("value", None)
        content_type = props.get("contentType")
        attributes = props.get("attributes") or {}
        try:
            tags = resource.get("tags")
            if value is not None:
                record = world.secrets.set(
                    vault, name, str(value), content_type=content_type, tags=tags
                )
            else:
                record = world.secrets.update(vault, name, content_type=content_type, tags=tags)
            if "enabled" in attributes or "nbf" in attributes or "exp" in attributes:
                record = world.secrets.update(
                    vault,
                    name,
                    version=record["version"],
                    enabled=attributes.get("enabled"),
                    not_before=attributes.get("nbf"),
                    expires=attributes.get("exp"),
                )
        except SecretError as err:
            raise ArmError(err.status, err.code, err.message) from err
        vault_resource = world.get(vault_id) or {}
        if vault_resource.get("location"):
            resource["location"] = vault_resource["location"]
        base = world.secrets.vault_url(vault)
        props["secretUri"] = f"{base}secrets/{record['name']}"
        props["secretUriWithVersion"] = f"{base}secrets/{record['name']}/{record['version']}"
        shown = {k: v for k, v in record["attributes"].items() if k in _ARM_ATTRIBUTES}
        props["attributes"] = shown
        if record.get("contentType") is not None:
            props["contentType"] = record["contentType"]

    def view(self, world: World, rid: str, stored: Resource | None) -> Resource | None:
        """ARM shows the secret store's latest version: also secrets written through the
        data plane (or seeded), with their data-plane tags; none once soft-deleted."""
        vault_id, _, name = rid.rsplit("/", 2)
        vault_resource = world.get(vault_id)
        if vault_resource is None:
            return None
        try:
            record = world.secrets.get(vault_id.rsplit("/", 1)[1], name)
        except SecretError:
            return None
        base = world.secrets.vault_url(str(vault_resource["name"]))
        shown: Resource = {
            k: v for k, v in (stored or {}).items() if k in ("id", "name", "type", "systemData")
        }
        shown.setdefault("id", f"{vault_resource['id']}/secrets/{record['name']}")
        shown.setdefault("name", record["name"])
        shown.setdefault("type", SECRET_TYPE)
        if vault_resource.get("location"):
            shown["location"] = vault_resource["location"]
        shown["tags"] = dict(record.get("tags") or {})
        props: Resource = {}
        if record.get("contentType") is not None:
            props["contentType"] = record["contentType"]
        props["attributes"] = {
            k: v for k, v in record["attributes"].items() if k in _ARM_ATTRIBUTES
        }
        props["secretUri"] = f"{base}secrets/{record['name']}"
        props["secretUriWithVersion"] = f"{base}secrets/{record['name']}/{record['version']}"
        shown["properties"] = props
        return shown

    def list_view(self, world: World, vault_id: str, stored: list[Resource]) -> list[Resource]:
        by_name = {str(s.get("name", "")).lower(): s for s in stored}
        out = []
        for record in world.secrets.list(vault_id.rsplit("/", 1)[1]):
            rid = f"{vault_id}/secrets/{record['name']}"
            view = self.view(world, rid, by_name.get(record["name"].lower()))
            if view is not None:
                out.append(view)
        return out


_ARM_ATTRIBUTES = ("enabled", "nbf", "exp", "created", "updated")


def refresh_vault_uris(world: World) -> None:
    """Re-point every stored vault's ``vaultUri`` and secret URIs at the data plane.

    For the app to call once the Key Vault plane has installed its URL resolver: vaults seeded
    before that carry the resolver's default (``https://<vault>.vault.azure.net/``).
    """
    for vault in world.list_by_type(VAULT_TYPE):
        base = world.secrets.vault_url(str(vault["name"]))
        vault.setdefault("properties", {})["vaultUri"] = base
        world.put(str(vault["id"]), vault)
        for secret in world.children(str(vault["id"]), SECRET_TYPE):
            props = secret.setdefault("properties", {})
            with_version = str(props.get("secretUriWithVersion", ""))
            version = with_version.rstrip("/").rsplit("/", 1)[-1] if with_version else ""
            props["secretUri"] = f"{base}secrets/{secret['name']}"
            if version:
                props["secretUriWithVersion"] = f"{base}secrets/{secret['name']}/{version}"
            world.put(str(secret["id"]), secret)

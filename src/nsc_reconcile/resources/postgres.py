"""PostgreSQL Flexible Servers (public-access mode, public access off) and their databases.

Owns the server's version, SKU, storage size, backup retention, HA mode, admin login, public
access and our tags; each database's charset and collation. The admin password is read from
Key Vault only to create the server and is never declared, compared, logged or resent.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nsc_reconcile.changes import Unknown
from nsc_reconcile.model.postgres import Database, PostgresqlServer
from nsc_reconcile.resources.base import (
    ArmReconciler,
    Context,
    Listing,
    Live,
    sdk_model,
    tag_fields,
    to_wire,
    unflatten,
)

SERVER_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers"

# Enum values Azure may return in another casing.
_SERVER_ENUMS = frozenset(
    {"sku.tier", "properties.highAvailability.mode", "properties.network.publicNetworkAccess"}
)


class AdminPasswordUnavailableError(Exception):
    """The admin password could not be read from Key Vault (the value is never shown)."""


def _server_id(ctx: Context, name: str) -> str:
    return f"{ctx.rg_id()}/providers/{SERVER_TYPE}/{name}"


class PostgresqlServerReconciler(ArmReconciler[PostgresqlServer]):
    """A LangFuse PostgreSQL Flexible Server. Created with one PUT that carries the admin
    password; later changes are a PATCH of only the fields that differ (no password)."""

    kind = "postgresql_server"
    holds_data = True
    listing = Listing("postgres", "servers")
    immutable = frozenset({"location", "properties.administratorLogin"})
    # The rule: any other state (Disabled, Dropping, a failed create...) needs a write.
    ready_states: ClassVar[dict[str, tuple[str, ...]]] = {
        "properties.state": ("Ready", "Stopped", "Updating")
    }
    replace_steps = (
        "replacing {name} would delete its data: create a new server, migrate (dump/restore) "
        "by hand, then point the desired state at it"
    )

    def resource_id(self, ctx: Context, resource: PostgresqlServer) -> str:
        return _server_id(ctx, resource.name)

    def get(self, ctx: Context, resource: PostgresqlServer) -> Any:
        return ctx.clients.postgres.servers.get(ctx.resource_group, resource.name)

    def declared(self, ctx: Context, resource: PostgresqlServer) -> dict[str, Any]:
        return {
            "location": ctx.state.location,
            "sku.name": resource.sku.name,
            "sku.tier": resource.sku.tier,
            "properties.version": resource.version,
            "properties.administratorLogin": resource.admin_login,
            "properties.storage.storageSizeGB": resource.storage_gb,
            "properties.backup.backupRetentionDays": resource.backup_retention_days,
            "properties.highAvailability.mode": resource.high_availability,
            "properties.network.publicNetworkAccess": resource.public_network_access,
            **tag_fields(ctx.tags(resource.tags)),
        }

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        fields = dict(fields)
        for path in _SERVER_ENUMS & fields.keys():
            if isinstance(fields[path], str):
                fields[path] = fields[path].lower()
        return super().normalize(fields)

    def lock_key(self, resource: PostgresqlServer) -> str | None:
        # Azure runs one operation at a time per server (server updates, database creates).
        return f"postgresql_server/{resource.name}"

    def send(
        self, ctx: Context, resource: PostgresqlServer, declared: dict[str, Any], live: Live | None
    ) -> None:
        """Not one PUT of a merged body: a create is a PUT that must carry the admin password
        (read from Key Vault only then); an update is a PATCH of only the fields that differ,
        which needs no password (a PUT would). A change of login or location never gets here
        (manual ``replace_policy``: ``write`` refuses it)."""
        if live is None:
            self._create(ctx, resource, declared)
            return
        changes = self.changes(declared, live)
        changed = {c.path for c in changes if c.path in declared}
        if len(changed) < len(changes):  # unhealthy (health): repair by sending all we own
            changed |= {p for p in declared if p not in self.immutable}
        patch: dict[str, Any] = {}
        if changed & {"sku.name", "sku.tier"}:  # PATCH takes the SKU as a whole
            patch["sku.name"] = declared["sku.name"]
            patch["sku.tier"] = declared["sku.tier"]
        for path in changed - {"sku.name", "sku.tier"}:
            if not path.startswith("tags."):
                patch[path] = declared[path]
        if any(path.startswith("tags.") for path in changed):
            # PATCH replaces the whole tag set: keep tags others put on the server.
            live_tags = to_wire(live.raw).get("tags") or {}
            patch.update(tag_fields({**live_tags, **ctx.tags(resource.tags)}))
        if "properties.version" in patch:
            patch["properties.createMode"] = "Update"  # in-place major version upgrade
        if not patch:
            return
        from azure.mgmt.postgresqlflexibleservers.models import ServerForPatch

        ctx.clients.postgres.servers.begin_update(
            ctx.resource_group, resource.name, sdk_model(ServerForPatch, unflatten(patch))
        ).result()

    def _create(self, ctx: Context, resource: PostgresqlServer, declared: dict[str, Any]) -> None:
        from azure.mgmt.postgresqlflexibleservers.models import Server

        # Public-access networking mode: no delegatedSubnetResourceId / privateDnsZoneArmResourceId
        # (VNet injection would rule out the private endpoint).
        body = unflatten(declared)
        body["properties"]["createMode"] = "Create"
        body["properties"]["administratorLoginPassword"] = self._admin_password(ctx, resource)
        ctx.clients.postgres.servers.begin_create_or_update(
            ctx.resource_group, resource.name, sdk_model(Server, body)
        ).result()

    def _admin_password(self, ctx: Context, resource: PostgresqlServer) -> str:
        """The generated password: as generated earlier in this run, else read from the
        vault's data plane (never displayed)."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        name = resource.admin_password.key_vault_secret
        written = ctx.written_secret(f"key_vault_secret/{name}")
        if written is not None:  # generated in this run: no read (works with a private vault)
            return written
        if ctx.state.secrets is None:
            raise AdminPasswordUnavailableError(f"no `secrets` section: cannot read {name}")
        vault = ctx.state.secrets.vault
        uri = ctx.output(f"key_vault/{vault}", "uri")
        if isinstance(uri, Unknown) or not uri:
            raise AdminPasswordUnavailableError(f"Key Vault {vault} not found: cannot read {name}")
        try:
            value = ctx.clients.secret_client(str(uri)).get_secret(name).value
        except ResourceNotFoundError:
            raise AdminPasswordUnavailableError(
                f"secret {name} does not exist in Key Vault {vault} (key_vault_secret/{name} "
                "creates it; apply it first)"
            ) from None
        except HttpResponseError as error:
            # from None: the SDK error holds the response, never print more than its code.
            raise AdminPasswordUnavailableError(
                f"cannot read secret {name} from Key Vault {vault}: HTTP {error.status_code} "
                f"{getattr(error.error, 'code', '') or ''}".rstrip()
            ) from None
        if not value:
            raise AdminPasswordUnavailableError(f"secret {name} in Key Vault {vault} is empty")
        ctx.register_secret(str(value))  # an error echoing the request body stays redacted
        return str(value)

    def set_admin_password(self, ctx: Context, resource: PostgresqlServer, password: str) -> None:
        """PATCH only ``administratorLoginPassword`` (credential rotation) and wait: Azure sets
        it on the admin role at once, so the old password stops working. Nothing else changes;
        the password is registered for redaction, never shown."""
        from azure.mgmt.postgresqlflexibleservers.models import ServerForPatch

        ctx.register_secret(password)
        body = {"properties": {"administratorLoginPassword": password}}
        ctx.clients.postgres.servers.begin_update(
            ctx.resource_group, resource.name, sdk_model(ServerForPatch, body)
        ).result()

    def output(self, ctx: Context, resource: PostgresqlServer, live: Live, name: str) -> Any:
        if name == "fqdn":
            return live.fields.get("properties.fullyQualifiedDomainName")
        if name == "admin_login":
            return live.fields.get("properties.administratorLogin")
        if name == "id":
            return live.id
        return super().output(ctx, resource, live, name)


class PostgresqlDatabaseReconciler(ArmReconciler[Database]):
    """A database on a server we create. Charset and collation are fixed at creation."""

    kind = "postgresql_database"
    tagged = False
    holds_data = True
    # Databases carry no tags: every database on a server that carries our marks is ours,
    # except the ones Azure makes with every server.
    listing = Listing(
        "postgres", "databases", list_method="list_by_server", parent="postgresql_server",
        inherit_mark=True,
    )  # fmt: skip
    never_orphans = frozenset({"postgres", "azure_maintenance", "azure_sys"})
    replace_steps = (
        "replacing database {name} would delete its data: create a new database and migrate by hand"
    )
    # Everything we declare is immutable: a declared change is a replacement, which write
    # refuses (manual policy); a database whose operation failed (health) is written again
    # as it is: a repair.
    immutable = frozenset({"properties.charset", "properties.collation"})

    def resource_id(self, ctx: Context, resource: Database) -> str:
        return f"{_server_id(ctx, resource.server)}/databases/{resource.name}"

    def get(self, ctx: Context, resource: Database) -> Any:
        return ctx.clients.postgres.databases.get(
            ctx.resource_group, resource.server, resource.name
        )

    def put(self, ctx: Context, resource: Database, body: dict[str, Any], etag: str | None) -> None:
        from azure.mgmt.postgresqlflexibleservers.models import Database as DatabaseModel

        ctx.clients.postgres.databases.begin_create(
            ctx.resource_group, resource.server, resource.name, sdk_model(DatabaseModel, body)
        ).result()

    def declared(self, ctx: Context, resource: Database) -> dict[str, Any]:
        return {
            "properties.charset": resource.charset,
            "properties.collation": resource.collation,
        }

    def normalize(self, fields: dict[str, Any]) -> dict[str, Any]:
        # PostgreSQL treats encoding and locale names case-insensitively (UTF8 = utf8).
        return super().normalize(
            {k: v.lower() if isinstance(v, str) else v for k, v in fields.items()}
        )

    def lock_key(self, resource: Database) -> str | None:
        return f"postgresql_server/{resource.server}"

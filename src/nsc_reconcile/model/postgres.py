"""PostgreSQL Flexible Server for LangFuse, separate from the business database.

Public-access networking mode with public network access disabled, no firewall rules, no VNet
injection: the only path in is its private endpoint. The admin password is generated once and
kept in Key Vault; it never appears here.
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


class Database(ChildResource):
    """A database on the server, addressed as `postgresql_database/<server>/<name>`."""

    kind = "postgresql_database"

    charset: str = Field(default="UTF8", description="Character set.")
    collation: str = Field(default="en_US.utf8", description="Collation.")

    @property
    def server(self) -> str:
        """Name of the holding server."""
        return self._parent


class Sku(Model):
    name: str = Field(description="Compute size, e.g. `Standard_B2s`, `Standard_D2ds_v5`.")
    tier: Literal["Burstable", "GeneralPurpose", "MemoryOptimized"] = Field(
        description="Compute tier."
    )


class AdminPassword(Model):
    """Where the administrator password is kept (generated once on create)."""

    key_vault_secret: str = Field(
        description="Name of the secret (declared under `secrets.items`) that holds it."
    )


class PostgresqlServer(Resource):
    """A PostgreSQL Flexible Server we create."""

    kind = "postgresql_server"

    role: Literal["langfuse", "business"] = Field(
        default="langfuse", description="What it serves; the LangFuse store must be `langfuse`."
    )
    version: Literal["15", "16", "17"] = Field(
        default="16", description="PostgreSQL major version (LangFuse needs 15 or later)."
    )
    sku: Sku = Field(description="Compute.")
    storage_gb: int = Field(default=32, ge=32, le=32768, description="Storage size in GiB.")
    backup_retention_days: int = Field(default=7, ge=7, le=35, description="Backup retention.")
    high_availability: Literal["Disabled", "ZoneRedundant", "SameZone"] = Field(
        default="Disabled", description="High availability mode."
    )
    admin_login: Annotated[str, name_of("postgresql_login")] = Field(
        description="Administrator login; cannot change after creation."
    )
    admin_password: AdminPassword = Field(description="Where the admin password is kept.")
    public_network_access: Literal["Disabled", "Enabled"] = Field(
        default="Disabled", description="Must be `Disabled` (private-only)."
    )
    firewall_rules: list[str] = Field(
        default_factory=list, description="Must stay empty: firewall rules open a public path."
    )
    databases: list[Database] = Field(default_factory=list, description="Databases to create.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags.")
    depends_on: list[str] = Field(default_factory=list, description="Extra `kind/name` edges.")

    @field_validator("public_network_access")
    @classmethod
    def _private(cls, value: str) -> str:
        if value != "Disabled":
            raise policy_violation(PRIVATE_ONLY, "public_network_access must be 'Disabled'")
        return value

    @field_validator("firewall_rules")
    @classmethod
    def _no_firewall(cls, value: list[str]) -> list[str]:
        if value:
            raise policy_violation(
                PRIVATE_ONLY,
                "PostgreSQL firewall rules open the server's public endpoint; use the "
                "private endpoint instead",
            )
        return value

    def model_post_init(self, _context: object, /) -> None:
        for database in self.databases:
            database.adopt_parent(self.name)

    def references(self) -> list[Reference]:
        refs = [
            Reference(("admin_password", "key_vault_secret"),
                      f"key_vault_secret/{self.admin_password.key_vault_secret}")
        ]  # fmt: skip
        return refs + [Reference(("depends_on", i), d) for i, d in enumerate(self.depends_on)]

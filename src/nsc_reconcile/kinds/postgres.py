"""The PostgreSQL flexible server kinds: the server (managed or existing) and its databases."""

from __future__ import annotations

from nsc_reconcile.kinds import ExistingRead, KindSpec, Output, Parent, PrivateLink, register
from nsc_reconcile.model.existing import ExistingPostgresqlServer
from nsc_reconcile.model.postgres import Database, PostgresqlServer
from nsc_reconcile.naming import NameRule

_MODULE = "nsc_reconcile.resources.postgres"

register(
    KindSpec(
        kind="postgresql_server",
        model=PostgresqlServer,
        existing_model=ExistingPostgresqlServer,
        reconciler=f"{_MODULE}:PostgresqlServerReconciler",
        name_rule=NameRule(
            3,
            63,
            r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?",
            "lower-case letters, digits and hyphens; not starting or ending with a hyphen",
        ),
        collection=("postgresql_servers",),
        children=("databases",),
        phase=20,
        sdk_clients=("postgres", "secret_client"),
        existing_read=ExistingRead(
            "Microsoft.DBforPostgreSQL/flexibleServers", "postgres", "servers"
        ),
        # Creates take 5-10 min on Azure (azurerm CI 457-643 s).
        time_factor=2.0,
        outputs=(Output("fqdn"), Output("admin_login")),
        private_link=(
            PrivateLink(
                group_id="postgresqlServer",
                zones=("privatelink.postgres.database.azure.com",),
                service_suffix="postgres.database.azure.com",
                port=5432,
            ),
        ),
    )
)
register(
    KindSpec(
        kind="postgresql_database",
        model=Database,
        reconciler=f"{_MODULE}:PostgresqlDatabaseReconciler",
        name_rule=NameRule(
            1,
            63,
            r"[A-Za-z_][A-Za-z0-9_$]*",
            "letters, digits, underscores and $; start with a letter or underscore",
        ),
        phase=21,
        parent=Parent("postgresql_server", "server"),
        sdk_clients=("postgres",),
    )
)

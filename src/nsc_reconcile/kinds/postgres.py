"""The PostgreSQL flexible server kinds: the server (managed or existing) and its databases."""

from __future__ import annotations

from nsc_reconcile.kinds import KindSpec, Output, PrivateLink, register
from nsc_reconcile.model.existing import ExistingPostgresqlServer
from nsc_reconcile.model.postgres import Database, PostgresqlServer

register(
    KindSpec(
        kind="postgresql_server",
        model=PostgresqlServer,
        existing_model=ExistingPostgresqlServer,
        reconciler="nsc_reconcile.resources.postgres",
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
        kind="postgresql_database", model=Database, reconciler="nsc_reconcile.resources.postgres"
    )
)

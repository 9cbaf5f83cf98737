"""For tests that run the emulator's real PostgreSQL: skip, saying why, only when this machine
has no PostgreSQL server binaries (CI installs them through scripts/setup, so they run there);
and connect as a client inside the VNet would (TLS verified against the server's name)."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest

from nsc_reconcile.emulator.pgprocess import BIN_ENV, installed_majors

requires_postgres = pytest.mark.skipif(
    not installed_majors() and not os.environ.get(BIN_ENV),
    reason=f"no PostgreSQL server binaries in /usr/lib/postgresql/<major>/bin (run scripts/setup, "
    f"which installs Debian's postgresql, or set {BIN_ENV})",
)


def pg_connect(
    fqdn: str, to: tuple[str, int], ca_cert: str, user: str, password: str, **options: Any
) -> psycopg.Connection[Any]:
    """A TLS (verify-full) connection to ``fqdn`` at the loopback address ``to``."""
    settings: dict[str, Any] = {
        "host": fqdn,
        "hostaddr": to[0],
        "port": to[1],
        "user": user,
        "password": password,
        "dbname": "postgres",
        "sslmode": "verify-full",
        "sslrootcert": ca_cert,
        "connect_timeout": 10,
        "autocommit": True,
        **options,
    }
    return psycopg.connect(**settings)

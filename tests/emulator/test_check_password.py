"""The control call check-password: whether a PostgreSQL server's admin password (write-only
in ARM) is the one set last; the emulator keeps only a salted hash of it."""

from __future__ import annotations

import json
from typing import Any

from azure.mgmt.postgresqlflexibleservers import models as pg

from nsc_reconcile.azure import Clients
from nsc_reconcile.emulator.app import Emulator
from nsc_reconcile.emulator.worlds import RESOURCE_GROUP
from tests.conftest import control


def _server(password: str) -> pg.Server:
    return pg.Server(
        location="koreacentral",
        sku=pg.Sku(name="Standard_D2ds_v5", tier="GeneralPurpose"),
        properties=pg.ServerProperties(
            version="16", administrator_login="nscadmin", administrator_login_password=password
        ),
    )


def test_check_password_tells_whether_the_last_password_set_matches(
    emu: Emulator, clients: Clients
) -> None:
    servers = clients.postgres.servers
    servers.begin_create_or_update(RESOURCE_GROUP, "pw-pg", _server("first-Passw0rd!")).result()
    rid: Any = servers.get(RESOURCE_GROUP, "pw-pg").id

    def check(password: str) -> Any:
        return control(emu, "POST", "check-password", {"id": rid, "password": password})

    assert check("first-Passw0rd!") == {"match": True}
    assert check("another-Passw0rd!") == {"match": False}
    servers.begin_create_or_update(RESOURCE_GROUP, "pw-pg", _server("second-Passw0rd!")).result()
    assert check("first-Passw0rd!") == {"match": False}
    assert check("second-Passw0rd!") == {"match": True}
    stored = json.dumps(control(emu, "GET", f"state?id={rid}"))
    assert "Passw0rd" not in stored

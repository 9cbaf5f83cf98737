"""Azure Database for PostgreSQL flexible servers and their children (2025-08-01 spec).

Servers, databases, firewall rules and configurations are long-running PUTs answered 202 +
Azure-AsyncOperation; the server reports its FQDN, ``state`` and defaults, never the admin
password. When the emulator backs servers with real PostgreSQL (``emulator/pgserver.py``), the
kinds tell it of passwords and databases through ``attach_data_plane``; without one they are
pure ARM. Imports only kinds.base, protocol and the standard library.
"""

from __future__ import annotations

import ipaddress
import re
import weakref
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from nsc_reconcile.emulator.kinds.base import BOTH, Kind, Reply, Resource
from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

SERVER_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers"
DATABASE_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers/databases"
FIREWALL_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules"
CONFIGURATION_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers/configurations"
PEC_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers/privateEndpointConnections"
CHILD_TYPES = (DATABASE_TYPE, FIREWALL_TYPE, CONFIGURATION_TYPE, PEC_TYPE)

FQDN_SUFFIX = "postgres.database.azure.com"
# Major version -> the minor version a new server reports.
_VERSIONS = {
    "11": "22",
    "12": "22",
    "13": "18",
    "14": "15",
    "15": "10",
    "16": "6",
    "17": "5",
    "18": "1",
}
_TIERS = {"burstable", "generalpurpose", "memoryoptimized"}
_SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# Names Azure refuses for the administrator login.
_RESERVED_LOGINS = {
    "azure_superuser",
    "azure_pg_admin",
    "admin",
    "administrator",
    "root",
    "guest",
    "public",
}
_SYSTEM_DATABASES = ("postgres", "azure_maintenance", "azure_sys")

# Server parameters a new server starts with: name -> (value, dataType, allowedValues, doc).
DEFAULT_CONFIGURATIONS: dict[str, tuple[str, str, str, str]] = {
    "require_secure_connection": (
        "on",
        "Boolean",
        "on,off",
        "Whether client connections to the server are required to use some form of secure "
        "transport.",
    ),
    "ssl_min_protocol_version": (
        "TLSv1.2",
        "Enumeration",
        "TLSv1.2,TLSv1.3",
        "Sets the minimum SSL/TLS protocol version to use.",
    ),
    "timezone": ("UTC", "Enumeration", "[A-Za-z0-9/+_-]+", "Sets the time zone."),
    "max_connections": ("50", "Integer", "25-5000", "Sets the maximum number of connections."),
    "password_encryption": (
        "scram-sha-256",
        "Enumeration",
        "md5,scram-sha-256",
        "Chooses the algorithm for encrypting passwords.",
    ),
    "azure.extensions": ("", "Set", "PG_TRGM,PGCRYPTO,UUID-OSSP,VECTOR", "Allowed extensions."),
    "log_min_duration_statement": (
        "-1",
        "Integer",
        "-1-2147483647",
        "Sets the minimum execution time above which statements will be logged.",
    ),
}


class DataPlane(Protocol):
    """The real servers behind the flexible servers (``emulator/pgserver.py``)."""

    def password_set(self, server_id: str, login: str | None, password: str) -> None: ...

    def database_created(self, database_id: str) -> None: ...

    def database_deleted(self, database_id: str) -> None: ...

    def server_deleted(self, server_id: str) -> None: ...


_DATA_PLANES: weakref.WeakKeyDictionary[Any, DataPlane] = weakref.WeakKeyDictionary()


def attach_data_plane(world: World, plane: DataPlane | None) -> None:
    """Make ``plane`` hear of the world's admin passwords and databases (None: detach)."""
    if plane is None:
        _DATA_PLANES.pop(world, None)
    else:
        _DATA_PLANES[world] = plane


def data_plane(world: World) -> DataPlane | None:
    return _DATA_PLANES.get(world)


def _parent_id(rid: str) -> str:
    return rid.rsplit("/", 2)[0]


def _name(rid: str) -> str:
    return rid.rsplit("/", 1)[1]


def _require_server(world: World, rid: str) -> Resource:
    server_id = _parent_id(rid)
    server = world.get(server_id)
    if server is None:
        raise ArmError(
            404,
            "ParentResourceNotFound",
            "Can not perform requested operation on nested resource. Parent resource "
            f"'{_name(server_id)}' not found.",
        )
    return server


def _invalid(message: str) -> ArmError:
    return ArmError(400, "InvalidParameterValue", message)


def _subnet_exists(world: World, subnet_id: str) -> bool:
    """Whether the subnet exists, as its own resource or inline in its virtual network."""
    if world.get(subnet_id) is not None:
        return True
    vnet_id, _, name = subnet_id.rstrip("/").rpartition("/subnets/")
    vnet = world.get(vnet_id) if vnet_id else None
    subnets = (vnet or {}).get("properties", {}).get("subnets") or []
    return any(str(s.get("name", "")).lower() == name.lower() for s in subnets)


# Display names of the regions this project meets, as Azure's location list spells them.
_REGION_NAMES = {
    "koreacentral": "Korea Central",
    "koreasouth": "Korea South",
    "uksouth": "UK South",
    "eastus": "East US",
    "eastus2": "East US 2",
    "westus2": "West US 2",
    "westus3": "West US 3",
    "westeurope": "West Europe",
    "northeurope": "North Europe",
    "japaneast": "Japan East",
}


def display_location(location: str) -> str:
    """``uksouth`` -> ``UK South`` (unknown regions are left as given)."""
    return _REGION_NAMES.get(location.replace(" ", "").lower(), location)


class _PostgresKind(Kind):
    """What every Microsoft.DBforPostgreSQL type here shares (2025-08-01 spec): no etag,
    writes answered 202 and long-running, no provisioningState unless a type says so."""

    etag_field = False
    on_create = Reply(202, BOTH)
    on_update = Reply(202, BOTH)
    on_delete = Reply(202, BOTH)

    def accepted_body(self, verb: str, started: str) -> Any:
        # Recorded (Test_DBForPostgreSQL_FlexibleServer_20240801_CRUD): a 202 names the
        # management operation instead of showing the resource.
        action = "Upsert" if verb == "put" else "Drop"
        return {"operation": f"{action}ServerManagementOperationV2", "startTime": started}

    provisioning_state = False


class _ServerChild(_PostgresKind):
    """A child of a flexible server: no location of its own, no PATCH."""

    location_required = False
    patch_supported = False


class FlexibleServer(_PostgresKind):
    """``Microsoft.DBforPostgreSQL/flexibleServers``: one server (public-access or VNet mode)."""

    type = SERVER_TYPE

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        name = _name(rid)
        if existing is None and not _SERVER_NAME.match(name):
            raise ArmError(
                400,
                "InvalidServerName",
                f"Server name '{name}' must be 3 to 63 characters of lowercase letters, digits "
                "and hyphens, and cannot start or end with a hyphen.",
            )
        props = body.get("properties") or {}
        old = (existing or {}).get("properties", {})
        version = props.get("version")
        if version is not None and str(version) not in _VERSIONS:
            raise _invalid(f"The version '{version}' is not a supported PostgreSQL version.")
        if existing is not None and version and int(version) < int(old.get("version") or 0):
            raise _invalid("Downgrading the PostgreSQL major version is not supported.")
        tier = (body.get("sku") or {}).get("tier")
        if tier is not None and str(tier).lower() not in _TIERS:
            raise _invalid(f"The sku tier '{tier}' is not supported.")
        login = props.get("administratorLogin")
        old_login = old.get("administratorLogin")
        if existing is not None and login and old_login and login != old_login:
            raise ArmError(
                400,
                "PropertyChangeNotAllowed",
                "Changing property 'administratorLogin' is not allowed.",
            )
        if existing is None:
            password_auth = (props.get("authConfig") or {}).get("passwordAuth", "Enabled")
            if str(password_auth).lower() == "enabled" and not (
                login and props.get("administratorLoginPassword")
            ):
                raise ArmError(
                    400,
                    "EngineCredentialsNotProvided",
                    "The admin credentials are required for creating admin role while enabling "
                    "Password Authentication and must be provided.",
                )
            if login and str(login).lower() in _RESERVED_LOGINS:
                raise _invalid(f"The administrator login '{login}' is reserved.")
        network = props.get("network") or {}
        subnet = network.get("delegatedSubnetResourceId")
        if existing is not None and (subnet or None) != (
            (old.get("network") or {}).get("delegatedSubnetResourceId") or None
        ):
            raise ArmError(
                400,
                "PropertyChangeNotAllowed",
                "Changing the networking mode (property 'network.delegatedSubnetResourceId') of "
                "an existing server is not allowed.",
            )
        if subnet and not _subnet_exists(world, str(subnet)):
            raise _invalid(f"The subnet '{subnet}' does not exist.")

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        # Recorded (Test_DBForPostgreSQL_FlexibleServer_20240801_CRUD): "uksouth" sent, the
        # display name "UK South" answered.
        resource["location"] = display_location(str(resource.get("location", "")))
        # The password is write-only: accepted, never stored in what GET returns (a salted
        # hash is kept for the control call check-password).
        password = props.pop("administratorLoginPassword", None)
        if isinstance(password, str) and password:
            world.remember_password(rid, password)
            plane = data_plane(world)
            if plane is not None:  # the real server takes it at once (ALTER ROLE)
                login = props.get("administratorLogin") or old.get("administratorLogin")
                plane.password_set(rid, str(login) if login else None, password)
        props.pop("createMode", None)
        if "administratorLogin" not in props and old.get("administratorLogin"):
            props["administratorLogin"] = old["administratorLogin"]
        version = str(props.get("version") or old.get("version") or "16")
        props["version"] = version
        props["minorVersion"] = _VERSIONS[version]
        props["fullyQualifiedDomainName"] = f"{_name(rid)}.{FQDN_SUFFIX}"
        props["state"] = "Ready"
        network = props.setdefault("network", {})
        if network.get("delegatedSubnetResourceId"):
            network["publicNetworkAccess"] = "Disabled"
        else:
            network.pop("delegatedSubnetResourceId", None)
            network.pop("privateDnsZoneArmResourceId", None)
            network.setdefault("publicNetworkAccess", "Enabled")
        storage = props.setdefault("storage", {})
        storage.setdefault("storageSizeGB", 32)
        storage.setdefault("autoGrow", "Disabled")
        storage.setdefault("tier", "P4")
        storage.setdefault("iops", 120)
        storage.setdefault("type", "")
        backup = props.setdefault("backup", {})
        backup.setdefault("backupRetentionDays", 7)
        backup.setdefault("geoRedundantBackup", "Disabled")
        backup["earliestRestoreDate"] = (old.get("backup") or {}).get(
            "earliestRestoreDate"
        ) or world.now()
        ha = props.setdefault("highAvailability", {})
        ha.setdefault("mode", "Disabled")
        ha["state"] = "NotEnabled" if ha["mode"] == "Disabled" else "Healthy"
        auth = props.setdefault("authConfig", {})
        auth.setdefault("activeDirectoryAuth", "Disabled")
        auth.setdefault("passwordAuth", "Enabled")
        props.setdefault("dataEncryption", {"type": "SystemManaged"})
        props.setdefault(
            "maintenanceWindow",
            {"customWindow": "Disabled", "dayOfWeek": 0, "startHour": 0, "startMinute": 0},
        )
        props.setdefault("availabilityZone", old.get("availabilityZone") or "1")
        props["replicationRole"] = "Primary"
        props["replicaCapacity"] = 5
        props["replica"] = {"role": "Primary", "capacity": 5}
        props["privateEndpointConnections"] = _connections(world, rid, old)
        resource.setdefault("sku", {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"})

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        # A new server comes with its system databases and default server parameters.
        for db in _SYSTEM_DATABASES:
            db_id = f"{rid}/databases/{db}"
            if world.get(db_id) is None:
                world.put(
                    db_id,
                    {
                        "type": DATABASE_TYPE,
                        "properties": {"charset": "UTF8", "collation": "en_US.utf8"},
                    },
                )
        version = str(resource.get("properties", {}).get("version", "16"))
        for name in DEFAULT_CONFIGURATIONS:
            config_id = f"{rid}/configurations/{name}"
            if world.get(config_id) is None:
                world.put(config_id, _default_configuration(name, version))

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        for child_type in CHILD_TYPES:
            for child in world.children(rid, child_type):
                world.delete(child["id"])
        plane = data_plane(world)
        if plane is not None:
            plane.server_deleted(rid)


def _connections(world: World, rid: str, old: Resource) -> list[Any]:
    """The server's private endpoint connections: child resources, else what was stored."""
    children = world.children(rid, PEC_TYPE)
    if children:
        return [
            {"id": c["id"], "name": c.get("name"), "type": PEC_TYPE, "properties": c["properties"]}
            for c in children
        ]
    return list(old.get("privateEndpointConnections") or [])


def _default_configuration(name: str, version: str) -> Resource:
    value, data_type, allowed, description = DEFAULT_CONFIGURATIONS[name]
    return {
        "type": CONFIGURATION_TYPE,
        "properties": {
            "value": value,
            "description": description,
            "defaultValue": value,
            "dataType": data_type,
            "allowedValues": allowed,
            "source": "system-default",
            "isDynamicConfig": True,
            "isReadOnly": False,
            "isConfigPendingRestart": False,
            "documentationLink": f"https://www.postgresql.org/docs/{version}/runtime-config.html",
        },
    }


class Database(_ServerChild):
    """``flexibleServers/databases``: charset and collation fixed at creation."""

    type = DATABASE_TYPE
    immutable: ClassVar[dict[str, str]] = {
        "properties.charset": "PropertyChangeNotAllowed",
        "properties.collation": "PropertyChangeNotAllowed",
    }

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        _require_server(world, rid)
        props = body.get("properties") or {}
        charset = props.get("charset")
        if charset is not None and not re.match(r"^[a-zA-Z]+\w*$", str(charset)):
            raise _invalid(f"The charset '{charset}' is not valid.")
        collation = props.get("collation")
        if collation is not None and not re.match(r"^[a-zA-Z\-]+([. ]|\w)*$", str(collation)):
            raise _invalid(f"The collation '{collation}' is not valid.")

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource.setdefault("properties", {})
        props.setdefault("charset", "UTF8")
        props.setdefault("collation", "en_US.utf8")

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        plane = data_plane(world)
        if plane is not None:
            plane.database_created(rid)

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        plane = data_plane(world)
        if plane is not None:
            plane.database_deleted(rid)


class FirewallRule(_ServerChild):
    """``flexibleServers/firewallRules``: an IPv4 range allowed through the public endpoint."""

    type = FIREWALL_TYPE

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        server = _require_server(world, rid)
        if (server.get("properties", {}).get("network") or {}).get("delegatedSubnetResourceId"):
            raise ArmError(
                400,
                "FirewallRuleNotSupportedForVnetServer",
                "Firewall rules are not supported for servers with private access (VNet "
                "integration).",
            )
        props = body.get("properties") or {}
        addresses = []
        for key in ("startIpAddress", "endIpAddress"):
            value = props.get(key)
            try:
                addresses.append(ipaddress.IPv4Address(str(value)))
            except ValueError:
                raise _invalid(f"The {key} '{value}' is not a valid IPv4 address.") from None
        if addresses[0] > addresses[1]:
            raise _invalid("The startIpAddress must not be greater than the endIpAddress.")


class Configuration(_ServerChild):
    """``flexibleServers/configurations``: server parameters; only known names exist."""

    type = CONFIGURATION_TYPE
    patch_supported = True  # Configurations_Update

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        _require_server(world, rid)
        if existing is None:
            raise ArmError(
                404,
                "ConfigurationNotExists",
                f"The configuration '{_name(rid)}' does not exist for server "
                f"'{_name(_parent_id(rid))}'.",
            )
        props = body.get("properties") or {}
        value = props.get("value")
        old = existing.get("properties", {})
        if value is not None and old.get("dataType") == "Boolean" and value not in ("on", "off"):
            raise _invalid(
                f"Invalid value given for parameter '{_name(rid)}'. Specify a valid parameter "
                "value: on, off."
            )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        old = dict((existing or {}).get("properties", {}))
        props = resource.setdefault("properties", {})
        value = props.get("value", old.get("value"))
        merged = {**old, "value": value}
        merged["source"] = "system-default" if value == old.get("defaultValue") else "user-override"
        resource["properties"] = merged


class PrivateEndpointConnection(_ServerChild):
    """``flexibleServers/privateEndpointConnections``: approve/reject a private endpoint."""

    type = PEC_TYPE
    provisioning_state = True
    patch_supported = True

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        _require_server(world, rid)
        if existing is None:
            raise ArmError(
                404,
                "PrivateEndpointConnectionNotFound",
                f"The private endpoint connection '{_name(rid)}' does not exist.",
            )

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        old = (existing or {}).get("properties", {})
        props = resource.setdefault("properties", {})
        for key in ("privateEndpoint", "groupIds"):
            if key in old:
                props[key] = old[key]
        props["provisioningState"] = "Ready"

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        _refresh_server_connections(world, _parent_id(rid))

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        _refresh_server_connections(world, _parent_id(rid))


def _refresh_server_connections(world: World, server_id: str) -> None:
    server = world.get(server_id)
    if server is None:
        return
    server.setdefault("properties", {})["privateEndpointConnections"] = [
        {"id": c["id"], "name": c.get("name"), "type": PEC_TYPE, "properties": c["properties"]}
        for c in world.children(server_id, PEC_TYPE)
    ]
    world.put(server_id, server)

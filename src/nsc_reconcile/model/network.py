"""Private connectivity: private endpoints, private DNS zones and VNet links, NSG rules.

Private endpoints go in a data-layer subnet and register their A record through a DNS zone
group; NSG rules open only the Databricks/AKS -> endpoint paths the plan names.
"""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from nsc_reconcile import kinds
from nsc_reconcile.model.base import PRIVATE_ONLY, Model, Reference, Resource, policy_violation

SHARED_DESCRIPTION = (
    "Serves several environments (e.g. one private DNS zone for dev and prod in one resource "
    "group): every environment that uses it must declare `shared: true`. It is then tagged "
    "`nsc-environment: shared` and gets only its own tags (not the state-wide ones). Without "
    "it, a resource owned by another environment is blocked, never retagged."
)


def split_address(text: str) -> tuple[str, str] | None:
    """``kind/name`` -> (kind, name), or None when not of that shape."""
    if "/" not in text:
        return None
    kind, _, name = text.partition("/")
    if not re.fullmatch(r"[a-z_]+", kind) or not name:
        return None
    return kind, name


class DnsZoneGroup(Model):
    """The endpoint's private DNS zone group: Azure writes the A record into these zones."""

    name: str = Field(default="default", description="Zone group name.")
    zones: list[str] = Field(
        min_length=1, description="Private DNS zones (`private_dns_zone/<name>`) by name."
    )


class PrivateEndpoint(Resource):
    """A private endpoint to an OpenAI account or PostgreSQL server."""

    kind = "private_endpoint"

    target: str = Field(
        description="The resource it connects to: `openai_account/<name>` or "
        "`postgresql_server/<name>`."
    )
    group_id: str = Field(
        description="Private link sub-resource: `account` (OpenAI), `postgresqlServer` (PG)."
    )
    subnet: str = Field(description="Subnet as `<vnet>/<subnet>` (an existing subnet).")
    approval: Literal["automatic", "manual"] = Field(
        default="automatic",
        description="`automatic` uses privateLinkServiceConnections (approved at once when "
        "the caller may approve); `manual` leaves the connection Pending for the owner.",
    )
    dns_zone_group: DnsZoneGroup = Field(description="Zones that receive the A record.")
    custom_network_interface_name: str | None = Field(
        default=None, description="Name of the endpoint's NIC, if not Azure's default."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags.")
    depends_on: list[str] = Field(default_factory=list, description="Extra `kind/name` edges.")

    @field_validator("target")
    @classmethod
    def _target_kind(cls, value: str) -> str:
        parsed = split_address(value)
        # What each target supports is its kind's private-link facts (nsc_reconcile.kinds).
        if parsed is None or parsed[0] not in kinds.private_link_kinds():
            raise PydanticCustomError(
                "reference",
                "expected `openai_account/<name>` or `postgresql_server/<name>`, got '{value}'",
                {"value": value},
            )
        return value

    @model_validator(mode="after")
    def _group_matches_target(self) -> Self:
        kind = self.target.partition("/")[0]
        groups = kinds.private_link_groups(kind)
        if self.group_id not in groups:
            raise PydanticCustomError(
                "group_id",
                "group_id '{group}' is not valid for a {kind}; expected {expected}",
                {"group": self.group_id, "kind": kind, "expected": " or ".join(groups)},
            )
        return self

    def references(self) -> list[Reference]:
        refs = [
            Reference(("target",), self.target),
            Reference(("subnet",), f"subnet/{self.subnet}"),
        ]
        refs += [
            Reference(("dns_zone_group", "zones", i), f"private_dns_zone/{zone}")
            for i, zone in enumerate(self.dns_zone_group.zones)
        ]
        refs += [Reference(("depends_on", i), d) for i, d in enumerate(self.depends_on)]
        return refs


class PrivateDnsZone(Resource):
    """A private DNS zone we create (location `global`)."""

    kind = "private_dns_zone"

    tags: dict[str, str] = Field(default_factory=dict, description="Tags.")
    shared: bool = Field(default=False, description=SHARED_DESCRIPTION)

    @field_validator("name")
    @classmethod
    def _privatelink(cls, value: str) -> str:
        if not value.startswith("privatelink."):
            raise PydanticCustomError(
                "zone_name",
                "private endpoint zones are named `privatelink.<service zone>` "
                "(e.g. privatelink.openai.azure.com), got '{value}'",
                {"value": value},
            )
        return value


class PrivateDnsZoneLink(Resource):
    """A virtual network link of a private DNS zone (new or existing zone)."""

    kind = "private_dns_zone_link"

    zone: str = Field(description="Zone name (`private_dns_zone/<name>`, new or existing).")
    virtual_network: str = Field(description="VNet name (`virtual_network/<name>`).")
    registration_enabled: Literal[False] = Field(
        default=False,
        description="Auto-registration of VM records; always false for privatelink zones.",
    )
    resolution_policy: Literal["Default", "NxDomainRedirect"] = Field(
        default="Default", description="Fallback to internet resolution on NXDOMAIN or not."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags.")
    shared: bool = Field(default=False, description=SHARED_DESCRIPTION)

    @property
    def key(self) -> str:
        return f"{self.zone}/{self.name}"

    def references(self) -> list[Reference]:
        return [
            Reference(("zone",), f"private_dns_zone/{self.zone}"),
            Reference(("virtual_network",), f"virtual_network/{self.virtual_network}"),
        ]


# Service tags a rule end may name (Azure's meaning: VirtualNetwork = the VNet's address space,
# peered VNets and connected on-premises ranges; AzureLoadBalancer = 168.63.129.16; `*` = any).
SERVICE_TAGS = ("VirtualNetwork", "AzureLoadBalancer", "Internet", "*")
# Sources an Allow rule must never name: they open the path to the public internet.
PUBLIC_TAGS = frozenset({"Internet", "*"})


class RuleEnds(Model):
    """One side of an NSG rule; exactly one field is given."""

    subnets: list[str] | None = Field(
        default=None, description="Subnets as `<vnet>/<subnet>`; their address prefixes."
    )
    private_endpoints: list[str] | None = Field(
        default=None, description="Private endpoints by name; their private IPs (/32)."
    )
    address_prefixes: list[str] | None = Field(
        default=None, description="Literal CIDR prefixes (private ranges only)."
    )
    service_tag: Literal["VirtualNetwork", "AzureLoadBalancer", "Internet", "*"] | None = Field(
        default=None,
        description="An Azure service tag, e.g. `VirtualNetwork` for a Deny rule closing the "
        "rest of the VNet (the default AllowVnetInBound rule opens it). `Internet` and `*` are "
        "allowed as the source of Deny rules only.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        names = ("subnets", "private_endpoints", "address_prefixes", "service_tag")
        given = [n for n in names if getattr(self, n)]
        if len(given) != 1:
            raise PydanticCustomError(
                "rule_end",
                "exactly one of subnets, private_endpoints, address_prefixes, service_tag is "
                "expected (got {given})",
                {"given": ", ".join(given) or "none"},
            )
        return self

    @field_validator("address_prefixes")
    @classmethod
    def _private_prefixes(cls, value: list[str] | None) -> list[str] | None:
        for prefix in value or []:
            if prefix in {"*", "0.0.0.0/0", "Internet", "any", "Any"}:
                raise policy_violation(PRIVATE_ONLY, f"{prefix!r} opens the rule to the internet")
            if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?", prefix):
                raise PydanticCustomError(
                    "cidr", "expected an IPv4 CIDR prefix, got '{value}'", {"value": prefix}
                )
        return value

    def references(self, base: tuple[str, ...]) -> list[Reference]:
        refs = [
            Reference((*base, "subnets", i), f"subnet/{s}")
            for i, s in enumerate(self.subnets or [])
        ]
        refs += [
            Reference((*base, "private_endpoints", i), f"private_endpoint/{p}")
            for i, p in enumerate(self.private_endpoints or [])
        ]
        return refs


class NsgRule(Resource):
    """A security rule added to an existing NSG (managed as a child, never replacing others)."""

    kind = "nsg_rule"

    nsg: str = Field(description="The NSG (`network_security_group/<name>`).")
    priority: int = Field(ge=100, le=4096, description="100-4096, unique per direction.")
    direction: Literal["Inbound", "Outbound"] = Field(description="Traffic direction.")
    access: Literal["Allow", "Deny"] = Field(default="Allow", description="Allow or Deny.")
    protocol: Literal["Tcp", "Udp", "Icmp", "*"] = Field(default="Tcp", description="Protocol.")
    source: RuleEnds = Field(description="Where traffic comes from.")
    destination: RuleEnds = Field(description="Where traffic goes.")
    destination_ports: list[str] = Field(
        min_length=1,
        description="Ports or ranges, e.g. `443`, `5432`, `8000-8100`; `*` (every port) in "
        "Deny rules only.",
    )
    description: str | None = Field(
        default=None,
        max_length=116,
        description="Rule text (at most 116 characters: Azure allows 140, and the rule's "
        "description ends with nsc-reconcile's mark ` [nsc-reconcile:<env>]`).",
    )

    @field_validator("source")
    @classmethod
    def _private_source(cls, value: RuleEnds, info: ValidationInfo) -> RuleEnds:
        if value.service_tag in PUBLIC_TAGS and info.data.get("access", "Allow") != "Deny":
            raise policy_violation(
                PRIVATE_ONLY,
                f"an Allow rule from {value.service_tag!r} opens the path to the internet; "
                "only a Deny rule may name it",
            )
        return value

    @field_validator("destination_ports")
    @classmethod
    def _ports(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for port in value:
            if port == "*":
                if info.data.get("access", "Allow") == "Deny":
                    continue
                raise policy_violation(
                    PRIVATE_ONLY, "name the ports the path needs (443, 5432), not `*`"
                )
            bounds = port.split("-")
            if not all(b.isdigit() and 1 <= int(b) <= 65535 for b in bounds) or len(bounds) > 2:
                raise PydanticCustomError(
                    "port", "expected a port 1-65535 or a range a-b, got '{value}'", {"value": port}
                )
        return value

    @property
    def key(self) -> str:
        return f"{self.nsg}/{self.name}"

    def references(self) -> list[Reference]:
        return [
            Reference(("nsg",), f"network_security_group/{self.nsg}"),
            *self.source.references(("source",)),
            *self.destination.references(("destination",)),
        ]

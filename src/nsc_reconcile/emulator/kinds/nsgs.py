"""Microsoft.Network security groups and their rules: rule checks, the six default rules,
and the NSG's inline ``securityRules`` kept in sync with the child rule resources.
Imports only kinds.base, kinds.netcommon, protocol and the standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nsc_reconcile.emulator.kinds.base import Kind, Resource
from nsc_reconcile.emulator.kinds.netcommon import (
    NETWORK_CREATE,
    NETWORK_DELETE,
    NETWORK_UPDATE,
    NSG_TYPE,
    RULE_TYPE,
    inline_child,
    mirror_child,
    name_of,
    parent_of,
)
from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

_DEFAULT_RULES = [
    ("AllowVnetInBound", "Inbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork",
     "Allow inbound traffic from all VMs in VNET"),
    ("AllowAzureLoadBalancerInBound", "Inbound", "Allow", 65001, "AzureLoadBalancer", "*",
     "Allow inbound traffic from azure load balancer"),
    ("DenyAllInBound", "Inbound", "Deny", 65500, "*", "*", "Deny all inbound traffic"),
    ("AllowVnetOutBound", "Outbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork",
     "Allow outbound traffic from all VMs to all VMs in VNET"),
    ("AllowInternetOutBound", "Outbound", "Allow", 65001, "*", "Internet",
     "Allow outbound traffic from all VMs to Internet"),
    ("DenyAllOutBound", "Outbound", "Deny", 65500, "*", "*", "Deny all outbound traffic"),
]  # fmt: skip


def _check_rule(rid: str, props: dict[str, Any]) -> None:
    for key in ("protocol", "access", "direction"):
        if not props.get(key):
            raise ArmError(
                400,
                "SecurityRuleParameterMissing",
                f"Security rule {name_of(rid)} is missing required property '{key}'.",
            )
    priority = props.get("priority")
    if not isinstance(priority, int) or not 100 <= priority <= 4096:
        raise ArmError(
            400,
            "SecurityRuleInvalidPriority",
            f"Security rule has invalid Priority. Value provided: {priority} Allowed values are "
            "from 100 to 4096.",
        )


def _check_conflicts(rules: list[tuple[str, dict[str, Any]]]) -> None:
    """No two rules with one priority and direction (Azure: SecurityRuleConflict)."""
    seen: dict[tuple[int, str], str] = {}
    for name, props in rules:
        key = (int(props["priority"]), str(props["direction"]).lower())
        other = seen.get(key)
        if other is not None and other.lower() != name.lower():
            raise ArmError(
                400,
                "SecurityRuleConflict",
                f"Security rule {other} conflicts with rule {name}. Rules cannot have the same "
                "Priority and Direction. To learn more, see aka.ms/nsgrules.",
            )
        seen[key] = name


def _default_rules(nsg_id: str, etag: str) -> list[Any]:
    rules = []
    for name, direction, access, priority, source, destination, text in _DEFAULT_RULES:
        rules.append(
            {
                "name": name,
                "id": f"{nsg_id}/defaultSecurityRules/{name}",
                "etag": etag,
                "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
                "properties": {
                    "provisioningState": "Succeeded",
                    "description": text,
                    "protocol": "*",
                    "sourcePortRange": "*",
                    "destinationPortRange": "*",
                    "sourceAddressPrefix": source,
                    "destinationAddressPrefix": destination,
                    "access": access,
                    "priority": priority,
                    "direction": direction,
                    "sourcePortRanges": [],
                    "destinationPortRanges": [],
                    "sourceAddressPrefixes": [],
                    "destinationAddressPrefixes": [],
                },
            }
        )
    return rules


class NetworkSecurityGroup(Kind):
    """An NSG. Inline ``securityRules`` replace the whole rule set (as on Azure); each rule is
    also stored as a child resource, and the six default rules are always shown."""

    type = NSG_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    on_create = NETWORK_CREATE
    on_update = NETWORK_UPDATE
    on_delete = NETWORK_DELETE

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        rules = (body.get("properties") or {}).get("securityRules") or []
        named = []
        for rule in rules:
            rule_id = f"{rid}/securityRules/{rule.get('name', '')}"
            props = rule.get("properties") or {}
            _check_rule(rule_id, props)
            named.append((str(rule.get("name", "")), props))
        _check_conflicts(named)

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        etag = str(resource.get("etag") or world.etag_for(NSG_TYPE))
        props["resourceGuid"] = old.get("resourceGuid") or world.new_guid()
        props["securityRules"] = [
            inline_child(rid, "securityRules", RULE_TYPE, rule, etag)
            for rule in props.get("securityRules") or []
        ]
        props["defaultSecurityRules"] = _default_rules(rid, etag)
        if old.get("subnets"):
            props["subnets"] = old["subnets"]

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        rules = resource.get("properties", {}).get("securityRules") or []
        kept = set()
        for rule in rules:
            kept.add(str(rule["id"]).lower())
            world.put(str(rule["id"]), rule)
        for child in world.children(rid, RULE_TYPE):
            if str(child["id"]).lower() not in kept:
                world.delete(str(child["id"]))


class SecurityRule(Kind):
    """One NSG rule as a child resource; mirrored into the NSG's ``securityRules``."""

    type = RULE_TYPE
    system_data = False  # not in Microsoft.Network's REST schemas
    on_create = NETWORK_CREATE
    on_update = NETWORK_UPDATE
    on_delete = NETWORK_DELETE
    effects_at_once = True  # shown in the parent's list while it provisions
    gone_code = "NotFound"  # recorded: the Network RP's 404 after a delete
    location_required = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        props = body.get("properties") or {}
        _check_rule(rid, props)
        siblings = [
            (str(r["name"]), r.get("properties") or {})
            for r in world.children(parent_of(rid), RULE_TYPE)
            if str(r["name"]).lower() != name_of(rid).lower()
        ]
        _check_conflicts([*siblings, (name_of(rid), props)])

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        resource.pop("location", None)
        props = resource["properties"]
        for key in (
            "sourcePortRanges",
            "destinationPortRanges",
            "sourceAddressPrefixes",
            "destinationAddressPrefixes",
        ):
            props.setdefault(key, [])

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        mirror_child(world, rid, resource, "securityRules", NSG_TYPE)

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        mirror_child(world, rid, None, "securityRules", NSG_TYPE)

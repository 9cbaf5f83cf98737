"""Helpers the Microsoft.Network kinds share: type names, id parsing, references, inline
children and the one helper that mirrors a child into its parent's inline list.
Imports only kinds.base, protocol and the standard library.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from nsc_reconcile.emulator.kinds.base import ASYNC_OPERATION, BOTH, Reply, Resource
from nsc_reconcile.emulator.protocol import ArmError

# How the Network resource provider answers writes (recorded: Test_Networking_PrivateEndpoint_CRUD,
# _NetworkSecurityGroup_CRUD, _VirtualNetwork_20240301_CRUD): a create is 201 with
# Azure-AsyncOperation only and the resource "Updating"; an update is 200, "Updating", except a
# tags-only one that already says Succeeded; a delete is 202 with both headers and no body.
NETWORK_CREATE = Reply(201, ASYNC_OPERATION, "Updating")
NETWORK_UPDATE = Reply(
    200, ASYNC_OPERATION, "Updating", tags_only=Reply(200, ASYNC_OPERATION, "Succeeded")
)
NETWORK_DELETE = Reply(202, BOTH)

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

VNET_TYPE = "Microsoft.Network/virtualNetworks"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
NSG_TYPE = "Microsoft.Network/networkSecurityGroups"
RULE_TYPE = "Microsoft.Network/networkSecurityGroups/securityRules"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
PE_TYPE = "Microsoft.Network/privateEndpoints"


def name_of(rid: str) -> str:
    return rid.rstrip("/").rsplit("/", 1)[-1]


def parent_of(rid: str) -> str:
    return rid.rstrip("/").rsplit("/", 2)[0]


def same_id(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def ref_id(obj: Any) -> str | None:
    """The ``id`` of a ``{"id": ...}`` reference, or None."""
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        return str(obj["id"])
    return None


def missing_reference(ref: str, by: str) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceReference",
        f"Resource {ref} referenced by resource {by} was not found. Please make sure that the "
        "referenced resource exists, and that both resources are in the same region.",
    )


def inline_child(
    parent_id: str, segment: str, child_type: str, item: dict[str, Any], etag: str
) -> Any:
    """An inline child (subnet, rule, connection) as ARM shows it inside its parent."""
    name = str(item.get("name", ""))
    props = copy.deepcopy(item.get("properties") or {})
    props["provisioningState"] = "Succeeded"
    return {
        "name": name,
        "id": f"{parent_id}/{segment}/{name}",
        "etag": etag,
        "type": child_type,
        "properties": props,
    }


def mirror_child(
    world: World, child_id: str, child: Resource | None, list_key: str, parent_type: str
) -> None:
    """Mirror one child resource (or its removal, when ``child`` is None) into the parent's
    inline ``list_key`` list, keeping its position, and give the parent a new etag."""
    parent_id = parent_of(child_id)
    parent = world.get(parent_id)
    if parent is None:
        return
    props = parent.setdefault("properties", {})
    old = props.get(list_key) or []
    listed = [c for c in old if not same_id(c.get("id"), child_id)]
    if child is not None:
        entry = {k: child[k] for k in ("name", "id", "etag", "type", "properties") if k in child}
        position = next(
            (i for i, c in enumerate(old) if same_id(c.get("id"), child_id)), len(listed)
        )
        listed.insert(position, entry)
    props[list_key] = listed
    parent["etag"] = world.etag_for(parent_type)
    world.put(parent_id, parent)

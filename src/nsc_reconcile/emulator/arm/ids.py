"""ARM resource id and request path parsing, written once for every resource type.

Splits ``/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{child}/{name}]``
into scope, namespace, type segments and names; pure functions, no state.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ParsedPath", "normalize_location", "parent_id", "parse_path", "resource_type_of"]


@dataclass(frozen=True)
class ParsedPath:
    """What an ARM request path addresses.

    ``what`` is one of: ``subscription``, ``resource_groups`` (the RG collection),
    ``resource_group``, ``resource``, ``collection`` (list of ``arm_type`` under ``scope`` or,
    for child types, under ``parent``), ``action`` (POST ``{resource}/{action}``),
    ``operation`` (an LRO status URL), ``unknown``.
    """

    what: str
    subscription: str = ""
    resource_group: str | None = None
    namespace: str | None = None
    types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    scope: str = ""  # the id prefix before /providers (a subscription, RG or resource id)
    action: str | None = None
    operation_id: str | None = None
    operation_kind: str | None = None  # "operations" (async status) or "operationResults"

    @property
    def arm_type(self) -> str:
        """``Namespace/type[/child...]`` as spelled in the request (match case-insensitively)."""
        return "/".join([self.namespace or "", *self.types])

    @property
    def resource_id(self) -> str:
        """The id of the addressed resource (for ``resource``/``action``), as requested."""
        pairs = [seg for pair in zip(self.types, self.names, strict=False) for seg in pair]
        return "/".join([self.scope, "providers", self.namespace or "", *pairs])

    @property
    def parent_id(self) -> str:
        """The resource's parent: the previous type/name pair, or the scope for top-level ones."""
        if len(self.types) <= 1:
            return self.scope
        pairs = [seg for pair in zip(self.types[:-1], self.names, strict=False) for seg in pair]
        return "/".join([self.scope, "providers", self.namespace or "", *pairs])


def _segments(path: str) -> list[str]:
    return [seg for seg in path.split("/") if seg]


def parse_path(path: str, method: str = "GET") -> ParsedPath:
    """Classify an ARM path. Never raises; unrecognised shapes give ``what="unknown"``."""
    seg = _segments(path)
    if len(seg) < 2 or seg[0].lower() != "subscriptions":
        return ParsedPath("unknown")
    sub = seg[1]
    if len(seg) == 2:
        return ParsedPath("subscription", subscription=sub)
    third = seg[2].lower()
    if third == "resourcegroups":
        if len(seg) == 3:
            return ParsedPath("resource_groups", subscription=sub)
        rg = seg[3]
        scope = f"/subscriptions/{sub}/resourceGroups/{rg}"
        if len(seg) == 4:
            return ParsedPath("resource_group", subscription=sub, resource_group=rg, scope=scope)
        return _provider_part(seg, 4, sub, rg, method)
    if third == "providers":
        rest = [s.lower() for s in seg[3:]]
        # LRO status: /subscriptions/{s}/providers/{ns}/locations/{loc}/operations/{id}
        if (
            len(rest) == 5
            and rest[1] == "locations"
            and rest[3] in ("operations", "operationresults")
        ):
            return ParsedPath(
                "operation",
                subscription=sub,
                namespace=seg[3],
                operation_id=seg[7],
                operation_kind="operations" if rest[3] == "operations" else "operationResults",
            )
        return _provider_part(seg, 2, sub, None, method)
    return ParsedPath("unknown", subscription=sub)


def _provider_part(seg: list[str], start: int, sub: str, rg: str | None, method: str) -> ParsedPath:
    # The LAST "providers" segment names the type (extension resources nest under a resource).
    idx = max((i for i in range(start, len(seg)) if seg[i].lower() == "providers"), default=-1)
    if idx < 0 or idx + 2 > len(seg):
        return ParsedPath("unknown", subscription=sub, resource_group=rg)
    scope = "/" + "/".join(seg[:idx])
    namespace = seg[idx + 1]
    rest = seg[idx + 2 :]
    if not rest:
        return ParsedPath("unknown", subscription=sub, resource_group=rg)
    if len(rest) % 2 == 0:
        return ParsedPath(
            "resource",
            subscription=sub,
            resource_group=rg,
            namespace=namespace,
            types=tuple(rest[0::2]),
            names=tuple(rest[1::2]),
            scope=scope,
        )
    if method.upper() == "POST" and len(rest) >= 3:
        body = rest[:-1]
        return ParsedPath(
            "action",
            subscription=sub,
            resource_group=rg,
            namespace=namespace,
            types=tuple(body[0::2]),
            names=tuple(body[1::2]),
            scope=scope,
            action=rest[-1],
        )
    return ParsedPath(
        "collection",
        subscription=sub,
        resource_group=rg,
        namespace=namespace,
        types=tuple(rest[0::2]),
        names=tuple(rest[1::2]),
        scope=scope,
    )


def resource_type_of(rid: str) -> str:
    """The ARM type of a resource id (``Microsoft.Resources/resourceGroups`` for an RG)."""
    parsed = parse_path(rid, "PUT")
    if parsed.what == "resource_group":
        return "Microsoft.Resources/resourceGroups"
    if parsed.what != "resource":
        raise ValueError(f"not an ARM resource id: {rid!r}")
    return parsed.arm_type


def parent_id(rid: str) -> str:
    """The id of the resource's parent (a resource, a resource group or a subscription)."""
    parsed = parse_path(rid, "PUT")
    if parsed.what == "resource_group":
        return f"/subscriptions/{parsed.subscription}"
    if parsed.what != "resource":
        raise ValueError(f"not an ARM resource id: {rid!r}")
    return parsed.parent_id


def normalize_location(location: str) -> str:
    """Azure's canonical region form: ``Korea Central`` -> ``koreacentral``."""
    return location.replace(" ", "").lower()

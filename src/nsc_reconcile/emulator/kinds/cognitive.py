"""Azure OpenAI / AI Services accounts and their model deployments (2025-09-01 semantics).

Server fields (endpoint, endpoints, internalId, dateCreated), the immutable and globally unique
``customSubDomainName``, API keys (``listKeys``/``regenerateKey``) and Azure's 409
``RequestConflict`` for overlapping writes under one account. Imports only kinds.base/stdlib.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import weakref
from typing import TYPE_CHECKING, Any

from nsc_reconcile.emulator.kinds.base import ASYNC_OPERATION, Kind, Reply, Resource
from nsc_reconcile.emulator.protocol import ArmError

if TYPE_CHECKING:
    from nsc_reconcile.emulator.arm import World

ACCOUNT_TYPE = "Microsoft.CognitiveServices/accounts"
DEPLOYMENT_TYPE = "Microsoft.CognitiveServices/accounts/deployments"
_TERMINAL = {"succeeded", "failed", "canceled"}
_DEPLOYMENT_SKUS = {
    "standard",
    "globalstandard",
    "datazonestandard",
    "provisionedmanaged",
    "globalprovisionedmanaged",
    "datazoneprovisionedmanaged",
    "globalbatch",
    "datazonebatch",
    "developertier",
}

# Regenerated keys per world and account internalId; other keys derive from the internalId.
_regenerated: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], str]] = (
    weakref.WeakKeyDictionary()
)


def _parent_id(rid: str) -> str:
    return rid.rsplit("/", 2)[0]


def _in_progress(resource: Resource | None) -> bool:
    if resource is None:
        return False
    state = str(resource.get("properties", {}).get("provisioningState", "Succeeded"))
    return state.lower() not in _TERMINAL


def _region_host(location: str) -> str:
    return location.replace(" ", "").lower()


def _endpoints(kind: str, subdomain: str | None, location: str) -> tuple[str, dict[str, str]]:
    """The account's ``endpoint`` and ``endpoints`` map as Azure reports them."""
    if not subdomain:
        regional = f"https://{_region_host(location)}.api.cognitive.microsoft.com/"
        return regional, {"Token Service API": regional}
    openai = f"https://{subdomain}.openai.azure.com/"
    openai_apis = {
        "OpenAI Language Model Instance API": openai,
        "OpenAI Dall-E API": openai,
        "OpenAI Whisper API": openai,
        "OpenAI Model Scaleset API": openai,
        "OpenAI Realtime API": openai,
        "OpenAI Sora API": openai,
    }
    if kind.lower() == "openai":
        return openai, {**openai_apis, "Token Service API": openai}
    services = f"https://{subdomain}.cognitiveservices.azure.com/"
    foundry = f"https://{subdomain}.services.ai.azure.com/"
    return services, {
        **openai_apis,
        "AI Foundry API": foundry,
        "Azure AI Model Inference API": f"{foundry}models",
        "Content Safety": services,
        "Token Service API": services,
    }


class CognitiveAccount(Kind):
    """``Microsoft.CognitiveServices/accounts`` (kinds OpenAI, AIServices, ...)."""

    type = ACCOUNT_TYPE
    # Recorded (Test_CognitiveServices_Account_CRUD, _20250601_CRUD): create 201 "Creating" with
    # Azure-AsyncOperation only; delete synchronous 200; the operation's status reads
    # Creating/Updating while it runs. The same tags-only update was long-running ("Accepted")
    # for an AIServices account and a synchronous 200 for an OpenAI one: see ``reply``.
    on_create = Reply(201, ASYNC_OPERATION, "Creating")
    on_update = Reply(200, ASYNC_OPERATION, "Accepted", tags_only=Reply(200))
    on_delete = Reply(200)
    running_status_is_state = True

    def reply(self, resource: Resource, existing: Resource | None) -> Reply:
        if existing is not None and str(resource.get("kind", "")).lower() == "aiservices":
            return self.on_update
        return super().reply(resource, existing)

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        if not body.get("kind"):
            raise ArmError(400, "InvalidParameter", "The account kind is required.")
        if not (body.get("sku") or {}).get("name"):
            raise ArmError(400, "InvalidParameter", "The account sku is required.")
        props = body.get("properties") or {}
        new_sub = props.get("customSubDomainName")
        old_sub = (existing or {}).get("properties", {}).get("customSubDomainName")
        if old_sub and (new_sub or "").lower() != old_sub.lower():
            # Azure refuses to change (or drop) a subdomain once it is set.
            raise ArmError(
                400,
                "CustomSubDomainNameCannotBeChanged",
                f"The customSubDomainName '{old_sub}' of account '{rid.rsplit('/', 1)[1]}' "
                "cannot be changed once it is set.",
            )
        if new_sub and not old_sub:
            for other in world.list_by_type(ACCOUNT_TYPE):
                if other["id"].lower() == rid.lower():
                    continue
                taken = other.get("properties", {}).get("customSubDomainName") or ""
                if taken.lower() == new_sub.lower():
                    raise ArmError(
                        400,
                        "CustomDomainInUse",
                        f"Please pick a different name. The subdomain name '{new_sub}' is not "
                        "available as it's already used by a resource.",
                    )
        if existing is not None and any(
            _in_progress(d) for d in world.children(rid, DEPLOYMENT_TYPE)
        ):
            raise _conflict(rid)

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        props = resource.setdefault("properties", {})
        old = (existing or {}).get("properties", {})
        props["internalId"] = old.get("internalId") or secrets.token_hex(16)
        props["dateCreated"] = old.get("dateCreated") or world.now()
        props.setdefault("publicNetworkAccess", "Enabled")
        props["privateEndpointConnections"] = old.get("privateEndpointConnections", [])
        props["endpoint"], props["endpoints"] = _endpoints(
            str(resource.get("kind", "")),
            props.get("customSubDomainName"),
            str(resource.get("location", "")),
        )
        props["isMigrated"] = False
        props.setdefault("provisioningState", "Succeeded")

    def action(self, world: World, rid: str, name: str, body: Any) -> Any:
        account = world.get(rid)
        if account is None:
            raise ArmError(404, "ResourceNotFound", f"The resource '{rid}' was not found.")
        if name.lower() == "listkeys":
            _require_local_auth(account)
            return {"key1": _key(world, account, "key1"), "key2": _key(world, account, "key2")}
        if name.lower() == "regeneratekey":
            _require_local_auth(account)
            key_name = str((body or {}).get("keyName", "")).lower()
            if key_name not in ("key1", "key2"):
                raise ArmError(400, "InvalidParameter", "keyName must be Key1 or Key2.")
            internal_id = account["properties"]["internalId"]
            _regenerated.setdefault(world, {})[(internal_id, key_name)] = secrets.token_hex(16)
            return {"key1": _key(world, account, "key1"), "key2": _key(world, account, "key2")}
        return super().action(world, rid, name, body)


def _require_local_auth(account: Resource) -> None:
    if account.get("properties", {}).get("disableLocalAuth"):
        raise ArmError(400, "BadRequest", "Failed to list key. disableLocalAuth is set to be true")


def _key(world: World, account: Resource, key_name: str) -> str:
    """A 32-hex key, stable per account until regenerated (derived from internalId)."""
    internal_id = str(account["properties"]["internalId"])
    regenerated = _regenerated.get(world, {}).get((internal_id, key_name))
    if regenerated:
        return regenerated
    return hashlib.sha256(f"{internal_id}:{key_name}".encode()).hexdigest()[:32]


def account_keys(world: World, account: Resource) -> tuple[str, str]:
    """The account's current key1 and key2, as ``listKeys`` answers them (its data plane
    accepts either; ``regenerateKey`` changes one)."""
    return _key(world, account, "key1"), _key(world, account, "key2")


# Per world: until when (monotonic) each account is still carrying out a deployment write.
_busy_until: weakref.WeakKeyDictionary[World, dict[str, tuple[float, str]]] = (
    weakref.WeakKeyDictionary()
)


def _mark_busy(world: World, deployment_id: str) -> None:
    """The account carries out a deployment write for the type's duration after answering."""
    until = time.monotonic() + world.lro_duration(DEPLOYMENT_TYPE)
    account_id = _parent_id(deployment_id).lower()
    _busy_until.setdefault(world, {})[account_id] = (until, deployment_id.lower())


def _conflict(account_id: str) -> ArmError:
    return ArmError(
        409,
        "RequestConflict",
        f"Another operation is being performed on the parent resource '{account_id}'. "
        "Please try again later.",
    )


class CognitiveDeployment(Kind):
    """``Microsoft.CognitiveServices/accounts/deployments``: one model deployment."""

    type = DEPLOYMENT_TYPE
    # Recorded (Test_CognitiveServices_Deployment_CRUD): create 201, update 200, delete 200, all
    # synchronous; a read after delete is the provider's 404 NotFound.
    on_create = Reply(201)
    on_update = Reply(200)
    on_delete = Reply(200)
    gone_code = "NotFound"
    gone_message = "Specified resource '{id}' cannot be found."
    location_required = False

    def validate(self, world: World, rid: str, body: Resource, existing: Resource | None) -> None:
        account_id = _parent_id(rid)
        account = world.get(account_id)
        if account is None:
            raise ArmError(
                404,
                "ParentResourceNotFound",
                "Can not perform requested operation on nested resource. Parent resource "
                f"'{account_id.rsplit('/', 1)[1]}' not found.",
            )
        # Azure serializes writes under one account: any unfinished operation on the account,
        # or a deployment write still being carried out after its synchronous answer, answers
        # 409 RequestConflict (azurerm#22607, bicep#11211).
        # The same deployment's own update right after its create was accepted (recorded:
        # Test_CognitiveServices_Deployment_CRUD #9-#11); a sibling's write conflicts.
        busy_until, writer = _busy_until.get(world, {}).get(account_id.lower(), (0.0, ""))
        sibling_busy = time.monotonic() < busy_until and writer != rid.lower()
        if _in_progress(account) or sibling_busy:
            raise _conflict(account_id)
        model = (body.get("properties") or {}).get("model") or {}
        if not model.get("format") or not model.get("name"):
            raise ArmError(
                400,
                "InvalidResourceProperties",
                "The deployment requires properties.model.format and properties.model.name.",
            )
        sku = body.get("sku") or {}
        if str(sku.get("name", "")).lower() not in _DEPLOYMENT_SKUS:
            raise ArmError(
                400,
                "InvalidResourceProperties",
                f"The specified SKU '{sku.get('name')}' for model '{model.get('name')}' is "
                "not supported.",
            )
        capacity = sku.get("capacity", 1)
        if not isinstance(capacity, int) or capacity < 1:
            raise ArmError(
                400, "InvalidCapacity", f"The capacity '{capacity}' should be a positive integer."
            )

    def after_write(self, world: World, rid: str, resource: Resource) -> None:
        _mark_busy(world, rid)

    def after_delete(self, world: World, rid: str, resource: Resource) -> None:
        _mark_busy(world, rid)

    def populate(
        self, world: World, rid: str, resource: Resource, existing: Resource | None
    ) -> None:
        sku = resource.setdefault("sku", {})
        sku.setdefault("capacity", 1)
        props = resource.setdefault("properties", {})
        model = props.setdefault("model", {})
        # Azure picks the model's default version when none is given.
        model.setdefault("version", "1")
        props.setdefault("versionUpgradeOption", "OnceNewDefaultVersionAvailable")
        props.setdefault("raiPolicyName", "Microsoft.DefaultV2")
        props["currentCapacity"] = sku["capacity"]
        props.setdefault("provisioningState", "Succeeded")

"""Writing one Key Vault secret through the plane ``secrets.write_path`` says (data plane, ARM
control plane, or data plane falling back to ARM when the vault is private), pinning each value
it sets in ``nsc-version``. Used by the secret reconciler and the MAC key; never logs a value.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from typing import Any

from nsc_reconcile.model.secrets import Generate
from nsc_reconcile.resources.base import Context, sdk_model
from nsc_reconcile.retry import error_code, status_of

VERSION_TAG = "nsc-version"  # the version our last value write made

_ALPHABETS = {
    "alphanumeric": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "urlsafe": string.ascii_letters + string.digits + "-_",
}

# Called with the new version as soon as a value is set, before its tags are pinned: a retry
# after a failed pin must know the value exists (a generated value is made once).
OnSet = Callable[[str], None]


class SecretSourceError(Exception):
    """A secret's value cannot be obtained; the message names the source, never a value."""


def generate(spec: Generate) -> str:
    """A fresh random value from the OS's CSPRNG (``secrets``)."""
    alphabet = _ALPHABETS[spec.alphabet]
    return spec.prefix + "".join(secrets.choice(alphabet) for _ in range(spec.length))


def version_of(uri: Any) -> str | None:
    """The version id at the end of a ``secretUriWithVersion`` (None when there is none)."""
    _, _, rest = str(uri or "").rstrip("/").partition("/secrets/")
    parts = rest.split("/")
    return parts[1] if len(parts) >= 2 and parts[1] else None


def inner_code(error: BaseException) -> str | None:
    """The Key Vault ``innererror.code`` of an SDK error (e.g. ForbiddenByConnection)."""
    odata = getattr(error, "error", None)
    inner = getattr(odata, "innererror", None)
    if isinstance(inner, dict) and isinstance(inner.get("code"), str):
        return str(inner["code"])
    response = getattr(error, "response", None)
    try:
        body = response.json() if response is not None else None
    except Exception:  # not JSON: no inner code
        return None
    if isinstance(body, dict):
        found = (body.get("error") or {}).get("innererror") or {}
        if isinstance(found, dict) and isinstance(found.get("code"), str):
            return str(found["code"])
    return None


def _is_deleted_conflict(error: BaseException) -> bool:
    """409 because the name is soft-deleted (data plane: inner code; ARM: the message)."""
    if status_of(error) != 409:
        return False
    if inner_code(error) == "ObjectIsDeletedButRecoverable":
        return True
    message = str(getattr(getattr(error, "error", None), "message", "") or "")
    return "deleted but recoverable" in message.lower()


def is_unreachable(error: BaseException) -> bool:
    """The data plane refused us as an outsider: no route, or 403 ForbiddenByConnection /
    ForbiddenByFirewall (a private vault, or one whose firewall does not list us)."""
    from azure.core.exceptions import ServiceRequestError

    if isinstance(error, ServiceRequestError | ConnectionError):
        return True
    return status_of(error) == 403 and inner_code(error) in (
        "ForbiddenByConnection",
        "ForbiddenByFirewall",
    )


def refusal(error: BaseException) -> str:
    """Why the vault refused, in a few words (``HTTP 403 ForbiddenByConnection``); never the
    message, which may quote the caller or a request."""
    status = status_of(error)
    if status is None:
        return f"{type(error).__name__}: the vault's data plane cannot be reached"
    return f"HTTP {status} {inner_code(error) or error_code(error) or ''}".rstrip()


class SecretWriter:
    """Writes one secret through the plane ``state.secrets.write_path`` says."""

    def __init__(self, ctx: Context, vault: str, group: str, name: str) -> None:
        self.ctx = ctx
        self.vault = vault
        self.group = group
        self.name = name
        assert ctx.state.secrets is not None
        self.path = ctx.state.secrets.write_path

    # -- planes -------------------------------------------------------------------------
    def client(self) -> Any:
        """The data-plane ``SecretClient`` of the vault."""
        uri = self.ctx.output(f"key_vault/{self.vault}", "uri")
        if not isinstance(uri, str) or not uri:
            raise SecretSourceError(f"key_vault/{self.vault} reports no vault URI")
        return self.ctx.clients.secret_client(uri)

    def _either(self, data_plane: Callable[[], None], control_plane: Callable[[], None]) -> None:
        if self.path == "control_plane":
            control_plane()
            return
        if self.path == "data_plane":
            data_plane()
            return
        try:
            data_plane()
        except Exception as error:
            if not is_unreachable(error):
                raise
            control_plane()  # the vault's data plane is private: ARM can still write

    def _recover(self) -> None:
        """Recover a soft-deleted secret (data plane only: ARM has no recover operation)."""
        self.client().begin_recover_deleted_secret(self.name).result()

    # -- operations ---------------------------------------------------------------------
    def set(
        self, value: str, tags: dict[str, str], content_type: str | None, on_set: OnSet
    ) -> None:
        """A new version holding ``value`` (recovering a soft-deleted secret first), pinned
        in ``nsc-version``; ``on_set`` hears of the version before the pin is written."""
        self._set_recovering(value, tags, content_type, on_set, keep_recovered=False)

    def create_once(
        self, value: str, tags: dict[str, str], content_type: str | None, on_set: OnSet
    ) -> bool:
        """Set a freshly generated ``value``, unless a soft-deleted secret of that name comes
        back on recovery: its value is kept (generated once means once). False when a
        recovered value was kept."""
        try:
            self._set_recovering(value, tags, content_type, on_set, keep_recovered=True)
        except _Recovered:
            self.update(tags, content_type)
            return False
        return True

    def _set_recovering(
        self,
        value: str,
        tags: dict[str, str],
        content_type: str | None,
        on_set: OnSet,
        *,
        keep_recovered: bool,
    ) -> None:
        """Set ``value`` through either plane; a name held by a soft-deleted secret is
        recovered first (data plane only: fails clearly when it is private), then set again,
        or, with ``keep_recovered``, left holding the recovered value (raises _Recovered)."""

        def recovering(write: Callable[[], None]) -> None:
            try:
                write()
            except Exception as error:
                if not _is_deleted_conflict(error):
                    raise
                self._recover()
                if keep_recovered:
                    raise _Recovered() from None
                write()

        def data_plane() -> None:
            client = self.client()
            recovering(lambda: self._data_set(client, value, tags, content_type, on_set))

        def control_plane() -> None:
            recovering(lambda: self._arm_put(value, tags, content_type, on_set))

        self._either(data_plane, control_plane)

    def update(self, tags: dict[str, str], content_type: str | None) -> None:
        """Tags and content type of the current version; no new version, value untouched."""

        def data_plane() -> None:
            self.client().update_secret_properties(self.name, tags=tags, content_type=content_type)

        def control_plane() -> None:
            self._arm_patch(tags, content_type)

        self._either(data_plane, control_plane)

    def pin(self, version: str, tags: dict[str, str], content_type: str | None) -> None:
        """Tags of ``version`` (the one we set), with ``nsc-version`` = ``version``."""
        pinned = {**tags, VERSION_TAG: version}

        def data_plane() -> None:
            self.client().update_secret_properties(
                self.name, version, tags=pinned, content_type=content_type
            )

        def control_plane() -> None:
            self._arm_patch(pinned, content_type)  # ARM updates the current version

        self._either(data_plane, control_plane)

    def _data_set(
        self,
        client: Any,
        value: str,
        tags: dict[str, str],
        content_type: str | None,
        on_set: OnSet,
    ) -> None:
        """Set through the data plane, then pin the new version in ``nsc-version``."""
        made = client.set_secret(self.name, value, tags=tags, content_type=content_type)
        version = str(made.properties.version)
        on_set(version)
        client.update_secret_properties(
            self.name, version, tags={**tags, VERSION_TAG: version}, content_type=content_type
        )

    def _arm_put(
        self, value: str, tags: dict[str, str], content_type: str | None, on_set: OnSet
    ) -> None:
        """Set through ARM, then pin the new version in ``nsc-version`` (ARM PATCH)."""
        from azure.mgmt.keyvault.models import SecretCreateOrUpdateParameters

        properties: dict[str, Any] = {"value": value}
        if content_type is not None:
            properties["contentType"] = content_type
        body = {"properties": properties, "tags": tags}
        made = self.ctx.clients.keyvault_mgmt.secrets.create_or_update(
            self.group, self.vault, self.name, sdk_model(SecretCreateOrUpdateParameters, body)
        )
        version = version_of(getattr(made.properties, "secret_uri_with_version", None)) or ""
        on_set(version)
        self._arm_patch({**tags, VERSION_TAG: version}, content_type)

    def _arm_patch(self, tags: dict[str, str], content_type: str | None) -> None:
        from azure.mgmt.keyvault.models import SecretPatchParameters

        properties: dict[str, Any] = {}
        if content_type is not None:
            properties["contentType"] = content_type
        body = {"tags": tags, "properties": properties}
        self.ctx.clients.keyvault_mgmt.secrets.update(
            self.group, self.vault, self.name, sdk_model(SecretPatchParameters, body)
        )


class _Recovered(Exception):
    """A soft-deleted secret was recovered instead of created."""

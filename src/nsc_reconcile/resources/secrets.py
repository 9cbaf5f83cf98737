"""Key Vault secrets: compared without reading values, written through either plane.

Read: one ARM GET of ``Microsoft.KeyVault/vaults/secrets`` (works when the vault's data
plane is private; never returns the value). A value is compared through a tag the tool keeps
on the secret, ``nsc-value-sha256`` = SHA-256 hex of ``"nsc-reconcile:<secret name>:" +
value`` (salted with the name so equal values in two secrets do not look equal). A plain
setting (``sensitive: false``) keeps its value readable in ``nsc-value`` instead. Each value
write pins the version it made in ``nsc-version``: a newer version (someone set a value and
copied our tags) makes the value tag unverified, hence a change. A generated
secret is compared by existence only (generated once, never regenerated); an external one
must exist and is never written. Write: data plane, ARM control plane, or data plane falling
back to the control plane (``secrets.write_path``). Values never reach a message or a log.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import string
from typing import Any

from nsc_reconcile.changes import Unknown
from nsc_reconcile.model.secrets import Generate, KeyVaultSecret, parse_output_ref
from nsc_reconcile.resources.base import ArmReconciler, Context, Live, Reconciler, sdk_model
from nsc_reconcile.retry import status_of

VAULT_TYPE = "Microsoft.KeyVault/vaults"
HASH_TAG = "nsc-value-sha256"  # sensitive secrets: salted SHA-256 of the value
VALUE_TAG = "nsc-value"  # plain settings (sensitive: false): the value itself
VERSION_TAG = "nsc-version"  # the version our last value write made
UNVERIFIED = "(unverified: a version written by someone else)"
_TAG_MAX = 256  # Azure's limit for a tag value

_ALPHABETS = {
    "alphanumeric": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "urlsafe": string.ascii_letters + string.digits + "-_",
}


class SecretSourceError(Exception):
    """A secret's value cannot be obtained; the message names the source, never a value."""


def value_hash(name: str, value: str) -> str:
    """The ``nsc-value-sha256`` tag of secret ``name`` holding ``value``."""
    return hashlib.sha256(f"nsc-reconcile:{name}:{value}".encode()).hexdigest()


def generate(spec: Generate) -> str:
    """A fresh random value from the OS's CSPRNG (``secrets``)."""
    alphabet = _ALPHABETS[spec.alphabet]
    return spec.prefix + "".join(secrets.choice(alphabet) for _ in range(spec.length))


def _inner_code(error: BaseException) -> str | None:
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
    if _inner_code(error) == "ObjectIsDeletedButRecoverable":
        return True
    message = str(getattr(getattr(error, "error", None), "message", "") or "")
    return "deleted but recoverable" in message.lower()


def _is_unreachable(error: BaseException) -> bool:
    """The data plane refused us as an outsider: no route, or 403 ForbiddenByConnection."""
    from azure.core.exceptions import ServiceRequestError

    if isinstance(error, ServiceRequestError | ConnectionError):
        return True
    return status_of(error) == 403 and _inner_code(error) == "ForbiddenByConnection"


class KeyVaultSecretReconciler(ArmReconciler[KeyVaultSecret]):
    """One secret of ``state.secrets.vault``; see the module docstring for the comparison."""

    kind = "key_vault_secret"
    sensitive = frozenset({f"tags.{HASH_TAG}"})

    # ------------------------------------------------------------------ where
    def _vault(self, ctx: Context) -> str:
        if ctx.state.secrets is None:
            raise SecretSourceError("no `secrets` section in the desired state")
        return ctx.state.secrets.vault

    def _vault_id(self, ctx: Context) -> str:
        vault = self._vault(ctx)
        live = ctx.live(f"key_vault/{vault}")
        if live is not None:
            return live.id
        return f"{ctx.rg_id()}/providers/{VAULT_TYPE}/{vault}"

    def _vault_group(self, ctx: Context) -> str:
        return self._vault_id(ctx).split("/")[4]  # an existing vault may live elsewhere

    def resource_id(self, ctx: Context, resource: KeyVaultSecret) -> str:
        return f"{self._vault_id(ctx)}/secrets/{resource.name}"

    # ------------------------------------------------------------------ read
    def get(self, ctx: Context, resource: KeyVaultSecret) -> Any:
        return ctx.clients.keyvault_mgmt.secrets.get(
            self._vault_group(ctx), self._vault(ctx), resource.name
        )

    def read(self, ctx: Context, resource: KeyVaultSecret) -> Live | None:
        live = super().read(ctx, resource)
        if live is not None and _external(resource):
            live.managed = None  # never written, so never needs to be ours
        if live is not None:
            _distrust_foreign_version(live)
        return live

    # ------------------------------------------------------------------ desired
    def _value(self, ctx: Context, resource: KeyVaultSecret) -> str | Unknown | None:
        """The value to hold, Unknown until an output exists, None for generate/external.

        Raises SecretSourceError (naming the variable or output, never a value)."""
        if resource.value is not None:
            return resource.value
        source = resource.source
        if source is None or source.generate is not None or source.external:
            return None
        if source.env is not None:
            value = os.environ.get(source.env)
            if value is None or value == "":
                raise SecretSourceError(
                    f"environment variable {source.env} is not set (source of secret "
                    f"{resource.name})"
                )
            if resource.sensitive:
                ctx.register_secret(value)
            return value
        parsed = parse_output_ref(source.output or "")
        if parsed is None:  # the model validated it; kept for the type checker
            raise SecretSourceError(f"secret {resource.name}: bad output reference")
        kind, key, output = parsed
        found = ctx.output(f"{kind}/{key}", output)
        if isinstance(found, Unknown):
            return found
        if found is None or found == "":
            raise SecretSourceError(f"{kind}/{key} has no value for output {output}")
        if resource.sensitive:
            ctx.register_secret(str(found))
        return str(found)

    def declared(self, ctx: Context, resource: KeyVaultSecret) -> dict[str, Any]:
        if _external(resource):
            if ctx.live(resource.address) is None:
                raise SecretSourceError(
                    f"external secret {resource.name} does not exist in vault "
                    f"{self._vault(ctx)}; create it there (this tool never writes it)"
                )
            return {}
        fields: dict[str, Any] = {f"tags.{k}": v for k, v in ctx.tags().items()}
        if resource.content_type is not None:
            fields["properties.contentType"] = resource.content_type
        value = self._value(ctx, resource)
        if isinstance(value, Unknown):
            fields[f"tags.{HASH_TAG}"] = value
        elif value is not None:
            if not resource.sensitive and len(value) <= _TAG_MAX:
                fields[f"tags.{VALUE_TAG}"] = value
            else:
                fields[f"tags.{HASH_TAG}"] = value_hash(resource.name, value)
        return fields

    # ------------------------------------------------------------------ write
    def write(self, ctx: Context, resource: KeyVaultSecret, live: Live | None) -> None:
        """Set the value (a new version) only when it differs or the secret is missing;
        otherwise update tags/content type on the current version. A generated value is
        made only when the secret does not exist (also not after a soft-delete: the
        recovered value is kept). Raises SecretSourceError for an external secret."""
        if _external(resource):
            raise SecretSourceError(
                f"external secret {resource.name} is managed outside this tool: never written"
            )
        ours = self.declared(ctx, resource)
        tags = {**_live_tags(live), **{k[5:]: v for k, v in ours.items() if k.startswith("tags.")}}
        content_type = resource.content_type
        value = self._value(ctx, resource)
        if isinstance(value, Unknown):
            raise SecretSourceError(f"secret {resource.name}: {value} is not available")
        writer = _Writer(ctx, self._vault(ctx), self._vault_group(ctx), resource.name)
        address = f"{self.kind}/{resource.name}"
        if live is None:
            if value is None:  # generate: once, never again once it exists
                made = writer.create_generated(_generate_spec(resource), tags, content_type)
                if made is not None:
                    ctx.remember_secret(address, made)
            else:
                writer.set(value, tags, content_type)
                ctx.remember_secret(address, value)
            return
        same_value = all(
            live.fields.get(path) == ours[path]
            for path in (f"tags.{HASH_TAG}", f"tags.{VALUE_TAG}")
            if path in ours
        )
        if value is not None and not same_value:
            writer.set(value, tags, content_type)
            ctx.remember_secret(address, value)
        else:
            writer.update(tags, content_type)

    def output(self, ctx: Context, resource: KeyVaultSecret, live: Live, name: str) -> Any:
        if name == "uri":
            return live.fields.get("properties.secretUri")
        return super().output(ctx, resource, live, name)


def _distrust_foreign_version(live: Live) -> None:
    """A value tag vouches only for the version we wrote: when the current version is not
    the one pinned in ``nsc-version`` (someone set a new value and copied our tags), the
    value is unverified, which differs from any desired value."""
    pinned = live.fields.get(f"tags.{VERSION_TAG}")
    uri = str(live.fields.get("properties.secretUriWithVersion") or "")
    current = uri.rstrip("/").rsplit("/", 1)[-1] if uri else None
    if pinned is None or current is None or str(pinned).lower() == current.lower():
        return
    for tag in (HASH_TAG, VALUE_TAG):
        if f"tags.{tag}" in live.fields:
            live.fields[f"tags.{tag}"] = UNVERIFIED


def _external(resource: KeyVaultSecret) -> bool:
    return resource.source is not None and resource.source.external is True


def _generate_spec(resource: KeyVaultSecret) -> Generate:
    source = resource.source
    if source is None or source.generate is None:
        raise SecretSourceError(f"secret {resource.name} is not generated")
    return source.generate


def _live_tags(live: Live | None) -> dict[str, str]:
    """Tags already on the secret (others' tags survive our writes), without our value
    tags: a stale ``nsc-value`` must not outlive a switch to ``sensitive``."""
    if live is None:
        return {}
    return {
        k[5:]: str(v)
        for k, v in live.fields.items()
        if k.startswith("tags.") and v is not None and k[5:] not in (HASH_TAG, VALUE_TAG)
    }


class _Writer:
    """Writes one secret through the plane ``state.secrets.write_path`` says."""

    def __init__(self, ctx: Context, vault: str, group: str, name: str) -> None:
        self.ctx = ctx
        self.vault = vault
        self.group = group
        self.name = name
        assert ctx.state.secrets is not None
        self.path = ctx.state.secrets.write_path

    # -- planes -------------------------------------------------------------------------
    def _client(self) -> Any:
        uri = self.ctx.output(f"key_vault/{self.vault}", "uri")
        if not isinstance(uri, str) or not uri:
            raise SecretSourceError(f"key_vault/{self.vault} reports no vault URI")
        return self.ctx.clients.secret_client(uri)

    def _either(self, data_plane: Any, control_plane: Any) -> None:
        if self.path == "control_plane":
            control_plane()
            return
        if self.path == "data_plane":
            data_plane()
            return
        try:
            data_plane()
        except Exception as error:
            if not _is_unreachable(error):
                raise
            control_plane()  # the vault's data plane is private: ARM can still write

    def _recover(self) -> None:
        """Recover a soft-deleted secret (data plane only: ARM has no recover operation)."""
        self._client().begin_recover_deleted_secret(self.name).result()

    # -- operations ---------------------------------------------------------------------
    def set(self, value: str, tags: dict[str, str], content_type: str | None) -> None:
        """A new version holding ``value`` (recovering a soft-deleted secret first)."""

        def data_plane() -> None:
            client = self._client()
            try:
                self._data_set(client, value, tags, content_type)
            except Exception as error:
                if not _is_deleted_conflict(error):
                    raise
                self._recover()
                self._data_set(client, value, tags, content_type)

        def control_plane() -> None:
            try:
                self._arm_put(value, tags, content_type)
            except Exception as error:
                if not _is_deleted_conflict(error):
                    raise
                self._recover()  # needs the data plane; fails clearly when it is private
                self._arm_put(value, tags, content_type)

        self._either(data_plane, control_plane)

    def create_generated(
        self, spec: Generate, tags: dict[str, str], content_type: str | None
    ) -> str | None:
        """Generate and set a value, unless a soft-deleted secret of that name comes back
        on recovery: its value is kept (generated once means once). Returns the value set,
        None when a recovered one was kept."""
        value = generate(spec)
        self.ctx.register_secret(value)
        try:
            self.set_if_absent(value, tags, content_type)
        except _Recovered:
            self.update(tags, content_type)
            return None
        return value

    def set_if_absent(self, value: str, tags: dict[str, str], content_type: str | None) -> None:
        def data_plane() -> None:
            client = self._client()
            try:
                self._data_set(client, value, tags, content_type)
            except Exception as error:
                if not _is_deleted_conflict(error):
                    raise
                self._recover()
                raise _Recovered() from None

        def control_plane() -> None:
            try:
                self._arm_put(value, tags, content_type)
            except Exception as error:
                if not _is_deleted_conflict(error):
                    raise
                self._recover()
                raise _Recovered() from None

        self._either(data_plane, control_plane)

    def update(self, tags: dict[str, str], content_type: str | None) -> None:
        """Tags and content type of the current version; no new version, value untouched."""

        def data_plane() -> None:
            self._client().update_secret_properties(self.name, tags=tags, content_type=content_type)

        def control_plane() -> None:
            self._arm_patch(tags, content_type)

        self._either(data_plane, control_plane)

    def _data_set(
        self, client: Any, value: str, tags: dict[str, str], content_type: str | None
    ) -> None:
        """Set through the data plane, then pin the new version in ``nsc-version``."""
        made = client.set_secret(self.name, value, tags=tags, content_type=content_type)
        version = made.properties.version
        client.update_secret_properties(
            self.name, version, tags={**tags, VERSION_TAG: version}, content_type=content_type
        )

    def _arm_put(self, value: str, tags: dict[str, str], content_type: str | None) -> None:
        """Set through ARM, then pin the new version in ``nsc-version`` (ARM PATCH)."""
        from azure.mgmt.keyvault.models import SecretCreateOrUpdateParameters

        properties: dict[str, Any] = {"value": value}
        if content_type is not None:
            properties["contentType"] = content_type
        body = {"properties": properties, "tags": tags}
        made = self.ctx.clients.keyvault_mgmt.secrets.create_or_update(
            self.group, self.vault, self.name, sdk_model(SecretCreateOrUpdateParameters, body)
        )
        uri = str(getattr(made.properties, "secret_uri_with_version", "") or "")
        self._arm_patch({**tags, VERSION_TAG: uri.rstrip("/").rsplit("/", 1)[-1]}, content_type)

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


RECONCILERS: dict[str, Reconciler[Any]] = {"key_vault_secret": KeyVaultSecretReconciler()}

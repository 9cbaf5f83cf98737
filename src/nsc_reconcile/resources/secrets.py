"""Key Vault secrets: compared through tags and versions from one ARM GET (which never returns a
value and works when the vault's data plane is private), written through either plane.

Every value we set is pinned: ``nsc-version`` = the version it made; another current version
means someone else set a value (a change). A generated secret is compared by existence only
(made once); a plain setting (``sensitive: false``) keeps its value in ``nsc-value``; a sensitive
value from an output or the environment carries ``nsc-value-hmac`` = HMAC-SHA256 keyed with the
vault's own ``nsc-reconcile-mac-key`` secret (vault_mac.py). Why keyed, not versions alone: only
a value tag tells whether the vault still holds the *current* source value (say, after an OpenAI
key rotation); why keyed, not the former unkeyed ``nsc-value-sha256``: anyone with Reader on the
vault could test guesses against that offline, while the key never leaves the vault but into a
run's memory. The key is read through the data plane: from outside the VNet the value cannot be
compared, so the plan compares versions only (ours, unchanged since our last write) and says so
in a note. Migration: an old ``nsc-value-sha256`` tag is checked once (it still proves the value)
and replaced in a tags-only update the plan shows; where the key cannot be read it is only removed.
An OpenAI account key (``primary_key``/``secondary_key``) is satisfied by either of the account's
current keys, unless another declared secret holds the other one: `rotate` (rotate.py) swaps to
the other key and regenerates the old one, and the next plan must see no change.
"""

from __future__ import annotations

import enum
import hashlib
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from nsc_reconcile.changes import Unknown
from nsc_reconcile.model.secrets import Generate, KeyVaultSecret, parse_output_ref
from nsc_reconcile.resources.base import (
    ArmReconciler,
    Context,
    Listing,
    Live,
    arm_names,
    to_wire,
)
from nsc_reconcile.resources.vault_mac import MAC_KEY_SECRET, MacKey, MacKeys, value_mac
from nsc_reconcile.resources.vault_writer import (
    VERSION_TAG,
    OnSet,
    SecretSourceError,
    SecretWriter,
    generate,
    is_unreachable,
    refusal,
    version_of,
)
from nsc_reconcile.retry import status_of

__all__ = [
    "LEGACY_TAG",
    "MAC_TAG",
    "VALUE_TAG",
    "VERSION_TAG",
    "KeyVaultSecretReconciler",
    "SecretSourceError",
]

VAULT_TYPE = "Microsoft.KeyVault/vaults"
MAC_TAG = "nsc-value-hmac"  # sensitive values: keyed MAC of the value
VALUE_TAG = "nsc-value"  # plain settings (sensitive: false): the value itself
LEGACY_TAG = "nsc-value-sha256"  # the former unkeyed hash: verified once, then removed
UNVERIFIED = "(unverified: a version written by someone else)"
LEGACY_SHOWN = "(unkeyed SHA-256 of the value: replaced by a keyed tag)"
PENDING = "(keyed digest, computed when written)"  # displayed as "(sensitive)"
_TAG_MAX = 256  # Azure's limit for a tag value
_KEY_OUTPUTS = {"primary_key": "secondary_key", "secondary_key": "primary_key"}
_VALUE_TAGS = (MAC_TAG, VALUE_TAG, LEGACY_TAG)


class _Verdict(enum.Enum):
    """Whether the vault holds the desired value, as far as this run can tell."""

    SAME = "same"  # a value tag proves it
    TRUSTED = "trusted"  # the value cannot be compared from here; the version is ours
    DIFFERENT = "different"  # another value, or a version someone else wrote
    UNPROVEN = "unproven"  # no value tag, data plane reachable: read the value to know


class KeyVaultSecretReconciler(ArmReconciler[KeyVaultSecret]):
    """One secret of ``state.secrets.vault``; see the module docstring for the comparison."""

    kind = "key_vault_secret"
    holds_data = True
    # ARM lists a vault's secrets with their tags (no value, works outside a private vault's
    # VNet); ARM has no delete for them: delete_orphan uses the data plane.
    listing = Listing(
        "keyvault_mgmt", "secrets", list_method="list", parent="key_vault",
        parent_in_address=False,
    )  # fmt: skip
    never_orphans = frozenset({MAC_KEY_SECRET})
    sensitive = frozenset({f"tags.{MAC_TAG}"})

    def __init__(self) -> None:
        self._keys = MacKeys()
        self._lock = threading.Lock()
        # address -> (version, tags, content type) of a value set in this run whose tags may
        # not be written yet: a retried write pins that version instead of setting another.
        self._made: weakref.WeakKeyDictionary[
            Context, dict[str, tuple[str, dict[str, str], str | None]]
        ] = weakref.WeakKeyDictionary()

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

    def _writer(self, ctx: Context, name: str) -> SecretWriter:
        return SecretWriter(ctx, self._vault(ctx), self._vault_group(ctx), name)

    # ------------------------------------------------------------------ read
    def get(self, ctx: Context, resource: KeyVaultSecret) -> Any:
        return ctx.clients.keyvault_mgmt.secrets.get(
            self._vault_group(ctx), self._vault(ctx), resource.name
        )

    def read(self, ctx: Context, resource: KeyVaultSecret) -> Live | None:
        if _keyed(resource):  # its plan needs the vault's MAC key: read it alongside
            self._keys.prefetch(ctx, self._writer(ctx, MAC_KEY_SECRET))
        live = super().read(ctx, resource)
        if live is not None and _external(resource):
            live.managed = None  # never written, so never needs to be ours
        return live

    def refine(self, ctx: Context, resource: KeyVaultSecret, live: Live) -> Live:
        """Value tags as the plan may show them: the unkeyed hash never, a value tag of a
        version someone else wrote as UNVERIFIED. Pure; ``raw`` keeps the tags as read."""
        if f"tags.{LEGACY_TAG}" in live.fields:
            live.fields[f"tags.{LEGACY_TAG}"] = LEGACY_SHOWN  # the hash itself is never shown
        if _foreign_version(live):
            for tag in _VALUE_TAGS:
                if f"tags.{tag}" in live.fields:
                    live.fields[f"tags.{tag}"] = UNVERIFIED
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
        with self._lock:
            made = self._made.get(ctx, {}).get(resource.address)
        if made is not None:  # set in this run, its pin not written yet (the write failed)
            fields[f"tags.{VERSION_TAG}"] = made[0]
        live = ctx.live(resource.address)
        if live is not None and f"tags.{LEGACY_TAG}" in live.fields:
            fields[f"tags.{LEGACY_TAG}"] = None  # the unkeyed hash goes (see module docstring)
        value = self._value(ctx, resource)
        if isinstance(value, Unknown):
            fields[f"tags.{MAC_TAG if resource.sensitive else VALUE_TAG}"] = value
        elif value is not None and _plain(resource, value):
            fields[f"tags.{VALUE_TAG}"] = value
        elif value is not None:
            fields.update(self._mac_fields(ctx, resource, live, value))
        return fields

    def _mac_fields(
        self, ctx: Context, resource: KeyVaultSecret, live: Live | None, value: str
    ) -> dict[str, Any]:
        """The desired ``nsc-value-hmac`` tag: the live one when the value is proven or cannot
        be compared here; else the new tag, or PENDING when it needs a key we do not have."""
        path = f"tags.{MAC_TAG}"
        verdict, key, _ = self._judge(ctx, resource, live, value)
        if verdict is _Verdict.SAME and live is not None and path in live.fields:
            return {path: live.fields[path]}
        if verdict is _Verdict.TRUSTED:
            return {path: live.fields[path]} if live is not None and path in live.fields else {}
        if key.key is not None:
            return {path: value_mac(key.key, resource.name, value)}
        if verdict is _Verdict.SAME and key.unavailable:
            return {}  # a proven value whose keyed tag cannot be made here: old tag removed only
        return {path: PENDING}

    def _judge(
        self, ctx: Context, resource: KeyVaultSecret, live: Live | None, value: str
    ) -> tuple[_Verdict, MacKey, str | None]:
        """Compare ``value`` (or a value that also satisfies it, see ``accepted``) with the
        secret through its tags; reads the MAC key (data plane) only when a keyed tag must be
        checked. The third item is the value proven held (SAME), else None. Never writes."""
        if live is None or _foreign_version(live):
            return _Verdict.DIFFERENT, MacKey(absent=True), None
        tags = _raw_tags(live)
        key = self._keys.get(ctx, self._writer(ctx, MAC_KEY_SECRET))
        if LEGACY_TAG in tags and MAC_TAG not in tags:
            same = _legacy_hash(resource.name, value) == tags[LEGACY_TAG]
            return (_Verdict.SAME if same else _Verdict.DIFFERENT), key, value if same else None
        if key.unavailable:
            ours = tags.get(VERSION_TAG) is not None
            return (_Verdict.TRUSTED if ours else _Verdict.DIFFERENT), key, None
        if MAC_TAG in tags and key.key is not None:
            mac_key, tag = key.key, tags[MAC_TAG]
            held = self._held(
                ctx, resource, value, lambda v: value_mac(mac_key, resource.name, v) == tag
            )
            return (_Verdict.DIFFERENT if held is None else _Verdict.SAME), key, held
        # no keyed tag (or no key yet): the value must be read
        return _Verdict.UNPROVEN, key, None

    def _held(
        self, ctx: Context, resource: KeyVaultSecret, value: str, holds: Callable[[str], bool]
    ) -> str | None:
        """``value``, or else the first other accepted value, for which ``holds`` is true.
        The other values are asked for only when ``value`` is not held (one listKeys less)."""
        if holds(value):
            return value
        return next((other for other in self.accepted(ctx, resource) if holds(other)), None)

    def accepted(self, ctx: Context, resource: KeyVaultSecret) -> list[str]:
        """Values besides the declared one that satisfy ``resource``: for an OpenAI account's
        ``primary_key``/``secondary_key``, the account's other current key (Azure keeps two so
        that one can be rotated while the other serves; `rotate` swaps between them), unless
        another declared secret holds that other key. Empty for every other source."""
        parsed = parse_output_ref((resource.source.output or "") if resource.source else "")
        if parsed is None or parsed[0] != "openai_account" or parsed[2] not in _KEY_OUTPUTS:
            return []
        kind, key, output = parsed
        other = _KEY_OUTPUTS[output]
        other_ref = f"{kind}/{key}.{other}"
        assert ctx.state.secrets is not None
        if any(i.source and i.source.output == other_ref for i in ctx.state.secrets.items):
            return []
        found = ctx.output(f"{kind}/{key}", other)
        if not isinstance(found, str) or not found:
            return []
        ctx.register_secret(found)
        return [found]

    def notes(self, ctx: Context, resource: KeyVaultSecret) -> list[str]:
        """Says when the value was compared by version only (the data plane is private)."""
        try:
            live = ctx.live(resource.address)
            value = self._value(ctx, resource) if live is not None else None
            if not isinstance(value, str) or _plain(resource, value):
                return []
            verdict, key, _ = self._judge(ctx, resource, live, value)
        except Exception:  # desired() already reports any error as blocked
            return []
        if verdict is not _Verdict.TRUSTED:
            return []
        return [
            f"value compared by version only: the key of its {MAC_TAG} tag cannot be read "
            f"here ({key.reason}); the current version is the one nsc-reconcile wrote last. "
            "Comparing the value itself (e.g. after its source rotated) needs the vault's data "
            "plane: run plan inside the vault's VNet"
        ]

    # ------------------------------------------------------------------ write
    def send(
        self,
        ctx: Context,
        resource: KeyVaultSecret,
        fields: dict[str, Any],
        live: Live | None,
    ) -> None:
        """Not one PUT of ``fields``: the calls depend on the value, found here (set a new
        version, update the tags of the current one, or pin a value set in a failed try),
        and go through the plane that can make them (SecretWriter: the data plane, or ARM
        when it is private). Sets the value (a new version) only when it differs or the
        secret is missing; otherwise updates tags/content type on the current version. A
        generated value is made only when the secret does not exist (also not after a
        soft-delete: the recovered value is kept), and once per run even when a retry
        follows a failure after the value was set. Raises SecretSourceError for an
        external secret."""
        if _external(resource):
            raise SecretSourceError(
                f"external secret {resource.name} is managed outside this tool: never written"
            )
        address = resource.address
        writer = self._writer(ctx, resource.name)
        with self._lock:
            made = self._made.get(ctx, {}).get(address)
        if made is not None:  # a retry: our value is set, only its tags may be missing
            writer.pin(*made)
            self._forget(ctx, address)
            return
        tags = {**_live_tags(live), **ctx.tags()}
        content_type = resource.content_type
        value = self._value(ctx, resource)
        if isinstance(value, Unknown):
            raise SecretSourceError(f"secret {resource.name}: {value} is not available")
        if value is None:  # generated: once, never again once it exists
            if live is None:
                self._create_generated(ctx, resource, writer, tags)
                self._forget(ctx, address)
            else:
                writer.update(tags, content_type)
            return
        if _plain(resource, value):
            tags[VALUE_TAG] = value
            same = live is not None and live.fields.get(f"tags.{VALUE_TAG}") == value
        else:
            same = self._same_for_write(ctx, resource, live, value, writer, tags)
        if same:
            writer.update(tags, content_type)
        else:
            writer.set(value, tags, content_type, self._on_set(ctx, resource, value, tags))
            self._forget(ctx, address)

    def _forget(self, ctx: Context, address: str) -> None:
        """The value set in this run is pinned: a later write starts afresh."""
        with self._lock:
            self._made.get(ctx, {}).pop(address, None)

    def _same_for_write(
        self,
        ctx: Context,
        resource: KeyVaultSecret,
        live: Live | None,
        value: str,
        writer: SecretWriter,
        tags: dict[str, str],
    ) -> bool:
        """Whether the vault already holds ``value``; adds the value tag to ``tags`` (keyed,
        creating the vault's key on first use; none when the key cannot be read here)."""
        verdict, _, held = self._judge(ctx, resource, live, value)
        if verdict is _Verdict.UNPROVEN:  # the data plane is reachable: look at the value
            assert live is not None
            version = version_of(live.fields.get("properties.secretUriWithVersion"))
            current = writer.client().get_secret(resource.name, version).value
            held = self._held(ctx, resource, value, lambda v: v == current)
            verdict = _Verdict.SAME if held is not None else _Verdict.DIFFERENT
        key = self._keys.ensure(ctx, lambda name: self._writer(ctx, name))
        if key.key is not None:  # the tag vouches for the value held, which write keeps
            tags[MAC_TAG] = value_mac(key.key, resource.name, held or value)
        elif verdict is _Verdict.TRUSTED and live is not None:
            kept = _raw_tags(live).get(MAC_TAG)
            if kept is not None:
                tags[MAC_TAG] = kept
        return verdict in (_Verdict.SAME, _Verdict.TRUSTED)

    def _create_generated(
        self, ctx: Context, resource: KeyVaultSecret, writer: SecretWriter, tags: dict[str, str]
    ) -> None:
        value = generate(_generate_spec(resource))
        ctx.register_secret(value)
        on_set = self._on_set(ctx, resource, value, tags)
        writer.create_once(value, tags, resource.content_type, on_set)

    def _on_set(
        self, ctx: Context, resource: KeyVaultSecret, value: str, tags: dict[str, str]
    ) -> OnSet:
        """What to remember the moment a value is set (before its tags are pinned)."""

        def remember(version: str) -> None:
            ctx.remember_secret(resource.address, value, sensitive=resource.sensitive)
            with self._lock:
                made = self._made.setdefault(ctx, {})
                made[resource.address] = (version, dict(tags), resource.content_type)

        return remember

    def delete_orphan(self, ctx: Context, resource_id: str) -> None:
        """Delete (Key Vault soft-deletes it: recoverable for the vault's retention days)
        through the data plane, which ARM does not offer; a private vault's needs its VNet."""
        from azure.core.exceptions import ResourceNotFoundError

        vault, name = arm_names(resource_id)[-2:]
        uri = ctx.output(f"key_vault/{vault}", "uri")
        if not isinstance(uri, str) or not uri:
            raise SecretSourceError(f"key_vault/{vault} reports no vault URI")
        try:
            ctx.clients.secret_client(uri).begin_delete_secret(name).result()
        except ResourceNotFoundError:
            return

    # ------------------------------------------------------------------ rotation
    def current_value(self, ctx: Context, resource: KeyVaultSecret) -> str:
        """The current value, read through the vault's data plane (registered for redaction,
        never shown). Raises SecretSourceError naming the refusal, e.g. from outside the VNet
        of a private vault."""
        try:
            value = self._writer(ctx, resource.name).client().get_secret(resource.name).value
        except Exception as error:
            if not is_unreachable(error) and status_of(error) is None:
                raise
            hint = ": for a private vault, run inside its VNet" if is_unreachable(error) else ""
            raise SecretSourceError(  # from None: the SDK error holds the response
                f"cannot read secret {resource.name} from Key Vault {self._vault(ctx)} "
                f"({refusal(error)}){hint}"
            ) from None
        if not value:
            raise SecretSourceError(f"secret {resource.name} in {self._vault(ctx)} has no value")
        ctx.register_secret(str(value))
        return str(value)

    def set_new_value(
        self, ctx: Context, resource: KeyVaultSecret, live: Live | None, value: str
    ) -> str:
        """Set ``value`` as a new version now (credential rotation) with the bookkeeping write()
        gives a value it sets: tags kept, ``nsc-version`` pinned, and for a sensitive value that
        is not generated its keyed ``nsc-value-hmac`` tag; the value is remembered for this run
        (resources written next use it unread). Returns the new version. Raises
        SecretSourceError for an external secret."""
        if _external(resource):
            raise SecretSourceError(
                f"external secret {resource.name} is managed outside this tool: never written"
            )
        ctx.register_secret(value)
        tags = {**_live_tags(live), **ctx.tags()}
        generated = resource.source is not None and resource.source.generate is not None
        if _plain(resource, value):
            tags[VALUE_TAG] = value
        elif not generated:
            key = self._keys.ensure(ctx, lambda name: self._writer(ctx, name))
            if key.key is not None:
                tags[MAC_TAG] = value_mac(key.key, resource.name, value)
        versions: list[str] = []

        def remember(version: str) -> None:
            ctx.remember_secret(resource.address, value)
            versions.append(version)

        self._writer(ctx, resource.name).set(value, tags, resource.content_type, remember)
        return versions[-1] if versions else ""

    def output(self, ctx: Context, resource: KeyVaultSecret, live: Live, name: str) -> Any:
        if name == "uri":
            return live.fields.get("properties.secretUri")
        if name == "version":  # the current version (compared by those that use the value)
            return version_of(live.fields.get("properties.secretUriWithVersion"))
        return super().output(ctx, resource, live, name)


def _plain(resource: KeyVaultSecret, value: str) -> bool:
    """A value kept readable in ``nsc-value`` (a setting, short enough for a tag)."""
    return not resource.sensitive and len(value) <= _TAG_MAX


def _keyed(resource: KeyVaultSecret) -> bool:
    """A sensitive value from an output or the environment: compared through its keyed tag."""
    source = resource.source
    return resource.sensitive and source is not None and bool(source.output or source.env)


def _legacy_hash(name: str, value: str) -> str:
    """The former unkeyed ``nsc-value-sha256`` tag: only ever compared, never written."""
    return hashlib.sha256(f"nsc-reconcile:{name}:{value}".encode()).hexdigest()


def _foreign_version(live: Live) -> bool:
    """The current version is not the one pinned in ``nsc-version`` (someone set a new value
    and copied our tags): no value tag vouches for it."""
    pinned = _raw_tags(live).get(VERSION_TAG)
    current = version_of(live.fields.get("properties.secretUriWithVersion"))
    return pinned is not None and current is not None and pinned.lower() != current.lower()


def _raw_tags(live: Live) -> dict[str, str]:
    """The tags as read (``fields`` hides the unkeyed hash and distrusted value tags)."""
    raw = live.raw if isinstance(live.raw, dict) else to_wire(live.raw) if live.raw else {}
    return {str(k): str(v) for k, v in (raw.get("tags") or {}).items() if v is not None}


def _external(resource: KeyVaultSecret) -> bool:
    return resource.source is not None and resource.source.external is True


def _generate_spec(resource: KeyVaultSecret) -> Generate:
    source = resource.source
    if source is None or source.generate is None:
        raise SecretSourceError(f"secret {resource.name} is not generated")
    return source.generate


def _live_tags(live: Live | None) -> dict[str, str]:
    """Tags already on the secret (others' tags survive our writes), without our value
    tags: a stale ``nsc-value`` must not outlive a switch to ``sensitive``, and the unkeyed
    hash is dropped by every write."""
    if live is None:
        return {}
    return {k: v for k, v in _raw_tags(live).items() if k not in _VALUE_TAGS}

"""The per-vault key of the keyed value tags: 256 random bits kept as the secret
``nsc-reconcile-mac-key`` in the same vault, generated once, read only through the vault's data
plane (so only from inside its VNet), held in memory for one run, never written anywhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from nsc_reconcile.model.secrets import Generate
from nsc_reconcile.resources.base import Context
from nsc_reconcile.resources.vault_writer import (
    SecretWriter,
    generate,
    is_unreachable,
    refusal,
)
from nsc_reconcile.retry import status_of

MAC_KEY_SECRET = "nsc-reconcile-mac-key"
MAC_KEY_CONTENT_TYPE = "nsc-reconcile: key of the nsc-value-hmac tags (generated; keep it)"
_KEY_SPEC = Generate(length=64, alphabet="hex")


def value_mac(key: str, name: str, value: str) -> str:
    """The ``nsc-value-hmac`` tag of secret ``name`` holding ``value`` (HMAC-SHA256, hex)."""
    message = f"nsc-reconcile:{name}:{value}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class MacKey:
    """A vault's MAC key as this run sees it: the key, or why there is none."""

    key: str | None = None
    absent: bool = False  # the vault answered: no such secret (it is created on first write)
    reason: str | None = None  # why the key cannot be read (e.g. the data plane is private)

    @property
    def unavailable(self) -> bool:
        return self.key is None and not self.absent


class MacKeys:
    """The MAC key of each vault, per run (``Context``); reads and creates are serialized."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: weakref.WeakKeyDictionary[Context, dict[str, MacKey]] = (
            weakref.WeakKeyDictionary()
        )

    def _cached(self, ctx: Context, vault: str) -> MacKey | None:
        return self._keys.get(ctx, {}).get(vault.lower())

    def _keep(self, ctx: Context, vault: str, found: MacKey) -> MacKey:
        self._keys.setdefault(ctx, {})[vault.lower()] = found
        if found.key is not None:
            ctx.register_secret(found.key)
        return found

    def get(self, ctx: Context, writer: SecretWriter) -> MacKey:
        """The key, read once per run through the data plane. Never writes. Raises what the
        vault answers besides "absent" and "not reachable from here"."""
        with self._lock:
            cached = self._cached(ctx, writer.vault)
            if cached is not None:
                return cached
            return self._keep(ctx, writer.vault, _read(writer))

    def ensure(self, ctx: Context, make_writer: Callable[[str], SecretWriter]) -> MacKey:
        """The key, created (generated once) when the vault has none. When the data plane is
        not reachable, ARM says whether it exists; an existing key then stays unavailable."""
        writer = make_writer(MAC_KEY_SECRET)
        with self._lock:
            found = self._cached(ctx, writer.vault) or _read(writer)
            if found.unavailable and not _exists_in_arm(writer):
                found = MacKey(absent=True)
            if found.absent:
                found = self._create(ctx, writer)
            return self._keep(ctx, writer.vault, found)

    def _create(self, ctx: Context, writer: SecretWriter) -> MacKey:
        value = generate(_KEY_SPEC)
        ctx.register_secret(value)

        def on_set(_version: str) -> None:
            # Kept before the pin is written: a retry after a failed pin reuses this key.
            self._keep(ctx, writer.vault, MacKey(key=value))

        if not writer.create_once(value, ctx.tags(), MAC_KEY_CONTENT_TYPE, on_set):
            return _read(writer)  # a soft-deleted key came back on recovery
        return MacKey(key=value)


def _read(writer: SecretWriter) -> MacKey:
    from azure.core.exceptions import ResourceNotFoundError

    if not isinstance(writer.ctx.output(f"key_vault/{writer.vault}", "uri"), str):
        return MacKey(absent=True)  # no vault yet, so no key
    try:
        value = writer.client().get_secret(MAC_KEY_SECRET).value
    except ResourceNotFoundError:
        return MacKey(absent=True)
    except Exception as error:
        if is_unreachable(error) or status_of(error) == 403:
            return MacKey(reason=refusal(error))
        raise
    if not value:
        return MacKey(absent=True)
    return MacKey(key=str(value))


def _exists_in_arm(writer: SecretWriter) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        writer.ctx.clients.keyvault_mgmt.secrets.get(writer.group, writer.vault, MAC_KEY_SECRET)
    except ResourceNotFoundError:
        return False
    return True

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
from concurrent.futures import Future
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
    """The MAC key of each vault, per run (``Context``): read once (``prefetch`` starts that
    read in the background; ``get`` waits for it), creates serialized."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: weakref.WeakKeyDictionary[Context, dict[str, MacKey]] = (
            weakref.WeakKeyDictionary()
        )
        # The read of each vault's key, started by ``prefetch`` and not yet kept.
        self._reading: weakref.WeakKeyDictionary[Context, dict[str, Future[MacKey]]] = (
            weakref.WeakKeyDictionary()
        )

    def _cached(self, ctx: Context, vault: str) -> MacKey | None:
        return self._keys.get(ctx, {}).get(vault.lower())

    def _keep(self, ctx: Context, vault: str, found: MacKey) -> MacKey:
        self._keys.setdefault(ctx, {})[vault.lower()] = found
        if found.key is not None:
            ctx.register_secret(found.key)
        return found

    def prefetch(self, ctx: Context, writer: SecretWriter) -> None:
        """Start reading the key in a background thread, unless it is known or being read:
        a plan needs it once the values to compare are known (the OpenAI key: one listKeys
        later), and it costs two round trips (Key Vault's auth challenge, then the GET) that
        then overlap with those of the secrets' reads. A key found absent is read again (a
        fresh read of a secret, e.g. apply's before its write, may follow another apply that
        created it). Never writes."""
        vault = writer.vault.lower()
        with self._lock:
            reading = self._reading.setdefault(ctx, {})
            earlier = reading.get(vault)
            if earlier is not None and not earlier.done():
                return
            if earlier is not None:  # finished, nobody took it: keep a key it found
                del reading[vault]
                if earlier.exception() is None and earlier.result().key is not None:
                    self._keep(ctx, vault, earlier.result())
            cached = self._cached(ctx, vault)
            if cached is not None and not cached.absent:
                return
            future: Future[MacKey] = Future()
            reading[vault] = future

        def read() -> None:
            try:
                future.set_result(_read(writer))
            except BaseException as error:  # raised to whoever waits for the key
                future.set_exception(error)

        threading.Thread(target=read, name=f"nsc-mac-key-{vault}", daemon=True).start()

    def _known(self, ctx: Context, writer: SecretWriter) -> MacKey | None:
        """The key as a running prefetch reads it (waited for, then kept unless a key is kept
        meanwhile), else as kept; None when neither. A failed prefetch raises its error once;
        the next call reads again."""
        vault = writer.vault.lower()
        with self._lock:
            cached = self._cached(ctx, vault)
            future = self._reading.get(ctx, {}).get(vault)
        if future is None:
            return cached
        try:
            found = future.result()
        finally:
            with self._lock:
                reading = self._reading.get(ctx, {})
                if reading.get(vault) is future:
                    del reading[vault]
        with self._lock:
            current = self._cached(ctx, vault)
            if current is not None and current.key is not None:
                return current
            return self._keep(ctx, vault, found)

    def get(self, ctx: Context, writer: SecretWriter) -> MacKey:
        """The key, read once per run through the data plane. Never writes. Raises what the
        vault answers besides "absent" and "not reachable from here"."""
        known = self._known(ctx, writer)
        if known is not None:
            return known
        with self._lock:
            cached = self._cached(ctx, writer.vault)
            if cached is not None:
                return cached
            return self._keep(ctx, writer.vault, _read(writer))

    def ensure(self, ctx: Context, make_writer: Callable[[str], SecretWriter]) -> MacKey:
        """The key, created (generated once) when the vault has none. When the data plane is
        not reachable, ARM says whether it exists; an existing key then stays unavailable."""
        writer = make_writer(MAC_KEY_SECRET)
        known = self._known(ctx, writer)
        with self._lock:
            found = self._cached(ctx, writer.vault) or known
            if found is None or found.absent:  # read again right before creating: another
                found = _read(writer)  # apply may have created it since (set overwrites)
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

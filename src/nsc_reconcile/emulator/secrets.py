"""Key Vault secret state shared by the data plane and the ARM ``vaults/secrets`` kind.

Holds, per vault name, every secret's versions and its soft-deleted state. Pure state with a
lock: knows nothing of HTTP; callers turn records into wire bodies (see ``bundle``).

API (vault and secret names are case-insensitive, as in Key Vault; stored with first casing):
- ``set(vault, name, value, content_type=None, tags=None) -> dict``: new version (32-hex id),
  returns its record. Raises ``SecretConflict`` when the name is soft-deleted.
- ``get(vault, name, version=None) -> dict``: latest (or the given) version's record.
- ``update(vault, name, version=None, enabled=None, content_type=None, tags=None,
  not_before=None, expires=None) -> dict``: attribute change of one version (no new version).
- ``list(vault) -> list[dict]``: latest version of every live secret, sorted by name.
- ``versions(vault, name) -> list[dict]``: every version, oldest first ([] when unknown).
- ``delete(vault, name) -> dict``: soft delete; returns the deleted record.
- ``get_deleted(vault, name)``, ``list_deleted(vault)``, ``recover(vault, name) -> dict``
  (latest version again live), ``purge(vault, name) -> None``.
- ``reset()``, ``snapshot() -> object``, ``restore(snapshot)``: for the emulator's reset.
- ``vault_url(vault) -> str``: the data-plane URL of a vault (the Key Vault plane installs its
  resolver; default ``https://<vault>.vault.azure.net/``).
Missing names raise ``SecretNotFound``; both errors carry Key Vault's ``status``/``code``/
``message``. A record is a fresh dict: ``name``, ``version``, ``value``, ``attributes``
(``enabled``, ``created``, ``updated`` epoch seconds, optional ``nbf``/``exp``,
``recoveryLevel``, ``recoverableDays``), optional ``contentType`` and ``tags``; a deleted
record adds ``deletedDate`` and ``scheduledPurgeDate``. Records carry no URLs.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

Record = dict[str, Any]
Records = list[Record]  # alias: the class below has a method named ``list``

RECOVERY_LEVEL = "Recoverable+Purgeable"
RECOVERABLE_DAYS = 90
_DAY = 86400
_HELP = "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"


class SecretError(Exception):
    """A Key Vault data-plane error: ``status``, ``code`` and Key Vault's ``message``."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner

    def body(self) -> dict[str, Any]:
        """The error as Key Vault answers it: ``{"error": {"code", "message"[, innererror]}}``."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return {"error": error}


class SecretNotFound(SecretError):
    def __init__(self, message: str) -> None:
        super().__init__(404, "SecretNotFound", message)


class SecretConflict(SecretError):
    def __init__(self, message: str, inner: str) -> None:
        super().__init__(409, "Conflict", message, inner)


def _not_found(name: str) -> SecretNotFound:
    return SecretNotFound(
        f"A secret with (name/id) {name} was not found in this key vault. If you recently "
        f"deleted this secret you may be able to recover it using the correct recovery "
        f"command. {_HELP}"
    )


def _version_not_found(name: str, version: str) -> SecretNotFound:
    return SecretNotFound(
        f"A secret with (name/id) {name}/{version} was not found in this key vault. {_HELP}"
    )


def _deleted_not_found(name: str) -> SecretNotFound:
    return SecretNotFound(f"Deleted Secret not found: {name}")


def _is_deleted_conflict(name: str) -> SecretConflict:
    return SecretConflict(
        f"Secret {name} is currently in a deleted but recoverable state, and its name cannot "
        f"be reused; in this state, the secret can only be recovered or purged.",
        "ObjectIsDeletedButRecoverable",
    )


class _Secret:
    """One secret name: its versions (oldest first) and, when soft-deleted, deletion times."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.versions: list[Record] = []
        self.deleted: dict[str, int] | None = None  # deletedDate, scheduledPurgeDate

    def latest(self) -> Record:
        return self.versions[-1]

    def find(self, version: str) -> Record | None:
        for record in self.versions:
            if record["version"].lower() == version.lower():
                return record
        return None


def _default_vault_url(vault: str) -> str:
    return f"https://{vault}.vault.azure.net/"


class SecretStore:
    """Thread-safe secrets of every vault. All methods are atomic; returned dicts are copies."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.RLock()
        self._vaults: dict[str, dict[str, _Secret]] = {}
        self._clock = clock
        self._url_resolver: Callable[[str], str] = _default_vault_url

    # -- URLs ---------------------------------------------------------------------------------
    def set_url_resolver(self, resolver: Callable[[str], str]) -> None:
        """Install the data plane's ``vault -> URL`` rule (called by the Key Vault plane)."""
        self._url_resolver = resolver

    def vault_url(self, vault: str) -> str:
        """The vault's data-plane URL with a trailing slash (``properties.vaultUri``)."""
        return self._url_resolver(vault)

    # -- helpers ------------------------------------------------------------------------------
    def _now(self) -> int:
        return int(self._clock())

    def _secrets(self, vault: str) -> dict[str, _Secret]:
        return self._vaults.setdefault(vault.lower(), {})

    def _live(self, vault: str, name: str) -> _Secret:
        secret = self._secrets(vault).get(name.lower())
        if secret is None or secret.deleted is not None or not secret.versions:
            raise _not_found(name)
        return secret

    def _deleted(self, vault: str, name: str) -> _Secret:
        secret = self._secrets(vault).get(name.lower())
        if secret is None or secret.deleted is None:
            raise _deleted_not_found(name)
        return secret

    @staticmethod
    def _out(secret: _Secret, record: Record) -> Record:
        out = copy.deepcopy(record)
        out["name"] = secret.name
        if secret.deleted is not None:
            out.update(secret.deleted)
        return out

    # -- live secrets -------------------------------------------------------------------------
    def set(
        self,
        vault: str,
        name: str,
        value: str,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        enabled: bool = True,
    ) -> Record:
        """Create a new version (always, even with an unchanged value). Raises SecretConflict."""
        with self._lock:
            secrets = self._secrets(vault)
            secret = secrets.get(name.lower())
            if secret is not None and secret.deleted is not None:
                raise _is_deleted_conflict(secret.name)
            if secret is None:
                secret = secrets[name.lower()] = _Secret(name)
            now = self._now()
            record: Record = {
                "name": secret.name,
                "version": uuid.uuid4().hex,
                "value": value,
                "attributes": {
                    "enabled": enabled,
                    "created": now,
                    "updated": now,
                    "recoveryLevel": RECOVERY_LEVEL,
                    "recoverableDays": RECOVERABLE_DAYS,
                },
            }
            if content_type is not None:
                record["contentType"] = content_type
            if tags is not None:
                record["tags"] = dict(tags)
            secret.versions.append(record)
            return self._out(secret, record)

    def get(self, vault: str, name: str, version: str | None = None) -> Record:
        """The latest or the given version. Raises SecretNotFound (also when soft-deleted)."""
        with self._lock:
            secret = self._live(vault, name)
            if not version:
                return self._out(secret, secret.latest())
            record = secret.find(version)
            if record is None:
                raise _version_not_found(name, version)
            return self._out(secret, record)

    def update(
        self,
        vault: str,
        name: str,
        version: str | None = None,
        *,
        enabled: bool | None = None,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        not_before: int | None = None,
        expires: int | None = None,
    ) -> Record:
        """Change attributes of one version (latest when ``version`` is empty); None = keep."""
        with self._lock:
            secret = self._live(vault, name)
            record = secret.find(version) if version else secret.latest()
            if record is None:
                raise _version_not_found(name, version or "")
            attributes = record["attributes"]
            if enabled is not None:
                attributes["enabled"] = enabled
            if not_before is not None:
                attributes["nbf"] = not_before
            if expires is not None:
                attributes["exp"] = expires
            if content_type is not None:
                record["contentType"] = content_type
            if tags is not None:
                record["tags"] = dict(tags)
            attributes["updated"] = self._now()
            return self._out(secret, record)

    def list(self, vault: str) -> Records:
        """Latest version of every live (not deleted) secret, sorted by lower-cased name."""
        with self._lock:
            secrets = self._secrets(vault)
            return [
                self._out(s, s.latest())
                for key, s in sorted(secrets.items())
                if s.deleted is None and s.versions
            ]

    def versions(self, vault: str, name: str) -> Records:
        """Every version of a live secret, oldest first; [] for an unknown or deleted name."""
        with self._lock:
            secret = self._secrets(vault).get(name.lower())
            if secret is None or secret.deleted is not None:
                return []
            return [self._out(secret, r) for r in secret.versions]

    # -- soft delete --------------------------------------------------------------------------
    def delete(self, vault: str, name: str) -> Record:
        """Soft-delete every version; returns the latest as a deleted record."""
        with self._lock:
            secret = self._live(vault, name)
            now = self._now()
            secret.deleted = {
                "deletedDate": now,
                "scheduledPurgeDate": now + RECOVERABLE_DAYS * _DAY,
            }
            return self._out(secret, secret.latest())

    def get_deleted(self, vault: str, name: str) -> Record:
        """The deleted secret's latest version. Raises SecretNotFound when not soft-deleted."""
        with self._lock:
            secret = self._deleted(vault, name)
            return self._out(secret, secret.latest())

    def list_deleted(self, vault: str) -> Records:
        """Every soft-deleted secret (latest version), sorted by lower-cased name."""
        with self._lock:
            secrets = self._secrets(vault)
            return [self._out(s, s.latest()) for key, s in sorted(secrets.items()) if s.deleted]

    def recover(self, vault: str, name: str) -> Record:
        """Undo a soft delete (all versions come back); returns the latest version."""
        with self._lock:
            secret = self._deleted(vault, name)
            secret.deleted = None
            return self._out(secret, secret.latest())

    def purge(self, vault: str, name: str) -> None:
        """Remove a soft-deleted secret for good. Raises SecretNotFound when not deleted."""
        with self._lock:
            secret = self._deleted(vault, name)
            del self._secrets(vault)[secret.name.lower()]

    def drop_vault(self, vault: str) -> None:
        """Forget every secret of a vault (the vault itself was deleted)."""
        with self._lock:
            self._vaults.pop(vault.lower(), None)

    # -- reset --------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every vault's secrets."""
        with self._lock:
            self._vaults = {}

    def snapshot(self) -> object:
        """An opaque deep copy of the whole state, for ``restore``."""
        with self._lock:
            return copy.deepcopy(self._vaults)

    def restore(self, snapshot: object) -> None:
        """Return to a state taken by ``snapshot`` (the snapshot stays reusable)."""
        if not isinstance(snapshot, dict):
            raise TypeError("restore() takes a value returned by snapshot()")
        with self._lock:
            self._vaults = copy.deepcopy(snapshot)


def secret_id(vault_url: str, name: str, version: str | None = None) -> str:
    """``{vault_url}secrets/{name}[/{version}]`` (``vault_url`` with or without a slash)."""
    base = vault_url.rstrip("/")
    return f"{base}/secrets/{name}/{version}" if version else f"{base}/secrets/{name}"


def bundle(vault_url: str, record: Record, *, item: bool = False) -> dict[str, Any]:
    """A record as Key Vault's wire body: SecretBundle, or SecretItem when ``item`` (no value,
    id without version); deleted records gain ``recoveryId``/``deletedDate``/
    ``scheduledPurgeDate`` (DeletedSecretBundle / DeletedSecretItem)."""
    body: dict[str, Any] = {}
    if not item:
        body["value"] = record["value"]
        body["id"] = secret_id(vault_url, record["name"], record["version"])
    else:
        body["id"] = secret_id(vault_url, record["name"])
    if "contentType" in record:
        body["contentType"] = record["contentType"]
    body["attributes"] = dict(record["attributes"])
    if "tags" in record:
        body["tags"] = dict(record["tags"])
    if "deletedDate" in record:
        body["recoveryId"] = f"{vault_url.rstrip('/')}/deletedsecrets/{record['name']}"
        body["deletedDate"] = record["deletedDate"]
        body["scheduledPurgeDate"] = record["scheduledPurgeDate"]
    return body

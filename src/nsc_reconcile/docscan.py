"""Credential hygiene (seed §9): find plain-text credentials in documents (`scan-docs`).

Two ways: detect-secrets' detectors (with ours from `docscan_plugins`) for anything shaped
like a credential, and, given the desired state, the current values of its Key Vault secrets,
compared in memory. A finding says where (file:line:column) and what kind, never the text
found. Reads files and the vault's data plane; writes only the baseline file, when asked.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsc_reconcile.azure import Clients
    from nsc_reconcile.model.state import DesiredState
    from nsc_reconcile.redaction import Redactor

# Directories never walked into (explicitly named files are scanned wherever they are).
IGNORED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
        ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "site-packages",
    }
)  # fmt: skip
VAULT_VALUE = "Key Vault secret value"
MIN_VALUE_LENGTH = 8  # shorter sensitive values would match ordinary words
BASELINE_VERSION = 1

PLUGINS_FILE = Path(__file__).with_name("docscan_plugins.py")
# detect-secrets' own detectors that find credentials. Left out: IPPublicDetector (an
# address is not a credential: the generated documents list endpoint IPs) and
# KeywordDetector (DocumentKeywordDetector is it, reading Markdown like a config file).
LIBRARY_PLUGINS: tuple[dict[str, Any], ...] = (
    {"name": "ArtifactoryDetector"},
    {"name": "AWSKeyDetector"},
    {"name": "AzureStorageKeyDetector"},
    {"name": "Base64HighEntropyString", "limit": 4.5},
    {"name": "BasicAuthDetector"},  # scheme://user:password@host, postgres:// included
    {"name": "CloudantDetector"},
    {"name": "DiscordBotTokenDetector"},
    {"name": "GitHubTokenDetector"},
    {"name": "GitLabTokenDetector"},
    {"name": "HexHighEntropyString", "limit": 3.0},
    {"name": "IbmCloudIamDetector"},
    {"name": "IbmCosHmacDetector"},
    {"name": "JwtTokenDetector"},
    {"name": "MailchimpDetector"},
    {"name": "NpmDetector"},
    {"name": "OpenAIDetector"},
    {"name": "PrivateKeyDetector"},
    {"name": "PypiTokenDetector"},
    {"name": "SendGridDetector"},
    {"name": "SlackDetector"},
    {"name": "SoftlayerDetector"},
    {"name": "SquareOAuthDetector"},
    {"name": "StripeDetector"},
    {"name": "TelegramBotTokenDetector"},
    {"name": "TwilioKeyDetector"},
)
OUR_PLUGINS = (
    "AzureKeyDetector",
    "DatabricksTokenDetector",
    "DocumentKeywordDetector",
    "LangfuseKeyDetector",
)
# detect-secrets' default false-positive filters, and ours. Not included:
# is_ignored_due_to_verification_policies, so no plugin ever calls a service to verify.
LIBRARY_FILTERS = (
    "allowlist.is_line_allowlisted",
    "heuristic.is_indirect_reference",
    "heuristic.is_likely_id_string",
    "heuristic.is_lock_file",
    "heuristic.is_not_alphanumeric_string",
    "heuristic.is_potential_uuid",
    "heuristic.is_prefixed_with_dollar_sign",
    "heuristic.is_sequential_string",
    "heuristic.is_swagger_file",
    "heuristic.is_templated_secret",
)
OUR_FILTERS = ("is_digest_field", "is_prose", "is_secret_name")
# When detectors overlap on one span, the most specific names it.
_GENERIC_TYPES = {
    "Secret Keyword": 2,
    "Base64 High Entropy String": 3,
    "Hex High Entropy String": 3,
}


class ScanError(Exception):
    """The scan cannot be done as asked: a missing path, an unreadable baseline, a Key Vault
    value that cannot be read. The message never holds a value."""


@dataclass(frozen=True, order=True)
class Finding:
    """One credential in a document: where and what kind; ``key`` is the Key Vault key whose
    current value it is. Holds no part of the text found."""

    path: str
    line: int
    column: int  # 1-based, as editors show it
    type: str
    key: str | None = None
    line_hash: str = field(default="", compare=False, repr=False)  # of the line, not the value

    def describe(self) -> str:
        return f"{self.type} (Key Vault key {self.key})" if self.key else self.type

    def render(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.describe()}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "file": self.path,
            "line": self.line,
            "column": self.column,
            "type": self.type,
        }
        if self.key:
            data["key"] = self.key
        return data


class VaultValues:
    """The current values of Key Vault secrets, held in memory only to compare document text
    with: never rendered (``repr`` names the keys only), never written anywhere."""

    def __init__(self, values: dict[str, str]) -> None:
        self.names = sorted(values)
        # (text to look for, key name, how the value is written there)
        self._forms: list[tuple[str, str, str]] = []
        for name, value in values.items():
            forms: dict[str, str] = {}  # text -> how: the value as written, else encoded
            forms.setdefault(value, "")
            forms.setdefault(urllib.parse.quote(value, safe=""), "URL-encoded")
            forms.setdefault(base64.b64encode(value.encode()).decode(), "base64")
            for text, how in forms.items():
                self._forms.append((text, name, how))

    def __repr__(self) -> str:
        return f"VaultValues(keys={self.names})"

    def find(self, line: str) -> Iterator[tuple[int, int, str, str]]:
        """(start, end, key name, form) of every value found in ``line``."""
        for text, name, how in self._forms:
            start = line.find(text)
            while start >= 0:
                yield start, start + len(text), name, how
                start = line.find(text, start + len(text))


@dataclass
class ScanResult:
    findings: list[Finding]
    files: int


def _line_hash(line: str) -> str:
    return "sha256:" + hashlib.sha256(line.strip().encode()).hexdigest()


def iter_files(paths: Iterable[Path], skip: Iterable[Path] = ()) -> Iterator[Path]:
    """Files to scan: each file named, and the files under each directory (sorted, not
    entering IGNORED_DIRS or directory links). Raises ScanError, before yielding anything,
    when a path does not exist."""
    paths = list(paths)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ScanError(f"no such file or directory: {', '.join(missing)}")
    seen = {p.resolve() for p in skip}  # each file once, the skipped ones never

    def first_time(path: Path) -> bool:
        resolved = path.resolve()
        if resolved in seen:
            return False
        seen.add(resolved)
        return True

    for path in paths:
        if path.is_file():
            if first_time(path):
                yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
            for name in sorted(files):
                found = Path(root) / name
                if found.is_file() and first_time(found):
                    yield found


def _read_lines(path: Path) -> list[str] | None:
    """The file's lines as detect-secrets numbers them (universal newlines), None for a
    binary file."""
    raw = path.read_bytes()
    if b"\0" in raw[:8192]:
        return None
    text = io.StringIO(raw.decode("utf-8", errors="replace"), newline=None)
    return [line.rstrip("\n") for line in text]


def _span(line: str, secret: str | None) -> tuple[int, int]:
    at = line.find(secret) if secret else -1
    return (at, at + len(secret)) if secret and at >= 0 else (0, len(line))


def _merge(spans: list[tuple[int, int, int, str, str | None]]) -> list[tuple[int, str, str | None]]:
    """One finding per place: where detectors overlap, the most specific (lowest rank)
    names it. Input (rank, start, end, type, key); output (start, type, key)."""
    taken: list[tuple[int, int]] = []
    kept: list[tuple[int, str, str | None]] = []
    for _rank, start, end, kind, key in sorted(spans):
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            continue
        taken.append((start, end))
        kept.append((start, kind, key))
    return sorted(kept)


def scan(
    paths: Iterable[Path], vault: VaultValues | None = None, skip: Iterable[Path] = ()
) -> ScanResult:
    """Scan files and directories for plain-text credentials. Never writes; never returns
    or logs the text found. Raises ScanError for a missing path."""
    from detect_secrets.core.plugins import initialize
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import transient_settings

    files = list(iter_files(paths, skip))
    plugins = [
        *LIBRARY_PLUGINS,
        *({"name": name, "path": f"file://{PLUGINS_FILE}"} for name in OUR_PLUGINS),
    ]
    filters = [
        *({"path": f"detect_secrets.filters.{name}"} for name in LIBRARY_FILTERS),
        *({"path": f"file://{PLUGINS_FILE}::{name}"} for name in OUR_FILTERS),
    ]
    findings: list[Finding] = []
    with transient_settings({"plugins_used": plugins, "filters_used": filters}):
        initialize.from_file(str(PLUGINS_FILE))  # as detect-secrets' own --plugin does
        for path in files:
            try:
                lines = _read_lines(path)
            except OSError as error:
                raise ScanError(f"cannot read {path}: {error.strerror or error}") from None
            if lines is None:
                continue
            by_line: dict[int, list[tuple[int, int, int, str, str | None]]] = {}
            for secret in scan_file(str(path)):
                number = int(secret.line_number)
                text = lines[number - 1] if 0 < number <= len(lines) else ""
                start, end = _span(text, secret.secret_value)
                rank = _GENERIC_TYPES.get(secret.type, 1)
                by_line.setdefault(number, []).append((rank, start, end, secret.type, None))
            if vault is not None:
                for number, text in enumerate(lines, start=1):
                    for start, end, name, how in vault.find(text):
                        kind = f"{VAULT_VALUE} ({how})" if how else VAULT_VALUE
                        by_line.setdefault(number, []).append((0, start, end, kind, name))
            for number, spans in sorted(by_line.items()):
                text = lines[number - 1] if 0 < number <= len(lines) else ""
                for start, kind, key in _merge(spans):
                    findings.append(
                        Finding(str(path), number, start + 1, kind, key, _line_hash(text))
                    )
    return ScanResult(findings=findings, files=len(files))


class Baseline:
    """Accepted findings: by file (relative to the baseline's folder), line hash and type,
    so a moved line stays accepted and a changed one does not. A Key Vault value is never
    accepted: a live credential in a document is removed and rotated."""

    def __init__(self, path: Path, entries: list[dict[str, Any]]) -> None:
        self.path = path
        self.entries = entries
        self._keys = {(e.get("file"), e.get("line_hash"), e.get("type")) for e in entries}

    @classmethod
    def load(cls, path: Path) -> Baseline:
        """The baseline at ``path`` (empty when the file does not exist yet). Raises
        ScanError when it is not a baseline file."""
        if not path.exists():
            return cls(path, [])
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data["accepted"]
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise TypeError("accepted: not a list of objects")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ScanError(f"{path}: not a scan-docs baseline ({error})") from None
        return cls(path, entries)

    def _file_of(self, finding: Finding) -> str:
        relative = os.path.relpath(os.path.abspath(finding.path), self.path.parent.resolve())
        return Path(relative).as_posix()

    def _key_of(self, finding: Finding) -> tuple[str, str, str]:
        return (self._file_of(finding), finding.line_hash, finding.type)

    def accepts(self, finding: Finding) -> bool:
        return finding.key is None and self._key_of(finding) in self._keys

    def write(self, findings: Iterable[Finding]) -> int:
        """Accept exactly ``findings`` (Key Vault values excepted), keeping notes such as a
        ``reason`` of entries that stay; returns how many entries were written."""
        previous = {(e.get("file"), e.get("line_hash"), e.get("type")): e for e in self.entries}
        entries: dict[tuple[str, str, str], dict[str, Any]] = {}
        for finding in findings:
            if finding.key is not None:
                continue
            key = self._key_of(finding)
            entry = {"file": key[0], "line_hash": key[1], "type": key[2]}
            entries[key] = {**previous.get(key, {}), **entry}
        self.entries = [entries[k] for k in sorted(entries)]
        self._keys = set(entries)
        data = {
            "about": "scan-docs accepted findings (nsc-reconcile scan-docs --update-baseline): "
            "false positives only; a real credential is removed and rotated, never accepted",
            "version": BASELINE_VERSION,
            "accepted": self.entries,
        }
        self.path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return len(self.entries)


def read_vault_values(
    state: DesiredState, clients: Clients, redactor: Redactor
) -> tuple[VaultValues, list[str]]:
    """The current values of the desired state's sensitive Key Vault secrets, read through
    the data plane, each registered with ``redactor``; and notes on those not compared
    (absent, too short). Raises ScanError when the vault or a value cannot be read."""
    from nsc_reconcile.engine import Engine

    if state.secrets is None:
        return VaultValues({}), ["the desired state declares no Key Vault secrets"]
    vault = state.secrets.vault
    engine = Engine(state, clients, redactor=redactor)
    live = engine.context.live(f"key_vault/{vault}")
    uri = live.fields.get("properties.vaultUri") if live is not None else None
    if not uri:
        raise ScanError(f"Key Vault {vault} does not exist or has no vaultUri")
    client = clients.secret_client(str(uri))
    values: dict[str, str] = {}
    notes: list[str] = []
    for item in state.secrets.items:
        if not item.sensitive:
            continue
        try:
            value = client.get_secret(item.name).value
        except Exception as error:
            if getattr(error, "status_code", None) == 404:
                notes.append(f"{item.name}: not in Key Vault {vault}")
                continue
            raise ScanError(
                f"cannot read Key Vault secret {item.name} of {vault} through the data plane "
                f"({type(error).__name__}); scan-docs compares documents with the current "
                "values, so run it where the vault's data plane is reachable"
            ) from None
        if not value:
            notes.append(f"{item.name}: empty")
            continue
        redactor.add(value)
        if len(value) < MIN_VALUE_LENGTH:
            notes.append(f"{item.name}: shorter than {MIN_VALUE_LENGTH} characters")
            continue
        values[item.name] = value
    return VaultValues(values), notes

"""The documents on disk: which sections each one gets, updating them in place (only the
owned sections; a file is rewritten only when a byte changes) and checking them for CI.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nsc_reconcile.documents.markers import DocumentError, find_blocks, stale_sections, update_text
from nsc_reconcile.documents.render import CREDENTIAL_SECTIONS, INFRA_SECTIONS
from nsc_reconcile.model.docs import DocumentPaths


@dataclass(frozen=True)
class DocumentStatus:
    """What ``check`` found in one document: (section, "missing" | "stale") pairs."""

    path: Path
    problems: tuple[tuple[str, str], ...]

    @property
    def current(self) -> bool:
        return not self.problems


def default_documents(paths: DocumentPaths, base: Path) -> list[Path]:
    """The desired state's two documents, relative to ``base`` (its file's directory)."""
    return [base / paths.infra_manual, base / paths.team_credentials]


def wanted_sections(path: Path, text: str, paths: DocumentPaths, known: Sequence[str]) -> list[str]:
    """The sections ``path`` must hold: by its name (the infra manual gets 4.3, 6.6, 7.2, 7.3;
    the credentials document `credentials`), else the ones it has markers for. Raises
    DocumentError for a document of another name without markers."""
    if path.name == Path(paths.team_credentials).name:
        return list(CREDENTIAL_SECTIONS)
    if path.name == Path(paths.infra_manual).name:
        return list(INFRA_SECTIONS)
    present = [b.section for b in find_blocks(text, known)]
    if not present:
        raise DocumentError(
            f"{path}: no nsc-reconcile markers, and it is neither {paths.infra_manual} nor "
            f"{paths.team_credentials}; add a section with <!-- nsc-reconcile:begin 4.3 --> "
            "and <!-- nsc-reconcile:end 4.3 --> (sections: " + ", ".join(known) + ")"
        )
    return present


def _read(path: Path) -> str:
    """The document's text exactly (line breaks kept), "" when it does not exist."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError as error:
        raise DocumentError(f"{path}: not UTF-8 text ({error.reason})") from None


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a reader never sees half a document), keeping its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode("utf-8"))
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def update_document(path: Path, sections: Mapping[str, str], paths: DocumentPaths) -> bool:
    """Rewrite the owned sections of ``path`` (creating it when missing); True when a byte
    changed. Idempotent: a second update with the same sections changes nothing."""
    text = _read(path)
    wanted = wanted_sections(path, text, paths, list(sections))
    try:
        updated = update_text(text, sections, wanted)
    except DocumentError as error:
        raise DocumentError(f"{path}: {error}") from None
    if updated == text and path.exists():
        return False
    _write(path, updated)
    return True


def check_document(path: Path, sections: Mapping[str, str], paths: DocumentPaths) -> DocumentStatus:
    """Which owned sections of ``path`` differ from ``sections`` or are missing. Never writes."""
    if not path.exists():
        wanted = wanted_sections(path, "", paths, list(sections))
        return DocumentStatus(path, tuple((s, "missing") for s in wanted))
    text = _read(path)
    wanted = wanted_sections(path, text, paths, list(sections))
    try:
        return DocumentStatus(path, tuple(stale_sections(text, sections, wanted)))
    except DocumentError as error:
        raise DocumentError(f"{path}: {error}") from None

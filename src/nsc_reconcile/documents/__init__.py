"""The documents the plan asks for after applying (seed §7): Infra_Manual.md sections 4.3,
6.6, 7.2, 7.3 and TEAM_CREDENTIALS.md, rendered from the desired state and live state.

Modules: ``facts`` (the values shown), ``gather`` / ``gather_security`` (read them once through
the engine's plan), ``render`` / ``render_alerts`` / ``render_security`` (Markdown, English or
Korean ``words``), ``markers`` (owned sections of a document) and ``files`` (update and check
documents on disk). Reads Azure only; never shows a secret value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nsc_reconcile.documents.facts import Facts
from nsc_reconcile.documents.files import (
    DocumentStatus,
    check_document,
    default_documents,
    update_document,
)
from nsc_reconcile.documents.gather import gather_facts
from nsc_reconcile.documents.markers import DocumentError, begin_marker, end_marker
from nsc_reconcile.documents.render import (
    CREDENTIAL_SECTIONS,
    INFRA_SECTIONS,
    SECTIONS,
    render_sections,
)

if TYPE_CHECKING:
    from nsc_reconcile.engine import Engine


def render_documents(engine: Engine, language: str | None = None) -> tuple[Facts, dict[str, str]]:
    """The facts (read once: one engine plan) and every section rendered in ``language``
    (default: the desired state's ``docs.language``), passed through the engine's redactor
    as a last guard. Reads only."""
    facts = gather_facts(engine)
    sections = render_sections(facts, language or engine.state.docs.language)
    redact = engine.redactor.redact
    return facts, {section: redact(text) for section, text in sections.items()}


__all__ = [
    "CREDENTIAL_SECTIONS",
    "INFRA_SECTIONS",
    "SECTIONS",
    "DocumentError",
    "DocumentStatus",
    "Facts",
    "begin_marker",
    "check_document",
    "default_documents",
    "end_marker",
    "gather_facts",
    "render_documents",
    "render_sections",
    "update_document",
]

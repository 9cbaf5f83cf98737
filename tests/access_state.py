"""Test helper: the repository's desired state with or without its access sections (the
consumers' identities and grants), for tests that declare their own."""

from __future__ import annotations

import re

from tests.paths import DESIRED_STATE

ACCESS_SECTIONS = ("user_assigned_identities", "role_assignments")
_TOP_LEVEL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")


def without_consumers(text: str | None = None) -> str:
    """``text`` (default: desired_state.yaml) without its top-level ``ACCESS_SECTIONS``."""
    kept, skipping = [], False
    for line in (DESIRED_STATE.read_text() if text is None else text).splitlines(True):
        top = _TOP_LEVEL.match(line)
        if top is not None:
            skipping = top[1] in ACCESS_SECTIONS
        if not skipping:
            kept.append(line)
    return "".join(kept)

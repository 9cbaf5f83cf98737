"""Shared fixtures for every test."""

from __future__ import annotations

import pytest

from tests.paths import DESIRED_STATE


@pytest.fixture
def seed_text() -> str:
    """The repository's desired_state.yaml, as text to mutate."""
    return DESIRED_STATE.read_text(encoding="utf-8")

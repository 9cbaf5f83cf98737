"""Paths of the repository's own files, for tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DESIRED_STATE = ROOT / "desired_state.yaml"

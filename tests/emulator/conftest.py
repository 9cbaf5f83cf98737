"""Emulator tests use the shared fixtures of tests/conftest.py; ``control`` is re-exported
for modules that import it from here."""

from tests.conftest import control

__all__ = ["control"]

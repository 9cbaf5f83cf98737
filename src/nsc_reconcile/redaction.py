"""Keeps secret values out of every output: reports, plan files, logs and error messages.

Each run registers every secret value it handles (generated, read from outputs, from the
environment, read from Key Vault to be written elsewhere); `redact` replaces any of them, in the
forms an echo may take, by "(sensitive)". The logging filter applies the same to every record,
and the CLI to any error it prints.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.parse

from nsc_reconcile.changes import SENSITIVE

_MIN_LENGTH = 4  # shorter values would redact ordinary words


class Redactor:
    """The secret values of one run, and their removal from text. Thread-safe."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        """Register a secret value to hide from now on, with the forms an echo may take:
        JSON-escaped (``\\/``, ``\\"``), URL-encoded and base64 (a Kubernetes Secret's data)."""
        if not value or len(value) < _MIN_LENGTH:
            return
        forms = {
            value,
            json.dumps(value)[1:-1],
            json.dumps(value)[1:-1].replace("/", "\\/"),
            urllib.parse.quote(value, safe=""),
            base64.b64encode(value.encode()).decode(),
        }
        with self._lock:
            self._values.update(forms)

    def redact(self, text: str) -> str:
        """``text`` with every registered secret replaced by "(sensitive)"."""
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, SENSITIVE)
        return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's final message."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

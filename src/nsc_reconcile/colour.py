"""Colour for terminals: ANSI colours on the text of plans and verify reports, only when the
output is a terminal and NO_COLOR is unset or empty (https://no-color.org).

Applied after rendering, to the text format only: JSON, Markdown and JUnit never pass here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO

GREEN, YELLOW, RED = "32", "33", "31"
# Plan lines by their leading symbol (after the indent): create, update, replace, blocked,
# delete; notes (`! address: note`) are warnings, red too.
_PLAN = {"+": GREEN, "~": YELLOW, "!": RED, "x": RED, "-": RED}
_VERIFY = {"PASS": GREEN, "FAIL": RED, "DONE": GREEN, "NOT DONE": RED}


def wanted(stream: IO[str], environ: Mapping[str, str] | None = None) -> bool:
    """Colour for ``stream``: it is a terminal, NO_COLOR is unset or empty (no-color.org:
    any non-empty value disables it) and TERM is not ``dumb``."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _paint(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m"


def plan_text(text: str) -> str:
    """A text plan with each `+`, `~`, `!`, `x` or `-` line coloured (indent kept plain)."""
    out = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        code = _PLAN.get(body[:1]) if body[1:2] == " " else None
        out.append(line[: len(line) - len(body)] + _paint(body, code) if code else line)
    return "\n".join(out)


def verify_text(text: str) -> str:
    """A text verify report with each check's PASS or FAIL (and each gate item's DONE or NOT
    DONE) coloured."""
    out = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        indent = line[: len(line) - len(body)]
        for word in ("NOT DONE", "DONE", "PASS", "FAIL"):
            if body.startswith(word + " "):
                line = indent + _paint(word, _VERIFY[word]) + body[len(word) :]
                break
        out.append(line)
    return "\n".join(out)

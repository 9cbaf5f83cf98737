"""Small Markdown helpers of the documents: code spans, table cells and tables, the section
heading. Pure; the same input always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def code(value: object, missing: str) -> str:
    """``value`` as a code span, ``missing`` when None or empty."""
    if value is None or value == "":
        return missing
    text = str(value).replace("`", "'")
    return f"`{text}`"


def codes(values: Iterable[object], missing: str, separator: str = ", ") -> str:
    """Several code spans, ``missing`` when there are none."""
    spans = [code(v, missing) for v in values if v is not None and v != ""]
    return separator.join(spans) if spans else missing


def cell(text: str) -> str:
    """Text safe inside a table cell: one line, pipes escaped."""
    return " ".join(text.split("\n")).replace("|", "\\|")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table, one list item per line."""
    lines = [
        "| " + " | ".join(cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def heading(title: str, intro: str, level: int = 3) -> list[str]:
    """The section's heading and its one-line note (what generated it)."""
    return [f"{'#' * level} {title}", "", intro, ""]


def finish(lines: list[str]) -> str:
    """The section's text: lines joined, trailing blank lines dropped, one final newline."""
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"

"""The sections of a document that nsc-reconcile owns: the text between
``<!-- nsc-reconcile:begin ID -->`` and ``<!-- nsc-reconcile:end ID -->``. Replacing them keeps
every other byte; a section a document lacks is appended at its end. Pure text, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_MARKER = re.compile(r"<!--[ \t]*nsc-reconcile:(begin|end)[ \t]+([^\s>]+)[ \t]*-->")


class DocumentError(ValueError):
    """The markers of a document are broken (unpaired, nested, repeated or unknown)."""


@dataclass(frozen=True)
class Block:
    """One owned section: ``text[start:end]`` is its content (after the begin marker's line
    break, up to the end marker)."""

    section: str
    start: int
    end: int


def begin_marker(section: str) -> str:
    return f"<!-- nsc-reconcile:begin {section} -->"


def end_marker(section: str) -> str:
    return f"<!-- nsc-reconcile:end {section} -->"


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def newline_of(text: str) -> str:
    """The document's line break: CRLF when its first line break is one, else LF."""
    first = text.find("\n")
    return "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"


def find_blocks(text: str, known: Sequence[str]) -> list[Block]:
    """Every owned section of ``text``, in order. Raises DocumentError naming the line of an
    unpaired, nested, repeated or unknown marker."""
    blocks: list[Block] = []
    open_section: tuple[str, int, int] | None = None  # (section, content start, line)
    for match in _MARKER.finditer(text):
        kind, section = match.group(1), match.group(2)
        line = _line(text, match.start())
        if section not in known:
            raise DocumentError(
                f"line {line}: unknown section {section!r} (known: {', '.join(known)})"
            )
        if kind == "begin":
            if open_section is not None:
                raise DocumentError(
                    f"line {line}: begin {section} inside section {open_section[0]} "
                    f"(opened on line {open_section[2]})"
                )
            if any(b.section == section for b in blocks):
                raise DocumentError(f"line {line}: section {section} appears twice")
            start = match.end()
            for brk in ("\r\n", "\n"):
                if text.startswith(brk, start):
                    start += len(brk)
                    break
            open_section = (section, start, line)
        else:
            if open_section is None or open_section[0] != section:
                raise DocumentError(f"line {line}: end {section} without its begin")
            blocks.append(Block(section, open_section[1], match.start()))
            open_section = None
    if open_section is not None:
        raise DocumentError(f"line {open_section[2]}: begin {open_section[0]} is never ended")
    return blocks


def _content(rendered: str, newline: str) -> str:
    """A section's text as stored between its markers (the document's line breaks)."""
    return rendered.replace("\n", newline)


def update_text(text: str, sections: Mapping[str, str], wanted: Sequence[str]) -> str:
    """``text`` with the content of each owned section replaced by ``sections[id]`` and each
    ``wanted`` section it lacks appended at the end, with markers. Every other byte is kept;
    updating the result again gives the same text."""
    newline = newline_of(text)
    blocks = find_blocks(text, list(sections))
    out: list[str] = []
    position = 0
    for block in blocks:
        out += [text[position : block.start], _content(sections[block.section], newline)]
        position = block.end
    out.append(text[position:])
    result = "".join(out)
    present = {b.section for b in blocks}
    for section in wanted:
        if section in present:
            continue
        if result and not result.endswith(newline):
            result += newline
        if result and not result.endswith(newline * 2):
            result += newline
        result += (
            begin_marker(section)
            + newline
            + _content(sections[section], newline)
            + end_marker(section)
            + newline
        )
    return result


def stale_sections(
    text: str, sections: Mapping[str, str], wanted: Sequence[str]
) -> list[tuple[str, str]]:
    """(section, "missing" | "stale") for each section of ``text`` that differs from
    ``sections`` and each ``wanted`` one it lacks; empty when the document is current."""
    newline = newline_of(text)
    blocks = find_blocks(text, list(sections))
    found = [
        (b.section, "stale")
        for b in blocks
        if text[b.start : b.end] != _content(sections[b.section], newline)
    ]
    present = {b.section for b in blocks}
    found += [(s, "missing") for s in wanted if s not in present]
    return found

"""Problems found in a desired-state file, and the error that carries all of them at once.

Every problem knows where it is (file, line, column), which field (a dotted path) and what was
expected. Used by the loader, the model validators and the policy checks; imports no SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Location:
    """A position in a YAML file; line and column are 1-based, as editors show them."""

    file: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the desired state.

    ``field`` is the dotted path of the offending field (``openai_accounts[0].custom_subdomain``)
    and ``message`` says what is wrong and what is expected.
    """

    location: Location | None
    field: str
    message: str

    def __str__(self) -> str:
        where = str(self.location) if self.location else "<desired state>"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"

    def to_json(self) -> dict[str, object]:
        """For `validate --format json`: file, line and column are null when unknown."""
        loc = self.location
        return {
            "file": str(loc.file) if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "field": self.field,
            "message": self.message,
        }


class DesiredStateError(Exception):
    """The desired state cannot be used; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=_sort_key)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{count} {noun} in the desired state:"]
        lines.extend(f"  {p}" for p in self.problems)
        super().__init__("\n".join(lines))


def _sort_key(problem: Problem) -> tuple[str, int, int, str]:
    if problem.location is None:
        return ("~", 0, 0, problem.field)
    loc = problem.location
    return (str(loc.file), loc.line, loc.column, problem.field)

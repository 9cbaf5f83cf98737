"""The KQL subset that log alert rules use, parsed honestly and run over rows (dicts).

``Table | where ... | summarize ... [by Col, ...] | count | project Col, ... | take N``, with
``==``, ``!=``, ``=~``, ``!~``, ``<``/``<=``/``>``/``>=`` (numbers; datetimes against
``ago(5m)``/``now()``), ``in``/``!in``/``in~``, ``contains``/``has``/``startswith``/
``endswith`` (and ``!``-negated), ``isempty``/``isnotempty``, ``and``/``or``/``not``. Anything
else raises ``KqlError`` naming it: alerting.py then never fires the rule and reports why.
Imports only the stdlib.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["KqlError", "Query", "parse_query", "row_time", "timespan_seconds"]

Row = dict[str, Any]


class KqlError(ValueError):
    """A query outside the supported subset (or malformed): says what and where."""


# ---------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<timespan>\d+(?:\.\d+)?(?:ms|d|h|m|s)(?![A-Za-z0-9_]))
  | (?P<number>\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<op>==|!=|=~|!~|>=|<=|\.\.|[|(),<>=!~+\-*/%.:\[\]{}])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class _Token:
    kind: str  # string | timespan | number | op | name | end
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise KqlError(f"unexpected character {text[position]!r} at {position}")
        kind = match.lastgroup or "space"
        if kind != "space":
            found.append(_Token(kind, match.group(), position))
        position = match.end()
    found.append(_Token("end", "", len(text)))
    return found


def timespan_seconds(text: str) -> float:
    """``5m`` -> 300.0 (KQL timespan literal)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)", text)
    if match is None:
        raise KqlError(f"not a timespan: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def row_time(value: Any) -> float | None:
    """A datetime column value (ISO 8601 string or datetime) as epoch seconds; None if not."""
    if isinstance(value, datetime):
        return value.timestamp()
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:  # Log Analytics times are UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# ------------------------------------------------------------------------ evaluation context


@dataclass(frozen=True)
class Context:
    """When the query runs (epoch seconds) and how emulated durations map to real ones
    (``ago(5m)`` at time scale 0.01 is three seconds before ``now``)."""

    now: float
    scale: float = 1.0


Predicate = Callable[[Row, Context], bool]
Value = Callable[[Context], Any]


def _literal(value: Any) -> Value:
    return lambda _ctx: value


def _equal(left: Any, right: Any, fold: bool) -> bool:
    if left is None or right is None:
        return False
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return float(left) == float(right)
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower() if fold else left == right
    return False


def _order(left: Any, right: Any) -> tuple[float, float] | None:
    """Both sides as comparable numbers (datetimes as epoch seconds), or None."""
    if isinstance(right, _Instant):
        found = row_time(left)
        return (found, right.epoch) if found is not None else None
    if isinstance(left, bool) or isinstance(right, bool):
        return None
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return float(left), float(right)
    return None


@dataclass(frozen=True)
class _Instant:
    epoch: float


_ORDER: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_STRING_OPS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda a, b: b.lower() in a.lower(),
    "startswith": lambda a, b: a.lower().startswith(b.lower()),
    "endswith": lambda a, b: a.lower().endswith(b.lower()),
    # `has` matches whole terms (runs of letters and digits), case-insensitively.
    "has": lambda a, b: (
        re.search(rf"(?<![A-Za-z0-9]){re.escape(b)}(?![A-Za-z0-9])", a, re.I) is not None
    ),
}


# ----------------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Step:
    """One tabular operator after the table."""

    text: str

    def run(self, rows: list[Row], ctx: Context) -> list[Row]:
        raise NotImplementedError


@dataclass(frozen=True)
class Where(Step):
    predicate: Predicate

    def run(self, rows: list[Row], ctx: Context) -> list[Row]:
        return [row for row in rows if self.predicate(row, ctx)]


@dataclass(frozen=True)
class Aggregate:
    name: str  # the output column (count_, sum_X, or as given)
    function: str  # count | sum | avg | min | max | dcount
    column: str | None

    def compute(self, rows: list[Row]) -> Any:
        if self.function == "count":
            return len(rows)
        values = [row.get(self.column or "") for row in rows]
        if self.function == "dcount":
            return len({repr(v) for v in values if v is not None})
        numbers = [
            float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        if self.function == "sum":
            return sum(numbers)
        if not numbers:
            return None
        if self.function == "avg":
            return sum(numbers) / len(numbers)
        return min(numbers) if self.function == "min" else max(numbers)


@dataclass(frozen=True)
class Summarize(Step):
    aggregates: tuple[Aggregate, ...]
    by: tuple[str, ...]

    def run(self, rows: list[Row], ctx: Context) -> list[Row]:
        groups: dict[tuple[str, ...], list[Row]] = {}
        keys: dict[tuple[str, ...], tuple[Any, ...]] = {}
        for row in rows:
            values = tuple(row.get(column) for column in self.by)
            key = tuple(repr(v) for v in values)
            groups.setdefault(key, []).append(row)
            keys.setdefault(key, values)
        if not self.by:  # without `by`, one row even over no input (count_ = 0)
            groups = {(): rows}
            keys = {(): ()}
        out = []
        for key, members in groups.items():
            result: Row = dict(zip(self.by, keys[key], strict=True))
            for aggregate in self.aggregates:
                result[aggregate.name] = aggregate.compute(members)
            out.append(result)
        return out


@dataclass(frozen=True)
class CountRows(Step):
    def run(self, rows: list[Row], ctx: Context) -> list[Row]:
        return [{"Count": len(rows)}]


@dataclass(frozen=True)
class Project(Step):
    columns: tuple[str, ...]

    def run(self, rows: list[Row], ctx: Context) -> list[Row]:
        return [{c: row.get(c) for c in self.columns} for row in rows]


@dataclass(frozen=True)
class Take(Step):
    limit: int

    def run(self, rows: list[Row], ctx: Context) -> list[Row]:
        return rows[: self.limit]


@dataclass(frozen=True)
class Query:
    """A parsed query: its table and operators. ``run`` never raises for data it meets."""

    text: str
    table: str
    steps: tuple[Step, ...]

    def run(self, rows: Iterable[Row], ctx: Context) -> list[Row]:
        """The query's result over ``rows`` (the table's rows the platform selected)."""
        result = list(rows)
        for step in self.steps:
            result = step.run(result, ctx)
        return result


# ---------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.token
        return token.kind == kind and (text is None or token.text == text)

    def accept(self, kind: str, text: str | None = None) -> bool:
        if self.at(kind, text):
            self.index += 1
            return True
        return False

    def expect(self, kind: str, text: str | None = None, what: str = "") -> _Token:
        if not self.at(kind, text):
            wanted = what or (repr(text) if text else kind)
            raise self.error(f"expected {wanted}")
        return self.take()

    def error(self, message: str) -> KqlError:
        token = self.token
        near = repr(token.text) if token.kind != "end" else "the end"
        return KqlError(f"{message} at {near} (position {token.at})")

    def unsupported(self, what: str) -> KqlError:
        return KqlError(f"unsupported KQL: {what} (position {self.token.at})")

    # ---- query ---------------------------------------------------------------------------
    def query(self) -> Query:
        if not self.at("name"):
            raise self.error("a query starts with a table name")
        table = self.take().text
        steps: list[Step] = []
        while not self.at("end"):
            self.expect("op", "|", "'|'")
            start = self.token.at
            word = self.expect("name", what="a tabular operator").text
            steps.append(self.step(word, start))
            if not self.at("end") and not self.at("op", "|"):
                raise self.error(f"unexpected input after '{word}'")
        return Query(self.text, table, tuple(steps))

    def step(self, word: str, start: int) -> Step:
        if word == "where":
            predicate = self.predicate()
            return Where(self._span(start), predicate)
        if word == "summarize":
            aggregates, by = self.summarize()
            return Summarize(self._span(start), aggregates, by)
        if word == "count":
            return CountRows(self._span(start))
        if word == "project":
            return Project(self._span(start), self.columns())
        if word in ("take", "limit"):
            limit = self.expect("number", what="a row count").text
            if "." in limit:
                raise self.error("a row count is a whole number")
            return Take(self._span(start), int(limit))
        self.index -= 1
        raise self.unsupported(f"operator '{word}'")

    def _span(self, start: int) -> str:
        return self.text[start : self.token.at].strip()

    def columns(self) -> tuple[str, ...]:
        names = [self.column()]
        while self.accept("op", ","):
            names.append(self.column())
        return tuple(names)

    def column(self) -> str:
        if not self.at("name"):
            raise self.error("expected a column name")
        if self.tokens[self.index + 1].text == "(":
            raise self.unsupported(f"function '{self.token.text}()'")
        return self.take().text

    # ---- summarize -----------------------------------------------------------------------
    def summarize(self) -> tuple[tuple[Aggregate, ...], tuple[str, ...]]:
        aggregates = [self.aggregate()]
        while self.accept("op", ","):
            aggregates.append(self.aggregate())
        by: tuple[str, ...] = ()
        if self.accept("name", "by"):
            by = self.columns()
        names = [a.name for a in aggregates] + list(by)
        if len(set(names)) != len(names):
            raise self.error("summarize produces a column twice")
        return tuple(aggregates), by

    def aggregate(self) -> Aggregate:
        alias = None
        if self.at("name") and self.tokens[self.index + 1].text == "=":
            alias = self.take().text
            self.take()
        function = self.expect("name", what="an aggregation function").text
        if function not in ("count", "sum", "avg", "min", "max", "dcount"):
            self.index -= 1
            raise self.unsupported(f"aggregation '{function}()'")
        self.expect("op", "(")
        column = None
        if function != "count":
            column = self.column()
        self.expect("op", ")", "')'")
        default = "count_" if function == "count" else f"{function}_{column}"
        return Aggregate(alias or default, function, column)

    # ---- predicates ----------------------------------------------------------------------
    def predicate(self) -> Predicate:
        parts = [self.conjunction()]
        while self.accept("name", "or"):
            parts.append(self.conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda row, ctx: any(p(row, ctx) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.term()]
        while self.accept("name", "and"):
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        return lambda row, ctx: all(p(row, ctx) for p in parts)

    def term(self) -> Predicate:
        if self.accept("op", "("):
            inner = self.predicate()
            self.expect("op", ")", "')'")
            return inner
        if self.at("name", "not") and self.tokens[self.index + 1].text == "(":
            self.take()
            self.take()
            negated = self.predicate()
            self.expect("op", ")", "')'")
            return lambda row, ctx: not negated(row, ctx)
        if self.at("name") and self.token.text in ("isempty", "isnotempty"):
            function = self.take().text
            self.expect("op", "(")
            name = self.column()
            self.expect("op", ")", "')'")
            wanted = function == "isempty"
            return lambda row, _ctx: (row.get(name) in (None, "")) == wanted
        return self.comparison()

    def comparison(self) -> Predicate:
        name = self.column()
        negate = False
        if self.accept("op", "!"):
            negate = True
            if not self.at("name") or self.token.text not in ("in", *_STRING_OPS):
                raise self.error("expected 'in' or a string operator after '!'")
        if self.at("name") and self.token.text == "in":
            self.take()
            fold = self.accept("op", "~")
            values = self.value_list()
            return _in(name, values, fold, negate)
        if self.at("name") and self.token.text in _STRING_OPS:
            matches = _STRING_OPS[self.take().text]
            needle = _unquote(self.expect("string", what="a string").text)

            def string_op(row: Row, _ctx: Context) -> bool:
                value = row.get(name)
                return isinstance(value, str) and matches(value, needle) != negate

            return string_op
        if negate:
            raise self.error("'!' must be followed by 'in' or a string operator")
        operator = self.expect("op", what="a comparison operator").text
        if operator in ("==", "!=", "=~", "!~"):
            right = self.value()
            fold, inverted = operator in ("=~", "!~"), operator.startswith("!")
            return lambda row, ctx: _equal(row.get(name), right(ctx), fold) != inverted
        if operator in _ORDER:
            right = self.value()
            test = _ORDER[operator]

            def ordered(row: Row, ctx: Context) -> bool:
                pair = _order(row.get(name), right(ctx))
                return pair is not None and test(*pair)

            return ordered
        self.index -= 1
        raise self.unsupported(f"operator '{operator}'")

    def value_list(self) -> list[Value]:
        self.expect("op", "(", "'('")
        values = [self.value()]
        while self.accept("op", ","):
            values.append(self.value())
        self.expect("op", ")", "')'")
        return values

    def value(self) -> Value:
        token = self.token
        if token.kind == "string":
            self.take()
            return _literal(_unquote(token.text))
        if token.kind == "number":
            self.take()
            return _literal(float(token.text) if "." in token.text else int(token.text))
        if token.kind == "name" and token.text in ("true", "false"):
            self.take()
            return _literal(token.text == "true")
        if token.kind == "name" and token.text in ("ago", "now"):
            function = self.take().text
            self.expect("op", "(")
            span = 0.0
            if function == "ago":
                span = timespan_seconds(self.expect("timespan", what="a timespan like 5m").text)
            self.expect("op", ")", "')'")
            # Emulated time: ago(5m) at scale 0.01 is 3 real seconds before the evaluation.
            return lambda ctx: _Instant(ctx.now - span * ctx.scale)
        if token.kind == "name" and self.tokens[self.index + 1].text == "(":
            raise self.unsupported(f"function '{token.text}()'")
        raise self.error("expected a literal value")


def _in(name: str, values: Sequence[Value], fold: bool, negate: bool) -> Predicate:
    def test(row: Row, ctx: Context) -> bool:
        value = row.get(name)
        found = any(_equal(value, v(ctx), fold) for v in values)
        return found != negate

    return test


def parse_query(text: str) -> Query:
    """Parse ``text``; raises KqlError naming the unsupported or malformed part."""
    if not text or not text.strip():
        raise KqlError("the query is empty")
    return _Parser(text).query()

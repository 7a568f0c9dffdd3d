"""Portable SQL pieces the metrics need, compiled per dialect (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


class seconds_between(FunctionElement):  # noqa: N801 - reads as SQL
    """Seconds from the first timestamp to the second (negative when the second is earlier)."""

    type = sa.Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between)
def _seconds_between_default(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    # date_part is double precision; EXTRACT is numeric since PostgreSQL 14, several times slower
    # over a month of tickets.
    return f"date_part('epoch', {compiler.process(end, **kw)} - {compiler.process(start, **kw)})"


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    # julianday() is a float of days: round to milliseconds so exactly one hour is 3600 s, as on PostgreSQL.
    days = f"(julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)}))"
    return f"ROUND({days} * 86400.0, 3)"


class elapsed_within(FunctionElement):  # noqa: N801 - reads as SQL
    """Whether `end` comes `low` to `high` seconds (inclusive) after `start`; a bound of None is open.

    On PostgreSQL this compiles to timestamp comparisons (`end <= start + interval`), several times
    cheaper over a month of tickets than taking the epoch of their difference; elsewhere to
    seconds_between.
    """

    type = sa.Boolean()
    inherit_cache = True
    name = "elapsed_within"

    def __init__(self, start: Any, end: Any, low: Any = None, high: Any = None) -> None:
        bounds = [sa.null() if bound is None else sa.literal(float(bound)) if isinstance(bound, (int, float))
                  else bound for bound in (low, high)]
        super().__init__(start, end, *bounds)


def _bounds(element: elapsed_within) -> tuple[Any, Any, list[tuple[str, Any]]]:
    start, end, low, high = list(element.clauses)
    return start, end, [(op, bound) for op, bound in ((">=", low), ("<=", high))
                        if not isinstance(bound, sa.sql.elements.Null)]


@compiles(elapsed_within)
def _elapsed_within_default(element: elapsed_within, compiler: Any, **kw: Any) -> str:
    start, end, bounds = _bounds(element)
    elapsed = compiler.process(seconds_between(start, end), **kw)
    return "(" + " AND ".join(f"{elapsed} {op} {compiler.process(bound, **kw)}" for op, bound in bounds) + ")"


@compiles(elapsed_within, "postgresql")
def _elapsed_within_postgresql(element: elapsed_within, compiler: Any, **kw: Any) -> str:
    start, end, bounds = _bounds(element)
    first, last = compiler.process(start, **kw), compiler.process(end, **kw)
    return "(" + " AND ".join(f"{last} {op} {first} + {_interval(bound, compiler, **kw)}" for op, bound in bounds) + ")"


def _interval(seconds: Any, compiler: Any, **kw: Any) -> str:
    """A number of seconds as an interval: a constant one, or a CASE of constant ones (an SLA per
    channel) chosen per row, rather than a multiplication on every row."""
    if isinstance(seconds, sa.sql.elements.BindParameter) and isinstance(seconds.value, (int, float)):
        return f"INTERVAL '{seconds.value:g} seconds'"
    constant = sa.sql.elements.BindParameter
    if isinstance(seconds, sa.sql.elements.Case) and seconds.value is None and all(
            isinstance(result, constant) for result in [*(r for _, r in seconds.whens), seconds.else_]):
        whens = " ".join(f"WHEN {compiler.process(condition, **kw)} THEN {_interval(result, compiler, **kw)}"
                         for condition, result in seconds.whens)
        return f"CASE {whens} ELSE {_interval(seconds.else_, compiler, **kw)} END"
    return f"({compiler.process(seconds, **kw)}) * INTERVAL '1 second'"


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows satisfy condition: COUNT(*) FILTER (WHERE …), on SQLite and PostgreSQL alike."""
    return sa.func.count().filter(condition)


def blank(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """NULL or only spaces: a text field that says nothing."""
    return sa.or_(column.is_(None), sa.func.trim(column) == "")


def compile_sql(statement: sa.ClauseElement, dialect: sa.Dialect) -> str:
    """The statement as the SQL a person could re-run, with values inlined."""
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def byte_order(column: Any, dialect: sa.Dialect) -> Any:
    """A text key compared byte by byte, as SQLite does: the same order on both databases, and on
    PostgreSQL a sort several times cheaper than by the database's locale."""
    if dialect.name == "postgresql" and isinstance(column.type, sa.String):
        return column.collate("C")
    return column


def offended(conditions: Sequence[ColumnElement[bool]], dialect: sa.Dialect,
             name: str) -> tuple[FromClause, ColumnElement[int], ColumnElement[bool]]:
    """What pairs each record with the conditions it meets, joined to the record's table: the
    relation of their numbers (0 .. n-1), its number column, and the join's ON clause.

    On PostgreSQL and SQLite a table function of the record itself (unnest of an array, json_each
    of a JSON array) with one row per condition met: one scan evaluates every condition once per
    record, whatever the planner estimates. Elsewhere the numbers as rows, joined on "condition k
    holds"."""
    numbers = [sa.case((condition, i)) for i, condition in enumerate(conditions)]
    # Met by any: the database filters the records in the scan, and calls the function only for those.
    any_met = sa.or_(*conditions)
    if dialect.name == "postgresql":
        met = sa.func.unnest(postgresql.array(numbers, type_=sa.Integer)).table_valued("k").render_derived()
        met = met.alias(name)
        return met, met.c.k, sa.and_(any_met, met.c.k.is_not(None))
    if dialect.name == "sqlite":
        met = sa.func.json_each(sa.func.json_array(*numbers)).table_valued("value").alias(name)
        return met, met.c.value, sa.and_(any_met, met.c.value.is_not(None))
    rows = sa.union_all(*(sa.select(sa.literal(i, sa.Integer).label("k")) for i in range(len(conditions))))
    listed = rows.subquery(name)
    return listed, listed.c.k, sa.or_(*(sa.and_(listed.c.k == i, c) for i, c in enumerate(conditions)))


# A text value in evidence (a sample's note, a record's title) is shown up to this many characters:
# a 10-million-character note copied whole would fill every finding, the results, the report's
# HTML and CSV, and take the PDF's layout minutes.
TEXT_LIMIT = 300
ELLIPSIS = "…"


def bounded(column: ColumnElement[Any], limit: int = TEXT_LIMIT) -> ColumnElement[Any]:
    """A text column cut to `limit` characters (the last one an ellipsis) in the database, so a
    long value never reaches memory whole; any other column as it is."""
    if not isinstance(column.type, sa.String):
        return column
    cut = sa.func.substr(column, 1, limit - 1).concat(ELLIPSIS)
    return sa.case((sa.func.length(column) > limit, cut), else_=column)


def bounded_texts(query: sa.Select[Any], keep: Sequence[str] = ()) -> sa.Select[Any]:
    """The query with each of its text columns bounded, under the same names, except `keep` (ids)."""
    return query.with_only_columns(*(column if column.key in keep else bounded(column).label(column.key)
                                     for column in query.selected_columns), maintain_column_froms=True)

"""Portable SQL pieces the metrics need, compiled per dialect (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
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


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows satisfy condition: COUNT(*) FILTER (WHERE …), on SQLite and PostgreSQL alike."""
    return sa.func.count().filter(condition)


def blank(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """NULL or only spaces: a text field that says nothing."""
    return sa.or_(column.is_(None), sa.func.trim(column) == "")


def compile_sql(statement: sa.ClauseElement, dialect: sa.Dialect) -> str:
    """The statement as the SQL a person could re-run, with values inlined."""
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

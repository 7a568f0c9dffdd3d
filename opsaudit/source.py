"""The operational database seen through the contract: each contract table as a selectable.

A company's mapping (config/source.yaml) names a source table, view or SELECT and column
renames; the checks only ever see contract names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql import FromClause

from opsaudit.config.models import SourceMapping, TableSource
from opsaudit.contract import contract_kind, metadata
from opsaudit.i18n.render import Message

_TYPE_FAMILIES: dict[str, tuple[type, ...]] = {
    "ts": (sa.DateTime, sa.Date),
    "bool": (sa.Boolean, sa.Integer),  # SQLite and some sources keep booleans as 0/1
    "int": (sa.Integer,),
    "num": (sa.Numeric, sa.Float, sa.Integer),
    "text": (sa.String, sa.Text, sa.Enum),
}


class SourceTimestamp(sa.types.TypeDecorator):
    """A contract `ts` as the checks read it: a naive local time, whatever the source keeps.

    An aware value (a PostgreSQL timestamptz) is converted to the audit's zone; a value that is no
    timestamp at all (text in a SQLite column) reads as None, because a data-quality expectation
    reports it, and a KPI query must not crash on it.
    """

    impl = sa.DateTime
    cache_ok = True

    def __init__(self, zone: str | None = None) -> None:
        super().__init__()
        self.zone = zone

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any]:
        parse = self.impl_instance.result_processor(dialect, coltype)
        zone = ZoneInfo(self.zone) if self.zone else None

        def process(value: Any) -> Any:
            if parse is not None:
                try:
                    value = parse(value)
                except (ValueError, TypeError):
                    return None
            if isinstance(value, datetime) and value.tzinfo is not None and zone is not None:
                return value.astimezone(zone).replace(tzinfo=None)
            return value

        return process


@dataclass(frozen=True)
class Source:
    """An operational database and the mapping that presents it in contract terms.

    `zone` is the audit's time zone (OPSAUDIT_TIMEZONE): timestamps read back are naive local times in it.
    """

    engine: Engine
    mapping: SourceMapping = field(default_factory=SourceMapping)
    zone: str | None = None
    # One selectable per table (and column set), so every metric of a query refers to the same FROM.
    _tables: dict[tuple[str, tuple[str, ...] | None], FromClause] = field(default_factory=dict, compare=False,
                                                                          repr=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def spec(self, table: str) -> TableSource:
        return self.mapping.tables.get(table) or TableSource()

    def source_column(self, table: str, column: str) -> str:
        return self.spec(table).columns.get(column, column)

    def table(self, name: str, columns: tuple[str, ...] | None = None) -> FromClause:
        """The contract table `name` as a selectable whose columns carry contract names and types.

        `columns` narrows it to the contract columns a source actually has (the data-quality checks
        read a source that lacks some); by default every contract column.
        """
        contract = metadata.tables[name]
        if columns is not None and len(columns) == len(contract.columns):
            columns = None
        if (name, columns) not in self._tables:
            self._tables[(name, columns)] = self._build_table(name, columns)
        return self._tables[(name, columns)]

    def _build_table(self, name: str, columns: tuple[str, ...] | None) -> FromClause:
        contract = metadata.tables[name]
        spec = self.spec(name)
        wanted = [c for c in contract.columns if columns is None or c.name in columns]
        typed = [sa.column(spec.columns.get(c.name, c.name), self._type(c.type)) for c in wanted]
        if spec.select is not None:
            base: FromClause = sa.text(spec.select).columns(*typed).subquery(f"src_{name}")
        else:
            base = sa.table(spec.table or name, *typed, schema=spec.schema_)
            if not spec.columns:
                return base
        renamed = [base.c[spec.columns.get(c.name, c.name)].label(c.name) for c in wanted]
        return sa.select(*renamed).subquery(name)

    def _type(self, contract_type: sa.types.TypeEngine) -> sa.types.TypeEngine:
        return SourceTimestamp(self.zone) if isinstance(contract_type, sa.DateTime) else contract_type

    def physical_name(self, name: str) -> str:
        """How the table is known in the source, for findings and notes: schema.table; a mapped
        SELECT by its contract name, as config/source.yaml names it (error lines say more: shown_name)."""
        spec = self.spec(name)
        if spec.select is not None:
            return name
        table = spec.table or name
        return f"{spec.schema_}.{table}" if spec.schema_ else table

    def shown_name(self, name: str) -> str | Message:
        """The table as an error line names it: its source name, or a mapped SELECT said as such
        in the reader's language."""
        if self.spec(name).select is not None:
            return Message.of("error.source.mapped_select", table=name)
        return self.physical_name(name)


def check_source(source: Source, tables: tuple[str, ...] | None = None) -> list[Message]:
    """Every missing table, missing column and column of the wrong type, one line each, worded
    when read (the command's language on the command line, OPSAUDIT_LANGUAGE in a run's error)."""
    inspector = sa.inspect(source.engine)
    problems: list[Message] = []
    for name in tables or tuple(metadata.tables):
        spec = source.spec(name)
        if spec.select is not None:
            problems.extend(_check_select(source, name))
            continue
        table, schema = spec.table or name, spec.schema_
        if not (inspector.has_table(table, schema=schema) or table in _views(inspector, schema)):
            problems.append(Message.of("error.source.missing_table", table=source.physical_name(name), contract=name))
            continue
        found = {col["name"]: col["type"] for col in inspector.get_columns(table, schema=schema)}
        for column in metadata.tables[name].columns:
            src = spec.columns.get(column.name, column.name)
            where, contract = f"{source.physical_name(name)}.{src}", f"{name}.{column.name}"
            if src not in found:
                problems.append(Message.of("error.source.missing_column", column=where, contract=contract))
            elif not _compatible(found[src], contract_kind(column)):
                problems.append(Message.of("error.source.wrong_type", column=where, found=str(found[src]),
                                           expected=contract_kind(column), contract=contract))
    return problems


def _views(inspector: sa.Inspector, schema: str | None) -> list[str]:
    try:
        return inspector.get_view_names(schema=schema)
    except Exception:  # some dialects cannot list views; then only tables count
        return []


def _compatible(found: sa.types.TypeEngine, kind: str) -> bool:
    if isinstance(found, sa.types.NullType):
        return True  # SQLite views and untyped columns: nothing to judge
    return isinstance(found, _TYPE_FAMILIES[kind])


def select_columns(source: Source, name: str) -> set[str]:
    """The column names a mapped SELECT returns, asked without reading a row; SQLAlchemyError if it fails."""
    with source.engine.connect() as conn:
        return set(conn.execute(sa.text(f"SELECT * FROM ({source.spec(name).select}) AS probe WHERE 1 = 0")).keys())


def _check_select(source: Source, name: str) -> list[Message]:
    spec = source.spec(name)
    try:
        found = select_columns(source, name)
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return [Message.of("error.source.select_fails", table=source.shown_name(name), reason=reason)]
    return [
        Message.of("error.source.select_missing_column", table=source.shown_name(name),
                   column=spec.columns.get(c.name, c.name), contract=f"{name}.{c.name}")
        for c in metadata.tables[name].columns
        if spec.columns.get(c.name, c.name) not in found
    ]


def missing_tables(source: Source, tables: tuple[str, ...]) -> set[str]:
    """The contract tables among `tables` that the source does not have at all."""
    inspector = sa.inspect(source.engine)
    missing = set()
    for name in tables:
        spec = source.spec(name)
        if spec.select is not None:
            continue
        table = spec.table or name
        if not (inspector.has_table(table, schema=spec.schema_) or table in _views(inspector, spec.schema_)):
            missing.add(name)
    return missing

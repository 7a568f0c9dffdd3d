"""The metric registry: every rule's formula as a small SQLAlchemy Core builder.

A builder returns an Aggregate (grouped by entity, composed with others into one query per
relation) or a Records query (one row per offending record). The engine does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import FromClause, Select
from sqlalchemy.sql.expression import ColumnElement

from opsaudit.checks.scope import EVERYTHING, Scope
from opsaudit.checks.spec import Rule
from opsaudit.periods import Period
from opsaudit.source import Source


@dataclass(frozen=True)
class MetricContext:
    """What a builder may use: the source, the period, its rule, the other rules' settings, and
    the scope of the audit (departments, a sample of records), which every builder applies."""

    source: Source
    period: Period
    rule: Rule
    now: datetime
    rules: Mapping[str, Rule] = field(default_factory=dict)
    scope: Scope = EVERYTHING

    def param(self, name: str) -> Any:
        return self.rule.params[name]

    def in_scope(self, department: ColumnElement[Any], **records: ColumnElement[Any]) -> ColumnElement[bool]:
        """The rows of the audit's scope: see Scope.condition."""
        return self.scope.condition(department, **records)


@dataclass(frozen=True)
class Aggregate:
    """numerator / denominator summed over the population, per entity, within the window."""

    relation: str
    from_: FromClause
    window: ColumnElement[bool]
    entities: Mapping[str, ColumnElement[Any]]
    department: ColumnElement[Any]
    record_id: ColumnElement[Any]
    population: ColumnElement[bool]
    numerator: ColumnElement[Any]
    denominator: ColumnElement[Any]
    offending: ColumnElement[bool]
    tables: tuple[str, ...] = ()
    # Labelled columns shown beside each sample record id, so an auditor sees why it failed.
    samples: tuple[ColumnElement[Any], ...] = ()
    # A rate: the records of the population where this holds, of all of them (see rate()).
    success: ColumnElement[bool] | None = None


def rate(population: ColumnElement[bool], success: ColumnElement[bool], **parts: Any) -> Aggregate:
    """The share of the population where `success` holds; a record where it is unknown (NULL) fails.

    The engine counts both in one pass and takes the failures as their difference, instead of
    evaluating every condition again for each column.
    """
    met = sa.func.coalesce(success, False)
    return Aggregate(population=population, numerator=sa.case((met, 1), else_=0), denominator=sa.literal(1),
                     offending=sa.and_(population, sa.not_(met)), success=met, **parts)


@dataclass(frozen=True)
class Records:
    """One row per offending record: entity_id, department_id, owner_id, then facts.

    `keep` judges one candidate row in Python when SQL cannot say it plainly (the facts to keep,
    or None for a row that is fine); `judge` does the same for all rows at once, with the
    connection, when the judgement needs further queries (re-computing stated figures).
    """

    query: Select[Any]
    population: Select[Any] | None
    tables: tuple[str, ...]
    keep: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    judge: Callable[[Connection, list[dict[str, Any]]], list[dict[str, Any]]] | None = None


Builder = Callable[[MetricContext], Aggregate | Records]
METRICS: dict[str, Builder] = {}


def metric(name: str) -> Callable[[Builder], Builder]:
    """Register a builder under the name rule specs use in `metric:`."""

    def register(builder: Builder) -> Builder:
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        METRICS[name] = builder
        return builder

    return register


def in_period(column: ColumnElement[Any], period: Period) -> ColumnElement[bool]:
    return sa.and_(column >= period.start, column < period.end)


def load_builtin_metrics() -> Mapping[str, Builder]:
    """Import the area modules so their builders register; returns the registry."""
    from opsaudit.checks.metrics import (  # noqa: F401
        customer_service,
        data_analysis,
        deliverables,
        execution,
        planning,
    )

    return METRICS

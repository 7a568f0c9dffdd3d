"""What the dq.* rules check on each contract table, as Great Expectations expectations, and the
SQL batch (the table through the source mapping, cut to the period) they run on.

Great Expectations is imported on first use (quality_gx.gx_expectations): it takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql import FromClause, Select

from opsaudit.checks.quality_config import DataQualityRules
from opsaudit.checks.quality_gx import gx_expectations
from opsaudit.contract import (
    ENUMS,
    FRESHNESS_COLUMNS,
    PRIMARY_KEYS,
    RANGES,
    REFERENCES,
    TIME_ORDER,
    contract_kind,
    metadata,
)
from opsaudit.periods import Period
from opsaudit.source import Source, SourceTimestamp, missing_tables, select_columns

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

# Fact tables are checked on the rows of the period, by this column; the others whole.
PERIOD_COLUMNS: dict[str, str] = {
    "tickets": "opened_at",
    "qa_reviews": "reviewed_at",
    "tasks": "due_at",
    "plans": "due_at",
    "plan_adjustments": "requested_at",
    "analysis_reports": "due_at",
}

# How a failed expectation names its sample rows: by the key columns of the unexpected rows
# (GX's unexpected_index_list), by the key columns of the rows where its computed column holds
# the offending value (read by opsaudit, for every such check of a table at once), by the
# duplicated key values, or not at all (a table statistic).
SampleKind = Literal["index", "flagged", "values", "none"]


@dataclass(frozen=True)
class Check:
    """One expectation on one table and how to report its result.

    `asset` is the query the expectation runs on when it is not the table's batch itself.
    """

    rule_id: str
    table: str
    columns: tuple[str, ...]
    expectation: Expectation
    sample: SampleKind
    facts: dict[str, Any] = field(default_factory=dict)
    asset: Select | None = None

    @property
    def entity_id(self) -> str:
        return f"{self.table}.{'+'.join(self.columns) or '*'}"

    @property
    def flag(self) -> str:
        """The computed column a "flagged" check expects to be null."""
        return str(self.expectation.column)


def present_columns(source: Source, name: str) -> tuple[str, ...] | None:
    """The contract columns the source has for table `name`, in contract order; None: no table."""
    spec = source.spec(name)
    contract = metadata.tables[name].columns
    if spec.select is not None:
        try:
            found = select_columns(source, name)
        except sa.exc.SQLAlchemyError:
            return None  # a mapped SELECT that does not run is as good as a missing table
    else:
        if missing_tables(source, (name,)):
            return None
        inspector = sa.inspect(source.engine)
        found = {col["name"] for col in inspector.get_columns(spec.table or name, schema=spec.schema_)}
    return tuple(c.name for c in contract if source.source_column(name, c.name) in found)


@dataclass(frozen=True)
class Plausible:
    """The times a record's timestamps may hold: from `earliest`, up to the audit's clock
    `not_after` (except the columns that may lie in the future, deadlines and plans). A bound of
    None is not checked."""

    earliest: datetime | None
    not_after: datetime | None
    future_allowed: tuple[str, ...] = ()

    def latest(self, table: str, column: str) -> datetime | None:
        return None if f"{table}.{column}" in self.future_allowed else self.not_after

    def outside(self, table: str, name: str, column: sa.ColumnElement,
                dialect: str) -> sa.ColumnElement[bool] | None:
        """Whether a readable timestamp of `column` (contract column `name` of `table`) lies outside
        the bounds; None: nothing to check."""
        earliest, latest = self.earliest, self.latest(table, name)
        bounds = ([column < earliest] if earliest else []) + ([column > latest] if latest else [])
        return sa.and_(_valid(column, dialect), sa.or_(*bounds)) if bounds else None

    def facts(self, table: str, column: str) -> dict[str, str]:
        """The bounds of a column, for the finding's text."""
        earliest, latest = self.earliest, self.latest(table, column)
        return ({"earliest": earliest.date().isoformat()} if earliest else {}) | (
            {"not_after": latest.isoformat(sep=" ", timespec="seconds")} if latest else {})


def plausible(rules: DataQualityRules, now: datetime) -> Plausible | None:
    """The bounds of dq.range for an audit at `now`; None when dq.range is off."""
    if not rules.rules.enabled("dq.range"):
        return None
    day = rules.rules.range.earliest
    earliest = datetime(day.year, day.month, day.day) if day else None
    return Plausible(earliest, now, rules.rules.range.future_allowed)


def batch_select(source: Source, name: str, period: Period,
                 columns_of: Callable[[str], tuple[str, ...] | None], bounds: Plausible | None = None) -> Select:
    """The rows of `name` in scope for the period: fact tables by their period column, others whole.

    A row whose period column is empty, no timestamp at all, or implausible (before the earliest
    day or after the audit's clock, per `bounds`) belongs to no period, so it is in scope of every
    audit of its table until it is fixed: otherwise it would shrink populations unseen.
    reported_metrics follows its reports: the metrics of the analysis reports due in the period.
    """
    table = source.table(name, columns_of(name) or ())
    query = sa.select(*(_local(column, source.dialect) for column in table.c))
    scope = PERIOD_COLUMNS.get(name)
    if scope is not None and scope in table.c:
        undated = [table.c[scope].is_(None)]
        if source.dialect == "sqlite":
            undated.append(not_a_value(table.c[scope], "ts"))
        outside = bounds.outside(name, scope, table.c[scope], source.dialect) if bounds else None
        if outside is not None:
            undated.append(outside)
        return query.where(sa.or_(_in_period(table.c[scope], period), *undated))
    report_columns = set(columns_of("analysis_reports") or ())
    if name == "reported_metrics" and "report_id" in table.c and {"report_id", "due_at"} <= report_columns:
        reports = source.table("analysis_reports", columns_of("analysis_reports") or ())
        due = sa.select(reports.c.report_id).where(_in_period(reports.c.due_at, period))
        return query.where(table.c.report_id.in_(due))
    return query  # a dimension table, or one whose scope column is missing: whole


def _local(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """A timestamp as a naive local time on PostgreSQL, where the source may keep timestamptz:
    Great Expectations compares values in Python and cannot compare aware with naive ones. The
    session's time zone is the audit's, so the cast gives local time (and changes a naive column not)."""
    if dialect == "postgresql" and isinstance(column.type, (sa.DateTime, SourceTimestamp)):
        return sa.cast(column, sa.DateTime).label(column.key)
    return column


def _in_period(column: sa.ColumnElement, period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(column >= period.start, column < period.end)


def not_a_value(column: sa.ColumnElement, kind: str) -> sa.ColumnElement[bool]:
    """SQLite only (its columns take any value): a value that is not of the contract's type `kind`,
    such as 'yesterday' in a timestamp or 'five' in a rating. Other databases enforce column types,
    and `init --check-source` checks those."""
    typeof = sa.func.typeof(column)
    wrong = {
        "ts": sa.or_(typeof != "text", sa.func.julianday(column).is_(None)),
        "int": typeof != "integer",
        "num": typeof.not_in(("integer", "real")),
        "bool": sa.or_(typeof != "integer", column.not_in((0, 1))),
    }[kind]
    return sa.and_(column.is_not(None), wrong)


def readable_timestamp(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """The value where it is a timestamp, else null: text in a SQLite column must not pass for the
    newest row."""
    return sa.case((_valid(column, dialect), column))


def newest(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """The newest readable timestamp of `column`, as the freshness expectation's max sees it: the
    driver's own value (text on SQLite), never parsed by SQLAlchemy."""
    return sa.type_coerce(sa.func.max(readable_timestamp(column, dialect)), sa.String)


def first_record(source: Source, tables: Iterable[str], earliest: datetime | None) -> tuple[str, datetime] | None:
    """The oldest plausible record of `tables` by their period columns: (table.column, its naive
    local time), one MIN per table; None when none has a dated row. Times before `earliest` are
    dq.range's defects, not the start of the data."""
    found: list[tuple[datetime, str]] = []
    with source.engine.connect() as conn:
        for name in sorted(set(tables) & set(PERIOD_COLUMNS)):
            column = PERIOD_COLUMNS[name]
            if column not in (present_columns(source, name) or ()):
                continue
            value = source.table(name, (column,)).c[column]
            dated = [_valid(value, source.dialect)] + ([value >= earliest] if earliest else [])
            local = sa.cast(value, sa.DateTime) if source.dialect == "postgresql" else value
            oldest = conn.execute(sa.select(sa.type_coerce(sa.func.min(local), sa.String)).where(*dated)).scalar()
            if oldest is not None:
                found.append((datetime.fromisoformat(str(oldest)).replace(tzinfo=None), f"{name}.{column}"))
    if not found:
        return None
    at, where = min(found)
    return where, at


def _valid(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement[bool]:
    """The value is there and is a timestamp, so comparing it means something."""
    present = column.is_not(None)
    return sa.and_(present, sa.not_(not_a_value(column, "ts"))) if dialect == "sqlite" else present


def to_sql(statement: sa.ClauseElement, engine: Engine) -> str:
    """The statement as SQL for the engine's dialect, values inlined, as GX query assets need."""
    return str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


def build_checks(table: str, columns: tuple[str, ...], *, rules: DataQualityRules, period: Period,
                 now: datetime, batch: Select, references: Mapping[str, FromClause], dialect: str,
                 key_enforced: bool = False,
                 unique_targets: frozenset[str] = frozenset()) -> tuple[Select, list[Check]]:
    """Every enabled dq expectation on `table` whose columns the source has.

    `batch` is the table's rows in scope; `references` maps each referenced table that exists
    with its key column to its whole contents (a reference may point outside the period).
    `key_enforced`: the database itself keeps the contract key unique, so dq.unique is not run;
    `unique_targets`: referenced tables whose key the database keeps unique. Returns the batch to
    validate (widened with computed columns) and the checks.
    """
    have = set(columns)
    enabled = rules.rules.enabled
    checks: list[Check] = []
    if enabled("dq.not_null"):
        checks += _not_null(table, have)
    if enabled("dq.in_set"):
        checks += _in_set(table, have)
    if enabled("dq.range"):
        checks += _ranges(table, have)
    if enabled("dq.unique") and not key_enforced:
        checks += _unique(table, have, batch)
    wide, widened = widen(table, have, batch, references, unique_targets, dialect=dialect,
                          time_order=enabled("dq.time_order"), reference=enabled("dq.reference"),
                          types=enabled("dq.type") and dialect == "sqlite", bounds=plausible(rules, now),
                          freshness=enabled("dq.freshness"))
    checks += widened
    if enabled("dq.freshness"):
        checks += _freshness(table, have, period, now, rules.rules.freshness.freshness_days)
    return wide, checks


def _not_null(table: str, have: set[str]) -> list[Check]:
    gxe = gx_expectations()

    return [Check("dq.not_null", table, (c.name,), gxe.ExpectColumnValuesToNotBeNull(column=c.name), "index")
            for c in metadata.tables[table].columns if not c.nullable and c.name in have]


def _in_set(table: str, have: set[str]) -> list[Check]:
    gxe = gx_expectations()

    # SQL compares case-sensitively, so 'Phone' is out of the lower-case set, as the contract says.
    return [Check("dq.in_set", table, (column,),
                  gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)), "index",
                  {"value_set": list(values)})
            for (name, column), values in ENUMS.items() if name == table and column in have]


def _ranges(table: str, have: set[str]) -> list[Check]:
    gxe = gx_expectations()

    return [Check("dq.range", table, (column,),
                  gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high), "index",
                  {"min": low, "max": high})
            for (name, column), (low, high) in RANGES.items() if name == table and column in have]


def _unique(table: str, have: set[str], batch: Select) -> list[Check]:
    gxe = gx_expectations()

    key = PRIMARY_KEYS[table]
    if not set(key) <= have:
        return []
    if len(key) == 1:
        return [Check("dq.unique", table, key, gxe.ExpectColumnValuesToBeUnique(column=key[0]), "values")]
    expectation = gxe.ExpectCompoundColumnsToBeUnique(column_list=list(key))
    nullable = [k for k in key if metadata.tables[table].c[k].nullable]
    if not nullable:
        return [Check("dq.unique", table, key, expectation, "values")]
    # GX matches duplicates with "=", so two rows keyed (R1, m, NULL) would never collide; yet
    # NULL there is a value (reported_metrics: the whole company). Compare a stand-in instead.
    rows = batch.subquery("b")
    asset = sa.select(*(sa.func.coalesce(rows.c[k], "null").label(k) if k in nullable else rows.c[k]
                        for k in key))
    return [Check("dq.unique", table, key, expectation, "values", asset=asset)]


def widen(table: str, have: set[str], batch: Select, references: Mapping[str, FromClause],
          unique_targets: frozenset[str], *, dialect: str, time_order: bool, reference: bool, types: bool,
          bounds: Plausible | None, freshness: bool = False) -> tuple[Select, list[Check]]:
    """The batch with one computed column per time-order, future, type and reference check, and
    those checks.

    The columns hold the offending value and are null otherwise, so each check is a null check
    that GX folds into the one aggregate query it runs on the batch: a single pass over the
    period's rows instead of one per check. (UnexpectedRowsExpectation would read every
    unexpected row to keep 200, and psycopg buffers them all; and a datetime bound passed to GX as
    a parameter is refused by SQLite.) Nulls in the checked columns are dq.not_null's business,
    so they never count here.
    """
    gxe = gx_expectations()
    rows = batch.subquery("b")
    joined: FromClause = rows
    columns: list[Any] = []
    checks: list[Check] = []

    def computed(rule_id: str, column: str, label: str, offending: sa.ColumnElement[bool],
                 facts: dict[str, Any]) -> None:
        value = sa.cast(rows.c[column], sa.String) if rule_id == "dq.type" else rows.c[column]
        columns.append(sa.case((offending, value)).label(label))
        checks.append(Check(rule_id, table, (column,), gxe.ExpectColumnValuesToBeNull(column=label), "flagged",
                            facts))

    contract = metadata.tables[table].columns
    if types:
        for column in (c for c in contract if c.name in have and contract_kind(c) != "text"):
            computed("dq.type", column.name, f"dq_type_{column.name}", not_a_value(rows.c[column.name],
                     contract_kind(column)), {"expected": contract_kind(column)})
    if bounds is not None:
        # "Nothing in the future, nothing from before the company kept records": an event
        # timestamp after the audit's clock, or before the earliest day, is a range defect.
        for column in (c.name for c in contract if isinstance(c.type, sa.DateTime) and c.name in have):
            outside = bounds.outside(table, column, rows.c[column], dialect)
            if outside is not None:
                computed("dq.range", column, f"dq_future_{column}", outside, bounds.facts(table, column))
    if time_order:
        for name, later, earlier in TIME_ORDER:
            if name != table or not {later, earlier} <= have:
                continue
            out_of_order = sa.and_(_valid(rows.c[later], dialect), _valid(rows.c[earlier], dialect),
                                   rows.c[later] < rows.c[earlier])
            computed("dq.time_order", later, f"dq_order_{later}", out_of_order, {"not_before": f"{table}.{earlier}"})
    for (name, column), (target, target_column) in REFERENCES.items():
        if not reference or name != table or column not in have or target not in references:
            continue
        # A key the database keeps unique is joined as it is (an index or hash join); otherwise
        # DISTINCT, so that duplicate keys in the referenced table cannot multiply the rows.
        known = (references[target].alias(f"r_{column}") if target in unique_targets else
                 sa.select(references[target].c[target_column]).distinct().subquery(f"r_{column}"))
        joined = joined.outerjoin(known, known.c[target_column] == rows.c[column])
        label = f"dq_unresolved_{column}"
        columns.append(sa.case((sa.and_(rows.c[column].is_not(None), known.c[target_column].is_(None)),
                                rows.c[column])).label(label))
        checks.append(Check("dq.reference", table, (column,), gxe.ExpectColumnValuesToBeNull(column=label),
                            "flagged", {"references": f"{target}.{target_column}"}))
    fresh = FRESHNESS_COLUMNS.get(table)
    if freshness and fresh in have:
        columns.append(readable_timestamp(rows.c[fresh], dialect).label(f"dq_fresh_{fresh}"))
    if not columns:
        return batch, []
    return sa.select(rows, *columns).select_from(joined), checks


def _freshness(table: str, have: set[str], period: Period, now: datetime, days: int) -> list[Check]:
    gxe = gx_expectations()

    column = FRESHNESS_COLUMNS.get(table)
    if column not in have:
        return []
    # For a period still running, "the end" is now: a feed cannot be fresher than the clock.
    cutoff = min(period.end, now) - timedelta(days=days)
    expectation = gxe.ExpectColumnMaxToBeBetween(column=f"dq_fresh_{column}", min_value=cutoff)
    return [Check("dq.freshness", table, (column,), expectation, "none",
                  {"newest_not_before": cutoff.isoformat(sep=" "), "freshness_days": days})]

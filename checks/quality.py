"""The dq.* rules (audit-rules.md section 4): Great Expectations suites run on the operational
database, one graded result per expectation.

- Scope: fact tables are checked on the period's rows (quality_suites.PERIOD_COLUMNS);
  reported_metrics on the metrics of the analysis reports due in the period; the dimension
  tables (departments, staff, plan_targets, plan_signoffs) whole. References resolve against
  the whole referenced table.
- Pushed down: each table is a GX query asset on its mapped, period-cut SELECT; GX computes
  every metric in SQL and returns at most `sample_limit` sample keys.
- "Nothing in the future, nothing implausibly old" is dq.range: an event timestamp must not be
  later than `now` (deadline columns listed in data_quality.yaml are exempt), nor before its
  `earliest` day. A row whose period column is out of those bounds is in every period's scope.
- Grading: the share of the rows in scope that fail, against dq_bands. A missing table, an
  empty scope or a missing column is major; a stale table (dq.freshness) is important. Missing
  and empty tables are reported as dq.freshness, missing columns as dq.not_null, whether or not
  those rules are enabled.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql import FromClause

from opsaudit.checks.quality_config import DataQualityRules, load_rules
from opsaudit.checks.quality_gx import Batches, gx_batches, import_great_expectations
from opsaudit.checks.quality_suites import (
    Check,
    batch_select,
    build_checks,
    newest,
    plausible,
    present_columns,
    to_sql,
)
from opsaudit.checks.results import CheckResult, Outcome, Severity
from opsaudit.checks.sqlfuncs import byte_order, offended
from opsaudit.contract import FRESHNESS_COLUMNS, PRIMARY_KEYS, REFERENCES, metadata
from opsaudit.errors import SourceError
from opsaudit.i18n.render import Message
from opsaudit.periods import Period
from opsaudit.source import Source

if TYPE_CHECKING:
    from great_expectations.core import ExpectationValidationResult

AREA = "data_quality"
RULE_VERSION = 1
ColumnsOf = Callable[[str], tuple[str, ...] | None]
ENTITY_TYPE = "table_column"


@dataclass(frozen=True)
class _TablePlan:
    """A table ready for Great Expectations: its batch SQL, rows in scope, keys and checks, and
    the newest timestamp of its freshness column (counted with the rows)."""

    table: str
    wide: sa.Select
    sql: str
    rows: int
    keys: tuple[str, ...]
    checks: list[Check]
    newest: Any = None


def run_data_quality(source: Source, tables: Sequence[str], period: Period, *, now: datetime,
                     dq_bands: tuple[float, float] = (0.01, 0.10), sample_limit: int = 20,
                     rules: DataQualityRules | None = None) -> list[CheckResult]:
    """Every dq.* result for `tables` in `period`; problems in the data are results, never errors.

    `now` is the naive local time of the audit; `rules` defaults to checks/data_quality.yaml.
    """
    unknown = [name for name in tables if name not in metadata.tables]
    if unknown:
        raise ValueError(f"not contract tables: {', '.join(unknown)}")
    rules = rules or load_rules()
    columns_of = cache(lambda name: present_columns(source, name))
    per_table: dict[str, list[CheckResult]] = {}
    plans: list[_TablePlan] = []
    for name in dict.fromkeys(tables):
        findings, plan = _prepare(source, name, period, now, rules, columns_of)
        per_table[name] = findings
        if plan is not None:
            plans.append(plan)
    if plans:
        with gx_batches(source.engine) as batches:
            for plan in plans:
                per_table[plan.table] += _validate(batches, plan, source.engine, dq_bands, sample_limit)
    return [replace(result, facts={**result.facts, "period": period.label},
                    evidence={**result.evidence, "rule_version": RULE_VERSION})
            for results in per_table.values() for result in results]


def _prepare(source: Source, name: str, period: Period, now: datetime, rules: DataQualityRules,
             columns_of: ColumnsOf) -> tuple[list[CheckResult], _TablePlan | None]:
    """The findings known without GX (missing table or columns, no rows) and the table's plan."""
    columns = columns_of(name)
    if columns is None:
        return [_table_finding(name, "missing_table", {"source": source.physical_name(name)})], None
    findings = [_missing_column(source, name, c.name) for c in metadata.tables[name].columns
                if c.name not in columns]
    statement = batch_select(source, name, period, columns_of, plausible(rules, now))
    sql = to_sql(statement, source.engine)
    fresh = FRESHNESS_COLUMNS.get(name) if rules.rules.enabled("dq.freshness") else None
    references, unresolvable = _referenced_tables(source, name, columns, columns_of)
    if not rules.rules.enabled("dq.reference"):
        unresolvable = []
    try:
        rows, newest_row, referring = _count_and_newest(
            source.engine, statement, fresh if fresh in columns else None, source.dialect,
            counted=[result.facts["column"] for result in unresolvable])
    except sa.exc.SQLAlchemyError as exc:
        # A table that cannot be read says nothing about the data: the audit cannot run.
        raise SourceError(Message.of("error.source.table_unreadable", purpose=Message.of("error.purpose.database"),
                                     table=source.shown_name(name), reason=_first_line(exc))) from None
    if rows == 0:
        # A quarter without plan adjustments is normal; a feed that stopped, or an empty table, is not.
        if name in FRESHNESS_COLUMNS or _count_and_newest(source.engine, sa.select(source.table(name)))[0] == 0:
            return [*findings, _table_finding(name, "no_rows", {"query": sql}, population=0)], None
        return findings, None
    # A reference to a table the source lacks is a problem only where a row refers to something:
    # tasks of a company without plans leave plan_id empty.
    findings += [result for result in unresolvable if referring[result.facts["column"]]]
    enforced = rules.rules.enabled("dq.unique") and key_enforced(source, name)
    if enforced:
        # The database refuses duplicate keys; say so instead of scanning for them.
        findings.append(CheckResult("dq.unique", AREA, "table_column", f"{name}.{'+'.join(PRIMARY_KEYS[name])}",
                                    Outcome.PASSED, observed=0.0, target=0.0, population=rows,
                                    facts={"table": name, "enforced_by": "database key constraint"}))
    wide, checks = build_checks(name, columns, rules=rules, period=period, now=now, batch=statement,
                                references=references, dialect=source.dialect, key_enforced=enforced,
                                unique_targets=frozenset(t for t in references if key_enforced(source, t)))
    keys = tuple(key for key in PRIMARY_KEYS[name] if key in columns)
    return findings, _TablePlan(name, wide, to_sql(wide, source.engine), rows, keys, checks, newest_row)


def key_enforced(source: Source, name: str) -> bool:
    """Whether the source table's primary key or a unique constraint is exactly the contract key."""
    spec = source.spec(name)
    if spec.select is not None:
        return False
    table, key = spec.table or name, {spec.columns.get(k, k) for k in PRIMARY_KEYS[name]}
    inspector = sa.inspect(source.engine)
    try:
        primary = inspector.get_pk_constraint(table, schema=spec.schema_).get("constrained_columns") or []
        uniques = [u["column_names"] for u in inspector.get_unique_constraints(table, schema=spec.schema_)]
    except (sa.exc.SQLAlchemyError, NotImplementedError):
        return False
    return any(set(columns) == key for columns in [primary, *uniques])


def _referenced_tables(source: Source, name: str, columns: tuple[str, ...],
                       columns_of: ColumnsOf) -> tuple[dict[str, FromClause], list[CheckResult]]:
    """The tables `name` refers to, whole; and a finding per reference whose target is missing."""
    references: dict[str, FromClause] = {}
    unresolvable: list[CheckResult] = []
    for (table, column), (target, target_column) in REFERENCES.items():
        if table != name or column not in columns:
            continue
        target_columns = columns_of(target) or ()
        if target_column in target_columns:
            references[target] = source.table(target, target_columns)
        else:
            unresolvable.append(_unresolvable(name, column, f"{target}.{target_column}"))
    return references, unresolvable


def _count_and_newest(engine: Engine, statement: sa.Select, fresh: str | None = None, dialect: str = "",
                      counted: Sequence[str] = ()) -> tuple[int, Any, dict[str, int]]:
    """The rows in scope; when `fresh` is given, that column's newest readable timestamp; and the
    values in each `counted` column: one pass, and Great Expectations then answers freshness in its
    first pass, without a second read."""
    rows = statement.subquery()
    latest = newest(rows.c[fresh], dialect) if fresh is not None else sa.null()
    with engine.connect() as conn:
        count, value, *filled = conn.execute(
            sa.select(sa.func.count(), latest, *(sa.func.count(rows.c[c]) for c in counted)).select_from(rows)).one()
    return int(count), value, dict(zip(counted, (int(n) for n in filled), strict=True))


def _validate(batches: Batches, plan: _TablePlan, engine: Engine, bands: tuple[float, float],
              sample_limit: int) -> list[CheckResult]:
    """Run the table's checks, on its batch or on their own query asset, and grade each result.

    First every check with its counts and no samples (BASIC with no partial list: GX answers with
    one aggregate query per batch, and its sample queries get LIMIT 0). Then the samples of what
    failed: the rows flagged by a computed column in one query of opsaudit's for all those checks
    of the table, and for a native expectation GX's SUMMARY, which reads the batch again for each.
    Freshness reports the newest timestamp read with the rows.
    """
    counts = {"result_format": "BASIC", "partial_unexpected_count": 0}
    summary = {"result_format": "SUMMARY", "partial_unexpected_count": sample_limit,
               "unexpected_index_column_names": list(plan.keys)}
    outcomes = _run_suites(batches, plan, engine, range(len(plan.checks)), counts)
    failed = [i for i, (outcome, _) in outcomes.items() if not outcome.success and not _error_message(outcome)]
    again = [i for i, (outcome, _) in outcomes.items()
             if _error_message(outcome) or (i in failed and plan.checks[i].sample in ("index", "values"))]
    outcomes |= _run_suites(batches, plan, engine, again, summary)
    flagged = _flagged_samples(engine, plan, [i for i in failed if plan.checks[i].sample == "flagged"], sample_limit)
    return [_grade(plan.checks[i], outcome, plan, sql, bands, sample_limit, flagged.get(i, []))
            for i, (outcome, sql) in sorted(outcomes.items())]


def _flagged_samples(engine: Engine, plan: _TablePlan, indexes: list[int], limit: int) -> dict[int, list[str]]:
    """Check index -> the keys of its first `limit` flagged rows in key order, for the failed
    "flagged" checks at `indexes`: one reading of the batch for all of them."""
    if not indexes or not plan.keys:
        return {}
    wide = plan.wide.subquery("wide")
    check, k, met = offended([wide.c[plan.checks[i].flag].is_not(None) for i in indexes], engine.dialect, "flagged")
    keys = [wide.c[key] for key in plan.keys]
    rank = sa.func.row_number().over(partition_by=k, order_by=[byte_order(key, engine.dialect) for key in keys])
    ranked = sa.select(k.label("k"), *keys, rank.label("rank")).select_from(wide).join(check, met).subquery()
    query = sa.select(ranked.c.k, *(ranked.c[key] for key in plan.keys)).where(ranked.c.rank <= limit)
    found: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    with engine.connect() as conn:
        for k, *values in conn.execute(query).tuples():
            found[indexes[k]].append(tuple(values))
    return {index: ["+".join(_text(value) for value in row) for row in sorted(rows, key=_key_order)]
            for index, rows in found.items()}


def _key_order(row: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((value is None, str(value)) for value in row)


def _run_suites(batches: Batches, plan: _TablePlan, engine: Engine, indexes: Iterable[int],
                result_format: dict[str, Any]) -> dict[int, tuple[ExpectationValidationResult, str]]:
    """Validate the checks at `indexes`, one suite per query asset; outcome and batch SQL per check."""
    gx = import_great_expectations()

    found: dict[int, tuple[ExpectationValidationResult, str]] = {}
    assets: dict[str, list[int]] = {plan.sql: []}
    for index in indexes:
        check = plan.checks[index]
        assets.setdefault(plan.sql if check.asset is None else to_sql(check.asset, engine), []).append(index)
    for sql, members in assets.items():
        if not members:
            continue
        # Named by its SQL: the second pass must find the first pass's asset, never clash with it.
        name = f"{plan.table}_{hashlib.sha1(sql.encode()).hexdigest()[:12]}"
        batch = batches.get(name, sql)
        for index in members:
            plan.checks[index].expectation.meta = {"dq_check": index}
        suite = gx.ExpectationSuite(name=name, expectations=[plan.checks[i].expectation for i in members])
        for outcome in batch.validate(suite, result_format=result_format).results:
            found[outcome.expectation_config.meta["dq_check"]] = (outcome, sql)
    return found


def _grade(check: Check, outcome: ExpectationValidationResult, plan: _TablePlan, sql: str,
           bands: tuple[float, float], sample_limit: int, flagged: list[str]) -> CheckResult:
    rows = plan.rows
    expectation = _expectation(outcome)
    error = _error_message(outcome)
    if error is not None:
        # A check that cannot run is an error of the run, never a finding about the data.
        raise SourceError(Message.of("error.quality.gx_failed", rule=check.rule_id, entity=check.entity_id,
                                     tool="Great Expectations", expectation=expectation["type"], reason=error))
    if check.sample == "none":
        return _grade_freshness(check, outcome, rows, sql, expectation, plan.newest)
    unexpected = int(outcome.result.get("unexpected_count") or 0)
    if outcome.success or unexpected == 0:
        return _result(check, Outcome.PASSED, observed=0.0, population=rows, evidence={"expectation": expectation})
    share = unexpected / rows
    return _result(
        check, Outcome.FAILED, dq_severity(share, bands), observed=share, population=rows,
        facts={"unexpected_count": unexpected, "population": rows, "share": share, **check.facts},
        evidence={"expectation": expectation, "unexpected_count": unexpected, "unexpected_share": share,
                  "sample_ids": (flagged if check.sample == "flagged"
                                 else _sample_ids(check, outcome.result, plan.keys)[:sample_limit]),
                  "query": sql})


def _grade_freshness(check: Check, outcome: ExpectationValidationResult, rows: int, sql: str,
                     expectation: dict[str, Any], newest: Any) -> CheckResult:
    facts = {"newest": str(newest) if newest is not None else None, **check.facts}
    if newest is None:
        # No row gives the column a readable time: how fresh the table is cannot be told from it.
        # The empty values are dq.not_null's finding (or dq.type's), not a stale feed.
        return _result(check, Outcome.INSUFFICIENT_DATA, population=rows, facts=facts,
                       evidence={"expectation": expectation, "query": sql})
    if outcome.success:
        return _result(check, Outcome.PASSED, population=rows, facts=facts, evidence={"expectation": expectation})
    # Data late but present is important; an empty or missing table is the major case.
    return _result(check, Outcome.FAILED, Severity.IMPORTANT, population=rows, facts=facts,
                   evidence={"expectation": expectation, "newest": facts["newest"], "query": sql})


def dq_severity(share: float, bands: tuple[float, float]) -> Severity:
    """General below bands[0] of the rows, important from bands[0], major from bands[1]."""
    if share >= bands[1]:
        return Severity.MAJOR
    if share >= bands[0]:
        return Severity.IMPORTANT
    return Severity.GENERAL


def _sample_ids(check: Check, result: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """Key values of the failing rows, as strings; a compound key joined with '+'."""
    if check.sample == "index":
        found = result.get("partial_unexpected_index_list") or []
    else:  # the duplicated key values themselves
        keys = check.columns
        found = [value if isinstance(value, dict) else {keys[0]: value}
                 for value in result.get("partial_unexpected_list") or []]
    ids = ("+".join(_text(row.get(key)) for key in keys) for row in found)
    return list(dict.fromkeys(ids))


def _text(value: Any) -> str:
    return "null" if value is None else str(value)


def _expectation(outcome: ExpectationValidationResult) -> dict[str, Any]:
    """The expectation's type and arguments, JSON-ready, for the evidence."""
    config = outcome.expectation_config.to_json_dict()
    kwargs = {k: v for k, v in config["kwargs"].items() if k not in ("batch_id", "result_format")}
    return {"type": config["type"], "kwargs": kwargs}


def _error_message(outcome: ExpectationValidationResult) -> str | None:
    """The first line of the exception GX caught while computing the expectation, if any."""
    info = outcome.exception_info or {}
    # GX keys the info by metric when a metric failed, and flat when the expectation did.
    for entry in [info, *(v for v in info.values() if isinstance(v, dict))]:
        if entry.get("raised_exception"):
            return (entry.get("exception_message") or "error").strip().splitlines()[0]
    return None


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0]


def _result(check: Check, outcome: Outcome, severity: Severity | None = None, *,
            observed: float | None = None, population: int | None = None,
            facts: dict[str, Any] | None = None, evidence: dict[str, Any] | None = None) -> CheckResult:
    return CheckResult(
        rule_id=check.rule_id, area=AREA, entity_type=ENTITY_TYPE, entity_id=check.entity_id,
        outcome=outcome, severity=severity, observed=observed, target=0.0 if observed is not None else None,
        population=population, evidence=evidence or {},
        facts={"table": check.table, "column": "+".join(check.columns), **(facts or {})})


def _major(rule_id: str, entity_id: str, facts: dict[str, Any], evidence: dict[str, Any] | None = None,
           population: int | None = None) -> CheckResult:
    return CheckResult(rule_id=rule_id, area=AREA, entity_type=ENTITY_TYPE, entity_id=entity_id,
                       outcome=Outcome.FAILED, severity=Severity.MAJOR, population=population,
                       facts=facts, evidence=evidence or {})


def _table_finding(table: str, reason: str, evidence: dict[str, Any],
                   population: int | None = None) -> CheckResult:
    """A table the audit cannot check at all: missing, unreadable or without rows in scope."""
    return _major("dq.freshness", f"{table}.*", {"table": table, "reason": reason}, evidence, population)


def _missing_column(source: Source, table: str, column: str) -> CheckResult:
    where = f"{source.physical_name(table)}.{source.source_column(table, column)}"
    facts = {"table": table, "column": column, "reason": "missing_column"}
    return _major("dq.not_null", f"{table}.{column}", facts, {"source": where})


def _unresolvable(table: str, column: str, target: str) -> CheckResult:
    """A reference whose target table or key column is missing: no value can resolve."""
    facts = {"table": table, "column": column, "references": target, "reason": "missing_referenced_table"}
    return _major("dq.reference", f"{table}.{column}", facts)

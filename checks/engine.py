"""The generic engine: compute every rule's metric in the database, then judge it.

compute() runs the SQL: aggregates that read the same relation and group by the same entity share
one grouped query; record rules fetch only the offending rows. evaluate() judges without touching
the database. collect_samples() fetches up to 20 record ids, only for failed aggregates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from opsaudit.checks.grading import grade
from opsaudit.checks.metrics import Aggregate, MetricContext, Records, load_builtin_metrics
from opsaudit.checks.results import CheckResult, Outcome, Severity
from opsaudit.checks.spec import Rule
from opsaudit.checks.sqlfuncs import compile_sql
from opsaudit.checks.text import finding_text
from opsaudit.errors import SourceError
from opsaudit.periods import Period
from opsaudit.source import Source

SAMPLE_LIMIT = 20


@dataclass(frozen=True)
class Directory:
    """Names and heads of departments and names of staff, for labels and owners."""

    department_names: Mapping[str, str] = field(default_factory=dict)
    department_heads: Mapping[str, str | None] = field(default_factory=dict)
    staff_names: Mapping[str, str] = field(default_factory=dict)

    def label(self, entity_type: str, entity_id: str) -> str:
        if entity_type == "department":
            return f"{self.department_names.get(entity_id, entity_id)} ({entity_id})"
        if entity_type == "agent":
            return f"{self.staff_names.get(entity_id, entity_id)} ({entity_id})"
        if entity_type == "company":
            return "Company"
        return entity_id

    def head_of(self, department_id: str | None) -> str | None:
        return self.department_heads.get(department_id) if department_id else None


@dataclass(frozen=True)
class Measurement:
    """What the database said about one rule on one entity, before any judgement."""

    rule: Rule
    entity_type: str
    entity_id: str
    department_id: str | None = None
    population: int | None = None
    numerator: float = 0.0
    denominator: float = 0.0
    rows: tuple[dict[str, Any], ...] = ()
    query: str = ""
    rollup: bool = False
    missing_tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Computation:
    """All measurements of one audit, with what evaluation and evidence need."""

    measurements: tuple[Measurement, ...]
    directory: Directory
    aggregates: Mapping[Rule, Aggregate]


def load_directory(source: Source, conn: Connection, available: set[str]) -> Directory:
    """The small lookup tables, when the source has them."""
    names: dict[str, str] = {}
    heads: dict[str, str | None] = {}
    staff: dict[str, str] = {}
    if "departments" in available:
        d = source.table("departments")
        for row in conn.execute(sa.select(d.c.department_id, d.c.name, d.c.head_id)):
            names[row.department_id], heads[row.department_id] = row.name, row.head_id
    if "staff" in available:
        s = source.table("staff")
        staff = {row.staff_id: row.name for row in conn.execute(sa.select(s.c.staff_id, s.c.name))}
    return Directory(names, heads, staff)


def compute(source: Source, rules: Sequence[Rule], period: Period, *, now: datetime, available: set[str],
            all_rules: Mapping[str, Rule] | None = None) -> Computation:
    """Run every rule's SQL for `period`; a rule whose tables are missing is measured as such."""
    registry = load_builtin_metrics()
    shared = all_rules or {rule.rule_id: rule for rule in rules}
    built = {rule: registry[rule.metric](MetricContext(source, period, rule, now, shared)) for rule in rules}
    measurements: list[Measurement] = []
    runnable: dict[Rule, Aggregate | Records] = {}
    for rule, metric in built.items():
        missing = tuple(sorted(set(metric.tables) - available))
        if missing:
            measurements.append(Measurement(rule, "company", f"company/{rule.entity_type}", rollup=True,
                                            missing_tables=missing))
        else:
            runnable[rule] = metric
    aggregates = {rule: m for rule, m in runnable.items() if isinstance(m, Aggregate)}
    with source.engine.connect() as conn:
        directory = load_directory(source, conn, available)
        for group in _group_aggregates(aggregates).values():
            measurements.extend(_measure_aggregates(conn, group))
        for rule, metric in runnable.items():
            if isinstance(metric, Records):
                measurements.extend(_measure_records(conn, rule, metric))
    return Computation(tuple(measurements), directory, aggregates)


def _group_aggregates(aggregates: Mapping[Rule, Aggregate]) -> dict[str, list[tuple[Rule, Aggregate]]]:
    groups: dict[str, list[tuple[Rule, Aggregate]]] = defaultdict(list)
    for rule, aggregate in aggregates.items():
        groups[aggregate.relation].append((rule, aggregate))
    return groups


def _execute(conn: Connection, statement: sa.Executable, tables: Iterable[str]) -> sa.CursorResult[Any]:
    """Run a metric query; a database error names the tables it read (an audit that cannot run)."""
    try:
        return conn.execute(statement)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise SourceError(f"query on {', '.join(sorted(set(tables)))} failed: {reason}") from None


def _measure_aggregates(conn: Connection, group: list[tuple[Rule, Aggregate]]) -> list[Measurement]:
    """One grouped query per relation, whatever the entity types: grouped by all of them at once
    (department x agent is a few hundred groups), then rolled up to each entity type here.
    Rules that measure the same thing (a metric judged per department and per agent) share columns.
    """
    first = group[0][1]
    entity_types = sorted({rule.entity_type for rule, _ in group})
    keys = [first.entities[entity_type].label(f"k_{entity_type}") for entity_type in entity_types]
    measures: dict[tuple[Any, ...], int] = {}
    columns: list[Any] = [*keys, sa.func.max(first.department).label("department_id")]
    for rule, agg in group:
        signature = (rule.metric, tuple(sorted(rule.params.items())))
        if signature not in measures:
            index = measures[signature] = len(measures)
            # FILTER instead of CASE: the database skips the rows outside the population cheaply.
            population = sa.func.count().filter(agg.population)
            numerator = sa.func.coalesce(sa.func.sum(agg.numerator).filter(agg.population), 0)
            columns += [population.label(f"p{index}"), numerator.label(f"n{index}"),
                        (population if _is_one(agg.denominator) else
                         sa.func.coalesce(sa.func.sum(agg.denominator).filter(agg.population), 0)).label(f"d{index}")]
    query = (sa.select(*columns).select_from(first.from_).where(first.window)
             .group_by(*(first.entities[entity_type] for entity_type in entity_types)))
    sql = compile_sql(query, conn.dialect)
    rows = _execute(conn, query, [t for _, agg in group for t in agg.tables]).all()
    measurements: list[Measurement] = []
    for rule, _ in group:
        index = measures[(rule.metric, tuple(sorted(rule.params.items())))]
        totals: dict[str, list[Any]] = {}
        for row in rows:
            values = row._mapping
            entity = values[f"k_{rule.entity_type}"]
            if entity is None:
                continue
            total = totals.setdefault(str(entity), [0, 0.0, 0.0, None])
            total[0] += int(values[f"p{index}"])
            total[1] += float(values[f"n{index}"])
            total[2] += float(values[f"d{index}"])
            total[3] = max(filter(None, (total[3], values["department_id"])), default=None)
        per_entity = [Measurement(rule, rule.entity_type, entity, department, population, numerator, denominator,
                                  query=sql)
                      for entity, (population, numerator, denominator, department) in sorted(totals.items())]
        if rule.entity_type == "department":
            per_entity = [replace(m, department_id=m.entity_id) for m in per_entity]
        measurements.extend(per_entity)
        if rule.entity_type == "department":
            measurements.append(Measurement(
                rule, "company", "company", None, sum(m.population or 0 for m in per_entity),
                sum(m.numerator for m in per_entity), sum(m.denominator for m in per_entity), query=sql,
                rollup=True))
    return measurements


def _is_one(expression: Any) -> bool:
    """A denominator of 1 per record: its sum is the population count, already computed."""
    return isinstance(expression, sa.sql.elements.BindParameter) and expression.value == 1


def _measure_records(conn: Connection, rule: Rule, records: Records) -> list[Measurement]:
    """The offending rows per entity, and a roll-up with the number of records examined."""
    sql = compile_sql(records.query, conn.dialect)
    rows = [dict(row) for row in _execute(conn, records.query, records.tables).mappings()]
    if records.keep is not None:
        rows = [kept for kept in map(records.keep, rows) if kept is not None]
    if records.judge is not None:
        rows = records.judge(conn, rows)
    population = None
    if records.population is not None:
        population = int(_execute(conn, records.population, records.tables).scalar() or 0)
    by_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_entity[str(row["entity_id"])].append(row)
    measurements = [Measurement(rule, rule.entity_type, entity_id, entity_rows[0].get("department_id"),
                                population, rows=tuple(entity_rows), query=sql)
                    for entity_id, entity_rows in by_entity.items()]
    # Per-record rules roll up per entity type: a rule may also have a department aggregate.
    measurements.append(Measurement(rule, "company", f"company/{rule.entity_type}", None, population,
                                    numerator=len(by_entity), query=sql, rollup=True))
    return measurements


def evaluate(computation: Computation) -> list[CheckResult]:
    """Judge every measurement: passed, warning, failed at a severity, or insufficient data."""
    return [_judge(m, computation.directory) for m in computation.measurements]


def _judge(m: Measurement, directory: Directory) -> CheckResult:
    rule = m.rule
    if m.missing_tables:
        return CheckResult(rule.rule_id, rule.area, m.entity_type, m.entity_id, Outcome.INSUFFICIENT_DATA,
                           facts={"rollup": True, "reason": f"missing table: {', '.join(m.missing_tables)}"},
                           evidence={"rule_version": rule.version})
    if rule.kind == "record":
        return _judge_records(m, directory)
    observed = round(m.numerator / m.denominator, 6) if m.denominator else None
    outcome, severity = grade(rule, observed, m.population or 0)
    facts: dict[str, Any] = {"label": directory.label(m.entity_type, m.entity_id), "entity_id": m.entity_id,
                             "observed": observed, "target": rule.target, "population": m.population,
                             "numerator": m.numerator, "denominator": m.denominator}
    if m.rollup:
        facts["rollup"] = True
    evidence = {"query": m.query, "population": m.population,
                "counts": {"numerator": m.numerator, "denominator": m.denominator}, "sample_ids": [],
                "rule_version": rule.version, "unit": rule.unit, "op": rule.op, "text": finding_text(rule, facts)}
    return CheckResult(rule.rule_id, rule.area, m.entity_type, m.entity_id, outcome, severity,
                       department_id=m.department_id, owner_id=directory.head_of(m.department_id),
                       observed=observed, target=rule.target, population=m.population, facts=facts,
                       evidence=evidence)


def _plain(value: Any) -> Any:
    """A JSON-friendly value for evidence."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if hasattr(value, "__float__") and not isinstance(value, (int, float, bool)):
        return float(value)
    return value


def _judge_records(m: Measurement, directory: Directory) -> CheckResult:
    rule = m.rule
    if m.rollup:
        violations = int(m.numerator)
        return CheckResult(rule.rule_id, rule.area, m.entity_type, m.entity_id,
                           Outcome.FAILED if violations else Outcome.PASSED, population=m.population,
                           facts={"rollup": True, "violations": violations},
                           evidence={"query": m.query, "population": m.population,
                                     "counts": {"violations": violations}, "rule_version": rule.version})
    severities = [Severity(rule.severity_for(row)) for row in m.rows]
    worst_index = max(range(len(severities)), key=lambda i: severities[i].rank)
    worst_row = m.rows[worst_index]
    facts = {key: _plain(value) for key, value in worst_row.items()} | {"entity_id": m.entity_id}
    if len(m.rows) > 1:
        facts["rows"] = [{k: _plain(v) for k, v in row.items()} for row in m.rows[:SAMPLE_LIMIT]]
    related = sorted({str(row["review_id"]) for row in m.rows if row.get("review_id")})
    evidence = {"query": m.query, "population": m.population, "counts": {"records": len(m.rows)},
                "sample_ids": ([m.entity_id] + related)[:SAMPLE_LIMIT], "rule_version": rule.version,
                "facts": {k: v for k, v in facts.items() if k != "rows"},
                "text": finding_text(rule, {**worst_row, "entity_id": m.entity_id})}
    owner = worst_row.get("owner_id") or directory.head_of(m.department_id)
    return CheckResult(rule.rule_id, rule.area, m.entity_type, m.entity_id, Outcome.FAILED,
                       severities[worst_index], department_id=m.department_id, owner_id=owner,
                       population=m.population, facts=facts, evidence=evidence)


def collect_samples(source: Source, computation: Computation, results: Sequence[CheckResult]) -> list[CheckResult]:
    """Up to 20 offending record ids for each failed aggregate result.

    No ORDER BY: the database stops at the twentieth match instead of reading every offending
    row of the period to sort it. The ids found are sorted here, so the evidence reads the same
    on a rerun over the same data.
    """
    by_rule = {(rule.rule_id, rule.entity_type): (rule, agg) for rule, agg in computation.aggregates.items()}
    completed: list[CheckResult] = []
    with source.engine.connect() as conn:
        for result in results:
            found = by_rule.get((result.rule_id, result.entity_type))
            if result.outcome is not Outcome.FAILED or found is None or result.facts.get("rollup"):
                completed.append(result)
                continue
            rule, agg = found
            query = (sa.select(agg.record_id).select_from(agg.from_)
                     .where(agg.window, agg.entities[rule.entity_type] == result.entity_id, agg.offending)
                     .limit(SAMPLE_LIMIT))
            ids = sorted(str(value) for value in _execute(conn, query, agg.tables).scalars())
            completed.append(replace(result, evidence={**result.evidence, "sample_ids": ids}))
    return completed

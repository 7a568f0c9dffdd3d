"""The generic engine: compute every rule's metric in the database, then judge it.

compute() runs the SQL: the aggregates that read the same relation share one grouped query;
record rules fetch only the offending rows. evaluate() judges without touching the database.
collect_samples() fetches up to 20 labelled offending records per failed entity, in one query per
rule however many entities failed, so the number of statements an audit sends depends on its
rules, never on its findings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from opsaudit.checks.grading import grade
from opsaudit.checks.metrics import Aggregate, MetricContext, Records, load_builtin_metrics
from opsaudit.checks.results import PLAIN_TYPES, CheckResult, Outcome, ResultSet, Samples, Severity
from opsaudit.checks.scope import EVERYTHING, Scope
from opsaudit.checks.spec import Rule
from opsaudit.checks.sqlfuncs import bounded, bounded_texts, byte_order, compile_sql, offended
from opsaudit.errors import SourceError
from opsaudit.i18n.render import Message
from opsaudit.periods import Period
from opsaudit.source import Source

SAMPLE_LIMIT = 20
# The columns that name a record rule's row: ids, kept whole; its other texts are bounded.
RECORD_KEYS = ("entity_id", "department_id", "owner_id")
# Offending records per failed entity a sample is drawn from, at least (see _thinned).
SAMPLE_POOL = 64
ANALYTIC_SETTINGS = {"work_mem": "64MB"}
# The evidence query's plan expects five rules per offending record where there is about one, and
# a month of a million tickets then crosses the thresholds of LLVM's inliner and optimizer: about
# a second of compiling in each worker for a query that runs for one. Ten times the defaults keeps
# them for the months where they pay (ten million tickets).
EVIDENCE_SETTINGS = ANALYTIC_SETTINGS | {"jit_inline_above_cost": "5000000", "jit_optimize_above_cost": "5000000"}
COMPANY = "company"
# Stands for the entity in an evidence query compiled once per rule, then filled in per finding.
_ENTITY_MARKER = "__opsaudit_entity__"


@dataclass(frozen=True)
class Directory:
    """Names and heads of departments and names of staff, for labels and owners."""

    department_names: Mapping[str, str] = field(default_factory=dict)
    department_heads: Mapping[str, str | None] = field(default_factory=dict)
    staff_names: Mapping[str, str] = field(default_factory=dict)

    def head_of(self, department_id: str | None) -> str | None:
        return self.department_heads.get(department_id) if department_id else None

    def department_name(self, department_id: str | None) -> str | None:
        return self.department_names.get(department_id) if department_id else None


@dataclass(frozen=True)
class Measurement:
    """What the database said about one rule on one entity, before any judgement.

    `rollup`: the count of offending records of a per-record rule, or a rule that could not be
    measured; it informs the summary and is never a finding.
    """

    rule: Rule
    entity_type: str
    entity_id: str
    department_id: str | None = None
    population: int | None = None
    numerator: float = 0.0
    denominator: float = 0.0
    failures: int = 0
    rows: tuple[dict[str, Any], ...] = ()
    rollup: bool = False
    missing_tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvidenceQueries:
    """SQL an auditor can rerun for one finding, compiled once per rule and entity type."""

    figures: str
    records: str

    def for_entity(self, entity_id: str) -> dict[str, str]:
        quoted = "'" + entity_id.replace("'", "''") + "'"
        marker = f"'{_ENTITY_MARKER}'"
        return {"query": self.figures.replace(marker, quoted), "records_query": self.records.replace(marker, quoted)}


class Computation:
    """All measurements of one audit, with what evaluation and evidence need.

    A plain class, not a dataclass: Prefect walks dataclasses and lists passed between tasks
    object by object, and an audit of 2,000 agents has thousands of measurements.
    """

    __slots__ = ("measurements", "directory", "aggregates", "period", "queries")

    def __init__(self, measurements: Sequence[Measurement], directory: Directory,
                 aggregates: Mapping[Rule, Aggregate], period: Period,
                 queries: Mapping[tuple[str, str], EvidenceQueries]) -> None:
        self.measurements = tuple(measurements)
        self.directory = directory
        self.aggregates = dict(aggregates)
        self.period = period
        self.queries = dict(queries)

    def __repr__(self) -> str:
        rules = len({m.rule.rule_id for m in self.measurements})
        return f"Computation({len(self.measurements):,} measurements of {rules} rules, {self.period.label})"


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
            all_rules: Mapping[str, Rule] | None = None, scope: Scope = EVERYTHING) -> Computation:
    """Run every rule's SQL for `period` within `scope`; a rule whose tables are missing is measured as such.

    An audit of some departments has no whole-company results: the sum of those departments
    is not the company's figure.
    """
    registry = load_builtin_metrics()
    shared = all_rules or {rule.rule_id: rule for rule in rules}
    built = {rule: registry[rule.metric](MetricContext(source, period, rule, now, shared, scope)) for rule in rules}
    measurements: list[Measurement] = []
    runnable: dict[Rule, Aggregate | Records] = {}
    for rule, metric in built.items():
        missing = tuple(sorted(set(metric.tables) - available))
        if missing:
            measurements.append(Measurement(rule, COMPANY, f"{COMPANY}/{rule.entity_type}", rollup=True,
                                            missing_tables=missing))
        else:
            runnable[rule] = metric
    queries: dict[tuple[str, str], EvidenceQueries] = {}
    with source.engine.connect() as conn:
        _analytic_session(conn)
        directory = load_directory(source, conn, available)
        if directory.department_names:   # an empty departments table is dq's finding, and names none
            runnable = {rule: of_known_departments(m, source) if isinstance(m, Aggregate) else m
                        for rule, m in runnable.items()}
        aggregates = {rule: m for rule, m in runnable.items() if isinstance(m, Aggregate)}
        for group in _group_aggregates(aggregates).values():
            measurements.extend(_measure_aggregates(conn, group, company=not scope.departments))
        for rule, metric in runnable.items():
            key = (rule.rule_id, rule.entity_type)
            if isinstance(metric, Records):
                measurements.extend(_measure_records(conn, rule, metric))
                queries[key] = _record_queries(metric, conn.dialect)
            else:
                queries[key] = _aggregate_queries(rule, metric, conn.dialect)
                if rule.entity_type == "department":
                    queries[(rule.rule_id, COMPANY)] = _aggregate_queries(rule, metric, conn.dialect, company=True)
    return Computation(measurements, directory, aggregates, period, queries)


def _analytic_session(conn: Connection, settings: Mapping[str, str] = ANALYTIC_SETTINGS) -> None:
    """Room for PostgreSQL to aggregate and rank a month in memory, for this transaction only.

    A grouped query of a few thousand agents needs a few MB, but the planner expects one group per
    agent and department pair and, with the default 4 MB, sorts the month on disk instead of
    hashing it: twice as slow. SET LOCAL ends with the transaction, so the pool's next user
    gets the server's setting back.
    """
    if conn.dialect.name == "postgresql":
        # set_config(..., true) is SET LOCAL: all of them in one statement.
        conn.execute(sa.select(*(sa.func.set_config(name, value, True) for name, value in settings.items())))


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
        raise SourceError(Message.of("error.source.query_failed", tables=sorted(set(tables)), reason=reason)) from None


_SHORT_NAMES = ("p", "n", "d", "f")
_EVIDENCE_NAMES = ("population", "numerator", "denominator", "failures")


def _aggregate_columns(agg: Aggregate, index: int | None = None) -> list[Any]:
    """population, numerator, denominator and failing records of one metric, as FILTER aggregates:
    the database skips the rows outside the population cheaply. Numbered (p0, n0, ...) in the
    grouped query, where a rate has only p and n (see _figures); named in full in the evidence an
    auditor reruns."""
    population = _where(sa.func.count(), agg.population)
    if agg.success is not None:
        numerator = sa.func.count().filter(sa.and_(agg.population, agg.success))
        if index is not None:
            return [population.label(f"p{index}"), numerator.label(f"n{index}")]
        columns = (population, numerator, population, population - numerator)
    else:
        numerator = sa.func.coalesce(_where(sa.func.sum(agg.numerator), agg.population), 0)
        denominator = population if _is_one(agg.denominator) else \
            sa.func.coalesce(_where(sa.func.sum(agg.denominator), agg.population), 0)
        columns = (population, numerator, denominator, sa.func.count().filter(agg.offending))
    names = _EVIDENCE_NAMES if index is None else [f"{short}{index}" for short in _SHORT_NAMES]
    return [column.label(name) for column, name in zip(columns, names, strict=True)]


def _figures(values: Mapping[str, Any], index: int) -> tuple[int, float, float, int]:
    """population, numerator, denominator and failures of one group's row; a rate's denominator is
    its population and its failures the rest of it."""
    population, numerator = int(values[f"p{index}"]), float(values[f"n{index}"])
    if f"d{index}" not in values:
        return population, numerator, float(population), population - int(numerator)
    return population, numerator, float(values[f"d{index}"]), int(values[f"f{index}"])


def of_known_departments(agg: Aggregate, source: Source) -> Aggregate:
    """The aggregate over the records of departments the departments table has. A record of an
    unknown department is dq.reference's finding; rating a department that does not exist would
    raise findings that nobody owns, and its records would skew the company's figure."""
    d = source.table("departments")
    return replace(agg, window=sa.and_(agg.window, agg.department.in_(sa.select(d.c.department_id))))


def _measure_aggregates(conn: Connection, group: list[tuple[Rule, Aggregate]], *,
                        company: bool = True) -> list[Measurement]:
    """One grouped query per relation, whatever the entity types: grouped by all of them at once
    (department x agent is a few thousand groups), then rolled up to each entity type here.
    Rules that measure the same thing (a metric judged per department and per agent) share columns.
    A department rule also gets its company result, judged like any other (audit-rules §3),
    unless `company` is false.
    """
    first = group[0][1]
    entity_types = sorted({rule.entity_type for rule, _ in group})
    keys = [first.entities[entity_type].label(f"k_{entity_type}") for entity_type in entity_types]
    measures: dict[tuple[Any, ...], int] = {}
    columns: list[Any] = [*keys, sa.func.max(first.department).label("department_id")]
    for rule, agg in group:
        signature = _signature(rule)
        if signature not in measures:
            measures[signature] = len(measures)
            columns += _aggregate_columns(agg, measures[signature])
    query = (sa.select(*columns).select_from(first.from_).where(first.window)
             .group_by(*(first.entities[entity_type] for entity_type in entity_types)))
    rows = [row._mapping for row in _execute(conn, query, [t for _, agg in group for t in agg.tables])]
    measurements: list[Measurement] = []
    for rule, _ in group:
        index = measures[_signature(rule)]
        totals: dict[str, list[Any]] = {}
        for values in rows:
            entity = values[f"k_{rule.entity_type}"]
            if entity is None:
                continue
            total = totals.setdefault(str(entity), [0, 0.0, 0.0, 0, None])
            for position, figure in enumerate(_figures(values, index)):
                total[position] += figure
            total[4] = max(filter(None, (total[4], values["department_id"])), default=None)
        per_entity = [Measurement(rule, rule.entity_type, entity, entity if rule.entity_type == "department"
                                  else department, population, numerator, denominator, failures)
                      for entity, (population, numerator, denominator, failures, department) in sorted(totals.items())]
        measurements.extend(per_entity)
        if company and rule.entity_type == "department":
            measurements.append(Measurement(
                rule, COMPANY, COMPANY, None, sum(m.population or 0 for m in per_entity),
                sum(m.numerator for m in per_entity), sum(m.denominator for m in per_entity),
                sum(m.failures for m in per_entity)))
    return measurements


def _where(aggregate: Any, condition: Any) -> Any:
    """The aggregate over the rows where `condition` holds; over all rows when it always does."""
    return aggregate if isinstance(condition, sa.sql.elements.True_) else aggregate.filter(condition)


def _signature(rule: Rule) -> tuple[Any, ...]:
    return rule.metric, tuple(sorted(rule.params.items())), rule.op, rule.target


def _is_one(expression: Any) -> bool:
    """A denominator of 1 per record: its sum is the population count, already computed."""
    return isinstance(expression, sa.sql.elements.BindParameter) and expression.value == 1


def _aggregate_queries(rule: Rule, agg: Aggregate, dialect: sa.Dialect, *, company: bool = False) -> EvidenceQueries:
    """The figures of one entity, and its offending records, as SQL to rerun as it is."""
    where = [agg.window]
    if not company:
        where.append(agg.entities[rule.entity_type] == sa.literal(_ENTITY_MARKER))
    figures = sa.select(*_aggregate_columns(agg)).select_from(agg.from_).where(*where)
    records = (sa.select(agg.record_id.label("record_id"), *agg.samples).select_from(agg.from_)
               .where(*where, agg.offending).order_by(agg.record_id))
    return EvidenceQueries(compile_sql(figures, dialect), compile_sql(records, dialect))


def _record_queries(records: Records, dialect: sa.Dialect) -> EvidenceQueries:
    """The offending rows of one record, from the rule's own query."""
    sql = compile_sql(records.query, dialect)
    one = f"SELECT * FROM ({sql}) AS offending WHERE entity_id = '{_ENTITY_MARKER}'"
    return EvidenceQueries(one, one)


def _measure_records(conn: Connection, rule: Rule, records: Records) -> list[Measurement]:
    """The offending rows per entity, and a roll-up with the number of records examined."""
    query = bounded_texts(records.query, keep=RECORD_KEYS)
    rows = [dict(row) for row in _execute(conn, query, records.tables).mappings()]
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
                                population, rows=tuple(entity_rows))
                    for entity_id, entity_rows in by_entity.items()]
    # Per-record rules roll up per entity type: a rule may also have a department aggregate.
    measurements.append(Measurement(rule, COMPANY, f"{COMPANY}/{rule.entity_type}", None, population,
                                    numerator=len(by_entity), rollup=True))
    return measurements


def evaluate(computation: Computation) -> ResultSet:
    """Judge every measurement: passed, warning, failed at a severity, or insufficient data."""
    return ResultSet(_judge(m, computation) for m in computation.measurements)


def _judge(m: Measurement, computation: Computation) -> CheckResult:
    rule = m.rule
    if m.missing_tables:
        return CheckResult(rule.rule_id, rule.area, m.entity_type, m.entity_id, Outcome.INSUFFICIENT_DATA,
                           facts={"rollup": True, "reason": f"missing table: {', '.join(m.missing_tables)}"},
                           evidence={"rule_version": rule.version})
    if rule.kind == "record":
        return _judge_records(m, computation)
    directory = computation.directory
    observed = round(m.numerator / m.denominator, 6) if m.denominator else None
    outcome, severity = grade(rule, observed, m.population or 0)
    facts: dict[str, Any] = {
        "period": computation.period.label, "department_id": m.department_id,
        "department_name": directory.department_name(m.department_id), "observed": observed,
        "target": rule.target, "population": m.population, "numerator": m.numerator,
        "denominator": m.denominator, "failures": m.failures, "unit": rule.unit, "op": rule.op,
        "gap": round(observed - rule.target, 6) if observed is not None and rule.target is not None else None,
        "entity_id": m.entity_id,
    }
    if m.entity_type == "agent":
        facts |= {"agent_id": m.entity_id, "agent_name": directory.staff_names.get(m.entity_id)}
    evidence = {"population": m.population, "counts": {"numerator": m.numerator, "denominator": m.denominator,
                                                       "failures": m.failures},
                "sample_ids": [], "rule_version": rule.version, "unit": rule.unit, "op": rule.op}
    if outcome is Outcome.FAILED:
        evidence |= computation.queries[(rule.rule_id, m.entity_type)].for_entity(m.entity_id)
    return CheckResult(rule.rule_id, rule.area, m.entity_type, m.entity_id, outcome, severity,
                       department_id=m.department_id, owner_id=directory.head_of(m.department_id),
                       observed=observed, target=rule.target, population=m.population, facts=facts,
                       evidence=evidence)


def plain(value: Any) -> Any:
    """A JSON-friendly value for facts and evidence."""
    if value is None or type(value) in PLAIN_TYPES:
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "__float__") and not isinstance(value, (int, float, bool)):
        return float(value)
    return value


def _judge_records(m: Measurement, computation: Computation) -> CheckResult:
    rule = m.rule
    if m.rollup:
        violations = int(m.numerator)
        return CheckResult(rule.rule_id, rule.area, m.entity_type, m.entity_id,
                           Outcome.FAILED if violations else Outcome.PASSED, population=m.population,
                           facts={"rollup": True, "violations": violations},
                           evidence={"population": m.population, "counts": {"violations": violations},
                                     "rule_version": rule.version})
    directory = computation.directory
    severities = [Severity(rule.severity_for(row)) for row in m.rows]
    worst_index = max(range(len(severities)), key=lambda i: severities[i].rank)
    worst_row = m.rows[worst_index]
    facts = {key: plain(value) for key, value in worst_row.items()} | {
        "entity_id": m.entity_id, "period": computation.period.label,
        "department_name": directory.department_name(m.department_id)}
    if len(m.rows) > 1:
        facts["rows"] = [{k: plain(v) for k, v in row.items()} for row in m.rows[:SAMPLE_LIMIT]]
    related = sorted({str(row["review_id"]) for row in m.rows if row.get("review_id")})
    evidence = {"population": m.population, "counts": {"records": len(m.rows)},
                "sample_ids": ([m.entity_id] + related)[:SAMPLE_LIMIT], "rule_version": rule.version,
                "facts": {k: v for k, v in facts.items() if k != "rows"},
                **computation.queries[(rule.rule_id, rule.entity_type)].for_entity(m.entity_id)}
    owner = worst_row.get("owner_id") or directory.head_of(m.department_id)
    return CheckResult(rule.rule_id, rule.area, m.entity_type, m.entity_id, Outcome.FAILED,
                       severities[worst_index], department_id=m.department_id, owner_id=owner,
                       population=m.population, facts=facts, evidence=evidence)


def collect_samples(source: Source, computation: Computation, results: ResultSet) -> ResultSet:
    """Up to 20 labelled offending records for each failed aggregate result, taken in id order so
    that the evidence reads the same on a rerun over the same data (on PostgreSQL, when every
    failed entity has thousands, from a hashed share of them: see _thinned).

    One query per relation read the same way, whatever the number of rules and failed entities:
    it reads the month once and ranks each rule's offending records per department and agent. A
    rule judged per department, per agent and for the company has the same offending records, and
    a department's (or the company's) first 20 are the first 20 of its agents' first 20s.
    """
    wanted: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    measured: dict[tuple[str, str], Aggregate] = {}
    fewest: dict[tuple[str, str], int] = {}
    with source.engine.connect() as conn:
        # The rules of one id whose offending records are the same, whatever entity they judge.
        aggregates = {(rule.rule_id, rule.entity_type): (agg, (rule.rule_id, compile_sql(agg.offending, conn.dialect)))
                      for rule, agg in computation.aggregates.items()}
        for result in results:
            # A company result is the department rule's roll-up: its records come from the same query.
            measured_as = "department" if result.entity_type == COMPANY else result.entity_type
            if result.outcome is not Outcome.FAILED or result.facts.get("rollup") or \
                    (result.rule_id, measured_as) not in aggregates:
                continue
            agg, key = aggregates[(result.rule_id, measured_as)]
            measured.setdefault(key, agg)
            wanted[key][result.entity_type].add(result.entity_id)
            fewest[key] = min(fewest.get(key, int(result.facts.get("failures") or 0)),
                              int(result.facts.get("failures") or 0))
        if not wanted:
            return results
        _analytic_session(conn, EVIDENCE_SETTINGS)
        samples: dict[tuple[str, str, str], Samples] = {}
        readings: dict[tuple[str, ...], list[tuple[str, str]]] = defaultdict(list)
        for key, entities in wanted.items():
            if set(entities) == {COMPANY}:
                # The company alone: ORDER BY ... LIMIT, which PostgreSQL answers with a top-N heap.
                samples[(key[0], COMPANY, COMPANY)] = _company_samples(conn, measured[key])
            else:
                readings[_reading(measured[key], conn.dialect)].append(key)
        for keys in readings.values():
            members = [_Member(measured[key], wanted[key], fewest[key]) for key in keys]
            for key, found in zip(keys, _ranked_samples(conn, members), strict=True):
                for (entity_type, entity), rows in found.items():
                    samples[(key[0], entity_type, entity)] = rows
    return ResultSet(_with_samples(result, samples.get((result.rule_id, result.entity_type, result.entity_id)))
                     for result in results)


@dataclass(frozen=True)
class _Member:
    """A rule in a shared evidence query: its aggregate, the entities wanted (type -> ids), and
    the fewest offending records of one of them."""

    agg: Aggregate
    wanted: Mapping[str, set[str]]
    fewest: int

    @property
    def types(self) -> list[str]:
        return sorted(t for t in self.wanted if t != COMPANY)


def _reading(agg: Aggregate, dialect: sa.Dialect) -> tuple[str, ...]:
    """What makes two rules' evidence one query: the same relation, period window and record id."""
    return (compile_sql(agg.from_, dialect), compile_sql(agg.window, dialect), compile_sql(agg.record_id, dialect))


def _thinned(agg: Aggregate, fewest: int, dialect: sa.Dialect) -> Any:
    """The offending records a sample may come from: all of them, or on PostgreSQL, when every
    failed entity has thousands, those whose id hashes into one of 2^k buckets, so that each
    entity keeps about SAMPLE_POOL of them and the database ranks a fraction of the month, not all
    of it. The draw is the same on every rerun over the same data, and spread over the period."""
    bits = max(0, (fewest // SAMPLE_POOL).bit_length() - 1)
    if bits == 0 or dialect.name != "postgresql":
        return sa.true()
    bucket = sa.func.hashtext(sa.cast(agg.record_id, sa.Text)).op("&")((1 << bits) - 1)
    return bucket == 0


def _company_samples(conn: Connection, agg: Aggregate) -> Samples:
    """The company's first offending records (id order), with the rule's sample columns."""
    query = (sa.select(agg.record_id.label("sample_id"), *(bounded(c).label(c.key) for c in agg.samples))
             .select_from(agg.from_)
             .where(agg.window, agg.offending).order_by(byte_order(agg.record_id, conn.dialect)).limit(SAMPLE_LIMIT))
    rows = _execute(conn, query, agg.tables)
    return _first(tuple(rows.keys()), [(row[0], tuple(plain(value) for value in row)) for row in rows.tuples()])


def _ranked_samples(conn: Connection, members: Sequence[_Member]) -> list[dict[tuple[str, str], Samples]]:
    """For each member rule, (entity type, entity id) -> its first offending records (id order),
    with the rule's sample columns; the company's id is COMPANY."""
    query, shown = _ranking_query(members, conn.dialect)
    rows = _execute(conn, query, {t for m in members for t in m.agg.tables})
    at = {name: i for i, name in enumerate(rows.keys())}
    rule_at, record_at = at["rule_k"], at["sample_id"]
    layouts = [([(t, at[f"entity_{t}"], m.wanted[t]) for t in m.types],
                [at[f"s{i}_{column.key}"] for j, column in shown if j == i],
                COMPANY in m.wanted) for i, m in enumerate(members)]
    columns = [("sample_id", *(column.key for j, column in shown if j == i)) for i in range(len(members))]
    found: list[dict[tuple[str, str], list[tuple[Any, tuple[Any, ...]]]]] = [defaultdict(list) for _ in members]
    # Fetched at once: row by row, the driver's fetchone costs more than the loop itself.
    for row in rows.tuples().all():
        k = row[rule_at]
        entities, values, company = layouts[k]
        # One tuple per record, shared by its agent's, department's and the company's samples.
        record = (row[record_at], (plain(row[record_at]), *(plain(row[i]) for i in values)))
        for t, i, ids in entities:
            if str(row[i]) in ids:
                found[k][(t, str(row[i]))].append(record)
        if company:
            found[k][(COMPANY, COMPANY)].append(record)
    return [{owner: _first(columns[k], records) for owner, records in by_owner.items()}
            for k, by_owner in enumerate(found)]


def _first(columns: tuple[str, ...], records: list[tuple[Any, tuple[Any, ...]]]) -> Samples:
    """The first SAMPLE_LIMIT records in the database's order, listed by their ids as text."""
    first = sorted(records, key=_id_order)[:SAMPLE_LIMIT]
    return Samples(columns, tuple(sorted((values for _, values in first), key=_text_id)))


def _ranking_query(members: Sequence[_Member], dialect: sa.Dialect) -> tuple[sa.Select, list[tuple[int, Any]]]:
    """One reading of the members' relation: each record paired with the rules it offends (see
    sqlfuncs.offended) and ranked per rule, agent and department, up to SAMPLE_LIMIT; and the
    sample columns shown, by member index. The database sorts only the offending records."""
    first = members[0].agg
    rule, k, met = offended([sa.and_(m.agg.offending, _chosen(m), _thinned(m.agg, m.fewest, dialect))
                             for m in members], dialect, "rule")
    types = sorted({t for member in members for t in member.types})

    def per_rule(t: str, binary: bool) -> Any:
        """Rule k's key of entity type t, or null where rule k does not judge that type."""
        return sa.case(*((k == i, byte_order(m.agg.entities[t], dialect) if binary else m.agg.entities[t])
                         for i, m in enumerate(members) if t in m.types), else_=sa.null())

    shown = [(i, column) for i, m in enumerate(members) for column in m.agg.samples]
    ranked = (sa.select(k.label("rule_k"), *(per_rule(t, False).label(f"entity_{t}") for t in types),
                        first.record_id.label("sample_id"),
                        # Only rule k's own columns: the others' would be sent and parsed for nothing.
                        *(sa.case((k == i, bounded(column))).label(f"s{i}_{column.key}") for i, column in shown),
                        sa.func.row_number().over(partition_by=[k, *(per_rule(t, True) for t in types)],
                                                  order_by=byte_order(first.record_id, dialect)).label("rank"))
              .select_from(first.from_).join(rule, met).where(first.window).subquery())
    return sa.select(*(c for c in ranked.c if c.name != "rank")).where(ranked.c.rank <= SAMPLE_LIMIT), shown


def _chosen(member: _Member) -> Any:
    """Only the records of the entities wanted, unless the company's result is wanted too."""
    if COMPANY in member.wanted:
        return sa.true()
    return sa.or_(*(member.agg.entities[t].in_(sorted(member.wanted[t])) for t in member.types))


def _id_order(row: tuple[Any, tuple[Any, ...]]) -> tuple[bool, Any]:
    return row[0] is None, row[0]


def _text_id(values: tuple[Any, ...]) -> str:
    return str(values[0])


def _with_samples(result: CheckResult, samples: Samples | None) -> CheckResult:
    if samples is None or not samples.rows:
        return result
    return replace(result, evidence={**result.evidence, "sample_ids": samples.ids, "samples": samples})

"""The audit report's model (seed 000 §5.3), read from the store for one audit run.

Every figure is read in a fixed number of statements, whatever the number of findings: the run,
its check results, its findings, its sample, the earlier runs of the same audit with their
results and finding counts, and the status of earlier findings. Texts are left to the template,
which renders them in the report's language; this model holds codes, figures and the finding
texts rendered at read time.

Findings the audit team lead withdrew are out of every count and list, and listed apart with
their reasons: the run's own, and those of the audit withdrawn since its previous report. A periodic
report also lists the manual findings of its areas found during its period (seed 000 §5.2): an
auditor's findings on site sit beside what the data showed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.audit import audit_plan, load_rules
from opsaudit.checks.spec import Rule
from opsaudit.config.loader import Config
from opsaudit.errors import InputError
from opsaudit.i18n.render import Message
from opsaudit.periods import parse_period
from opsaudit.reports.review import ReviewStamp, stamp_of
from opsaudit.settings import Settings
from opsaudit.store.finding_views import SEVERITIES, finding_text, manual_in, withdrawn_in
from opsaudit.store.findings import COUNTED, of_run
from opsaudit.store.lifecycle import NOT_CLOSED, MajorHandling, major_handling_of
from opsaudit.store.schema import audit_runs, check_results, findings, samples
from opsaudit.store.times import from_db, to_db

# How much the report itself lists; everything is in the CSV attachment.
DETAILS_PER_SEVERITY = 15
AGENTS_SHOWN = 40
GROUPS_SHOWN = 30
TREND_PERIODS = 6
_RANK = {severity: index for index, severity in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class RunFacts:
    """The audit run the report is about."""

    id: str
    audit: str
    kind: str
    period: str
    status: str
    seed: int | None
    parameters: Mapping[str, Any]
    as_of: datetime  # the audit's clock in OPSAUDIT_TIMEZONE: what "overdue" is measured against


@dataclass(frozen=True)
class RuleLine:
    """A rule the run judged, with its threshold, and how its results came out."""

    rule_id: str
    area: str
    entity_type: str
    target: float | None
    unit: str | None
    op: str | None
    min_population: int | None
    outcomes: Mapping[str, int]


@dataclass(frozen=True)
class Kpi:
    """A department's (or the company's) figure against its target."""

    rule_id: str
    entity_type: str
    entity_id: str
    department: str | None
    observed: float | None
    target: float | None
    unit: str | None
    op: str | None
    outcome: str
    severity: str | None


@dataclass(frozen=True)
class Problem:
    """One finding as the report shows it in full."""

    id: str
    rule_id: str
    severity: str
    title: str
    description: str
    entity_type: str
    entity_id: str
    department: str | None
    owner: str | None
    due_at: datetime | None
    plan_due_at: datetime | None
    recurring: bool
    status: str
    sample_ids: tuple[str, ...]


@dataclass(frozen=True)
class Withdrawn:
    """A finding the audit team lead withdrew, as the report lists it."""

    id: str
    title: str
    entity_type: str
    entity_id: str
    department: str | None
    by: str
    at: datetime
    reason: str | None


@dataclass(frozen=True)
class Group:
    """The findings of one rule in one department: where problems concentrate."""

    department: str | None
    rule_id: str
    title: str
    severity: str  # the most severe of the group
    count: int
    severities: Mapping[str, int]
    first_due: datetime | None


@dataclass(frozen=True)
class AgentRow:
    """An agent's failed result, one line of the compact table."""

    agent: str
    department: str | None
    rule_id: str
    observed: float | None
    target: float | None
    unit: str | None
    severity: str


@dataclass(frozen=True)
class TrendPoint:
    period: str
    findings: Mapping[str, int]  # severity -> count
    kpis: Mapping[str, float]  # rule id -> the company's figure


@dataclass(frozen=True)
class SampleDesign:
    seed: int | None
    design: Mapping[str, Any]
    size: int
    by_department: Sequence[tuple[str, int]]
    by_channel: Sequence[tuple[str, int]]


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, in codes and figures."""

    run: RunFacts
    deadlines: Mapping[str, int]
    departments: Sequence[str]
    sources: Sequence[tuple[str, int | None]]
    rules: Sequence[RuleLine]
    quality: Sequence[Kpi]  # the data-quality checks that did not pass
    quality_total: int
    sample: SampleDesign | None
    severity_counts: Mapping[str, int]
    outcome_counts: Mapping[str, int]
    total_findings: int
    details: Mapping[str, Sequence[Problem]]
    groups: Sequence[Group]
    agents: Sequence[AgentRow]
    agents_total: int
    agent_severities: Mapping[str, int]
    kpis: Sequence[Kpi]
    warnings: int
    trend: Sequence[TrendPoint]
    by_department: Sequence[tuple[str | None, Mapping[str, int]]]
    by_rule: Sequence[tuple[str, int]]
    recommendations: Sequence[tuple[str, str, int]]  # rule id, worst severity, findings
    earlier: Mapping[str, Mapping[str, int]]  # open/overdue/closed -> severity -> count
    handling: Mapping[str, MajorHandling]  # the listed major findings' special meeting and task force
    manual: Sequence[Problem]  # the manual findings of the audit's areas found in its period
    withdrawn: Sequence[Withdrawn]
    staff_names: Mapping[str, str]
    department_names: Mapping[str, str]
    review: ReviewStamp


def load_report_data(conn: Connection, settings: Settings, config: Config, run_id: str, language: str, *,
                     staff_names: Mapping[str, str], department_names: Mapping[str, str],
                     review: ReviewStamp | None = None) -> ReportData:
    """The report of run `run_id`, read in a constant number of statements (names of people and
    departments come from the operational database, read once by the caller); `review` is the
    review it states, by default the store's."""
    zone = settings.tz
    run = _run(conn, run_id, zone)
    results = list(conn.execute(sa.select(check_results).where(check_results.c.audit_run_id == run_id)
                                .order_by(check_results.c.rule_id, check_results.c.entity_type,
                                          check_results.c.entity_id)).mappings())
    # The report shows a few sample ids of a finding, never the rest of its evidence: a run of
    # thousands of findings need not load their samples.
    columns = [column for column in findings.c if column.name != "evidence"]
    rows = list(conn.execute(sa.select(*columns, findings.c.evidence["sample_ids"].label("sample_ids"))
                             .where(of_run(run_id), COUNTED)
                             .order_by(_severity_rank(), findings.c.due_at, findings.c.rule_id,
                                       findings.c.entity_id)).mappings())
    kpis = [_kpi(r) for r in results if r["entity_type"] in ("company", "department")
            and r["target"] is not None and r["area"] != "data_quality" and not _facts(r).get("rollup")]
    deadlines = config.thresholds.deadlines
    details = _details(rows, language, zone)
    return ReportData(
        run=run,
        deadlines={"general": deadlines.general, "important": deadlines.important, "major": deadlines.major,
                   "major_plan": deadlines.major_plan},
        departments=sorted({r["department_id"] for r in results if r["department_id"]}),
        sources=_sources(results), rules=_rules(load_rules(settings, config), run, results),
        quality=[_kpi(r) for r in results if r["area"] == "data_quality" and r["outcome"] != "passed"],
        quality_total=sum(r["area"] == "data_quality" for r in results),
        sample=_sample(conn, run),
        severity_counts=_count(rows, "severity"),
        outcome_counts=Counter(r["outcome"] for r in results if not _facts(r).get("rollup")),
        total_findings=len(rows), details=details, groups=_groups(rows, language, zone),
        agents=_agents(rows), agents_total=sum(r["entity_type"] == "agent" for r in rows),
        agent_severities=Counter(r["severity"] for r in rows if r["entity_type"] == "agent"),
        kpis=sorted(kpis, key=lambda k: (k.rule_id, k.entity_type != "company", k.entity_id)),
        warnings=sum(k.outcome == "warning" for k in kpis),
        trend=_trend(conn, run), by_department=_by_department(rows), by_rule=_by_rule(rows),
        recommendations=_recommendations(rows), earlier=_earlier(conn, run),
        handling=major_handling_of(conn, [problem.id for problem in details["major"]]),
        manual=_manual(conn, config, run, language, zone), withdrawn=_withdrawn(conn, config, run, language, zone),
        staff_names=staff_names,
        department_names=department_names, review=review or stamp_of(conn, settings, run_id, language))


def _run(conn: Connection, run_id: str, zone: tzinfo) -> RunFacts:
    row = conn.execute(sa.select(audit_runs).where(audit_runs.c.id == run_id)).mappings().first()
    if row is None:
        raise InputError(Message.of("error.run.unknown", prefix=run_id, table=audit_runs.name))
    return RunFacts(row["id"], row["audit"], row["kind"], row["period"], row["status"], row["seed"],
                    row["parameters"] or {}, _clock(row, zone))


def _clock(row: RowMapping, zone: tzinfo) -> datetime:
    """A run's clock in `zone`. The audit's clock (a naive local time, fixed by --now) keeps a
    report of the run the same whenever it is rendered; a run that did not record it falls back
    to when it ended."""
    clock = (row["parameters"] or {}).get("now")
    as_of = datetime.fromisoformat(clock).replace(tzinfo=zone) if clock \
        else from_db(row["finished_at"] or row["started_at"], zone)
    return as_of.astimezone(zone)


def _severity_rank() -> sa.ColumnElement[int]:
    return sa.case(*((findings.c.severity == s, i) for i, s in enumerate(SEVERITIES)), else_=len(SEVERITIES))


def _facts(row: RowMapping) -> dict[str, Any]:
    return (row["details"] or {}).get("facts") or {}


def _kpi(row: RowMapping) -> Kpi:
    facts = _facts(row)
    return Kpi(row["rule_id"], row["entity_type"], row["entity_id"], row["department_id"], row["observed"],
               row["target"], facts.get("unit"), facts.get("op"), row["outcome"], row["severity"])


def _count(rows: Sequence[RowMapping], column: str) -> dict[str, int]:
    return dict(Counter(row[column] for row in rows))


def _sources(results: Sequence[RowMapping]) -> list[tuple[str, int | None]]:
    """The tables read and their rows in the period, as the data-quality checks counted them."""
    tables: dict[str, int | None] = {}
    for row in results:
        if row["entity_type"] != "table_column":
            continue
        table = row["entity_id"].split(".", 1)[0]
        counted = row["population"]
        tables[table] = max(tables.get(table) or 0, counted) if counted is not None else tables.get(table)
    return sorted(tables.items())


def _rules(rules: Sequence[Rule], run: RunFacts, results: Sequence[RowMapping]) -> list[RuleLine]:
    """The rules run (as the run recorded them) with their effective thresholds."""
    outcomes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for row in results:
        if row["area"] != "data_quality" and not _facts(row).get("rollup"):
            outcomes[(row["rule_id"], row["entity_type"])][row["outcome"]] += 1
    recorded = {tuple(item.split(":", 1)) for item in run.parameters.get("rules", [])} or set(outcomes)
    known = {(r.rule_id, r.entity_type): r for r in rules}
    lines = []
    for key in sorted(recorded):
        rule = known.get(key)
        if rule is None or rule.area == "data_quality":
            continue
        lines.append(RuleLine(rule.rule_id, rule.area, rule.entity_type, rule.target, rule.unit, rule.op,
                              rule.min_population if rule.kind != "record" else None, dict(outcomes.get(key, {}))))
    return lines


def _sample(conn: Connection, run: RunFacts) -> SampleDesign | None:
    """The sample design and seed of a sampled audit, with the draw counted by the database."""
    rows = conn.execute(sa.select(samples.c.department_id, samples.c.channel, sa.func.count())
                        .where(samples.c.audit_run_id == run.id)
                        .group_by(samples.c.department_id, samples.c.channel)).all()
    design = run.parameters.get("sampling")
    if not rows and not design:
        return None
    departments: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    for department, channel, number in rows:
        departments[department] += number
        channels[channel] += number
    return SampleDesign(run.seed, design or {}, sum(departments.values()), sorted(departments.items()),
                        sorted(channels.items()))


def _details(rows: Sequence[RowMapping], language: str, zone: tzinfo) -> dict[str, list[Problem]]:
    """The most severe findings in full, at most DETAILS_PER_SEVERITY of each severity; agents'
    results go to the compact table instead."""
    shown: dict[str, list[Problem]] = {severity: [] for severity in SEVERITIES}
    for row in rows:
        bucket = shown[row["severity"]]
        if row["entity_type"] == "agent" or len(bucket) >= DETAILS_PER_SEVERITY:
            continue
        bucket.append(_problem(row, language, zone, tuple(str(s) for s in (row["sample_ids"] or [])[:5])))
    return shown


def _problem(row: RowMapping, language: str, zone: tzinfo, sample_ids: tuple[str, ...] = ()) -> Problem:
    title, description = finding_text(row, language)
    return Problem(row["id"], row["rule_id"], row["severity"], title, description, row["entity_type"],
                   row["entity_id"], row["department_id"], row["owner_id"], _local(row["due_at"], zone),
                   _local(row["plan_due_at"], zone), bool(row["recurring"]), row["status"], sample_ids)


def _window(run: RunFacts, zone: tzinfo) -> tuple[datetime, datetime]:
    """The run's period as aware instants."""
    period = parse_period(run.period)
    return period.start.replace(tzinfo=zone), period.end.replace(tzinfo=zone)


def _areas(config: Config, run: RunFacts) -> tuple[str, ...]:
    """The areas a periodic audit covers; a special audit or spot check lists no manual findings."""
    return tuple(audit_plan(config, run.audit).areas) if run.kind == "periodic" else ()


def _manual(conn: Connection, config: Config, run: RunFacts, language: str, zone: tzinfo) -> list[Problem]:
    start, end = _window(run, zone)
    areas = _areas(config, run)
    return [_problem(row, language, zone) for row in manual_in(conn, areas, start, end)] if areas else []


def _withdrawn(conn: Connection, config: Config, run: RunFacts, language: str, zone: tzinfo) -> list[Withdrawn]:
    """The run's withdrawn findings, and those of its audit and of its areas' manual findings
    withdrawn since the audit's previous report, up to the run's clock."""
    lines = []
    for withdrawal in withdrawn_in(conn, run_id=run.id, audit=run.audit, areas=_areas(config, run),
                                   start=_since(conn, run, zone), end=run.as_of):
        row = withdrawal.finding
        lines.append(Withdrawn(row["id"], finding_text(row, language)[0], row["entity_type"], row["entity_id"],
                               row["department_id"], withdrawal.by, withdrawal.at.astimezone(zone),
                               withdrawal.reason))
    return lines


def _since(conn: Connection, run: RunFacts, zone: tzinfo) -> datetime:
    """The clock of the audit's previous report: its latest successful run of an earlier period
    started before this one; the start of the period when there is none. Counting from there, not
    from the period's start, a finding withdrawn between the end of a period and its audit is in
    that audit's report, the next one (interface.md); a later rerun of an earlier period leaves this
    report as it was."""
    started = sa.select(audit_runs.c.started_at).where(audit_runs.c.id == run.id).scalar_subquery()
    previous = conn.execute(sa.select(audit_runs.c.parameters, audit_runs.c.started_at, audit_runs.c.finished_at)
                            .where(audit_runs.c.audit == run.audit, audit_runs.c.kind == run.kind,
                                   audit_runs.c.period_start < parse_period(run.period).start,
                                   audit_runs.c.status == "succeeded", audit_runs.c.started_at < started)
                            .order_by(audit_runs.c.period_start.desc(), audit_runs.c.started_at.desc())
                            .limit(1)).mappings().first()
    return _clock(previous, zone) if previous else _window(run, zone)[0]


def _local(moment: datetime | None, zone: tzinfo) -> datetime | None:
    return from_db(moment, zone)


def _groups(rows: Sequence[RowMapping], language: str, zone: tzinfo) -> list[Group]:
    """Findings by department and rule, most severe and most numerous first."""
    from opsaudit.i18n import text

    grouped: dict[tuple[str | None, str], list[RowMapping]] = defaultdict(list)
    for row in rows:
        grouped[(row["department_id"], row["rule_id"])].append(row)
    groups = []
    for (department, rule_id), members in grouped.items():
        severities = Counter(m["severity"] for m in members)
        worst = min(severities, key=_RANK.__getitem__)
        dues = [from_db(m["due_at"], zone) for m in members if m["due_at"] is not None]
        groups.append(Group(department, rule_id, text(f"rule.{rule_id}.title", language), worst, len(members),
                            dict(severities), min(dues) if dues else None))
    groups.sort(key=lambda g: (_RANK[g.severity], -g.count, g.department or "", g.rule_id))
    return groups[:GROUPS_SHOWN]


def _agents(rows: Sequence[RowMapping]) -> list[AgentRow]:
    """The agents' failed results, most severe and furthest from target first."""
    agents = [row for row in rows if row["entity_type"] == "agent"]
    agents.sort(key=lambda r: (_RANK[r["severity"]], -_gap(r), r["entity_id"], r["rule_id"]))
    return [AgentRow(r["entity_id"], r["department_id"], r["rule_id"], r["observed"], r["target"],
                     (r["facts"] or {}).get("unit"), r["severity"]) for r in agents[:AGENTS_SHOWN]]


def _gap(row: RowMapping) -> float:
    if row["observed"] is None or row["target"] is None:
        return 0.0
    return abs(row["target"] - row["observed"])


def _by_department(rows: Sequence[RowMapping]) -> list[tuple[str | None, dict[str, int]]]:
    counts: dict[str | None, Counter[str]] = defaultdict(Counter)
    for row in rows:
        counts[row["department_id"]][row["severity"]] += 1
    return sorted(((d, dict(c)) for d, c in counts.items()),
                  key=lambda item: (-sum(item[1].values()), item[0] or ""))


def _by_rule(rows: Sequence[RowMapping]) -> list[tuple[str, int]]:
    return sorted(Counter(row["rule_id"] for row in rows).items(), key=lambda item: (-item[1], item[0]))


def _recommendations(rows: Sequence[RowMapping]) -> list[tuple[str, str, int]]:
    """One recommendation per rule that raised findings, the most severe rule first."""
    worst: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for row in rows:
        counts[row["rule_id"]] += 1
        if row["rule_id"] not in worst or _RANK[row["severity"]] < _RANK[worst[row["rule_id"]]]:
            worst[row["rule_id"]] = row["severity"]
    return sorted(((rule, worst[rule], counts[rule]) for rule in counts),
                  key=lambda item: (_RANK[item[1]], -item[2], item[0]))


def _trend(conn: Connection, run: RunFacts) -> list[TrendPoint]:
    """This period and up to TREND_PERIODS - 1 before it, of the same audit: the latest successful
    run of each period, its findings by severity and the company's figures."""
    start = parse_period(run.period).start
    earlier = conn.execute(
        sa.select(audit_runs.c.id, audit_runs.c.period).where(
            audit_runs.c.audit == run.audit, audit_runs.c.kind == run.kind, audit_runs.c.period_start < start,
            audit_runs.c.status == "succeeded", audit_runs.c.id != run.id)
        .order_by(audit_runs.c.period_start.desc(), audit_runs.c.started_at.desc())).all()
    chosen: dict[str, str] = {}
    for run_id, period in earlier:
        if period not in chosen and len(chosen) < TREND_PERIODS - 1:
            chosen[period] = run_id
    by_run = {run_id: period for period, run_id in chosen.items()} | {run.id: run.period}
    ids = list(by_run)
    counted = conn.execute(sa.select(findings.c.audit_run_id, findings.c.severity, sa.func.count())
                           .where(findings.c.audit_run_id.in_(ids), COUNTED)
                           .group_by(findings.c.audit_run_id, findings.c.severity)).all()
    figures = conn.execute(sa.select(check_results.c.audit_run_id, check_results.c.rule_id, check_results.c.observed)
                           .where(check_results.c.audit_run_id.in_(ids), check_results.c.entity_type == "company",
                                  check_results.c.observed.is_not(None), check_results.c.target.is_not(None),
                                  check_results.c.area != "data_quality")).all()
    severities: dict[str, dict[str, int]] = defaultdict(dict)
    for run_id, severity, number in counted:
        severities[run_id][severity] = number
    kpis: dict[str, dict[str, float]] = defaultdict(dict)
    for run_id, rule_id, observed in figures:
        kpis[run_id][rule_id] = observed
    points = [TrendPoint(by_run[i], severities.get(i, {}), kpis.get(i, {})) for i in ids]
    return sorted(points, key=lambda p: parse_period(p.period).start)


def _earlier(conn: Connection, run: RunFacts) -> dict[str, dict[str, int]]:
    """Findings of earlier periods of this audit: still open, overdue (open past their deadline at
    the audit's clock) and closed, by severity, counted by the database."""
    start = parse_period(run.period).start
    moment = to_db(run.as_of)
    state = sa.case((findings.c.status.not_in(NOT_CLOSED), "closed"), (findings.c.due_at < moment, "overdue"),
                    else_="open")
    query = (sa.select(state.label("state"), findings.c.severity, sa.func.count())
             .select_from(findings.join(audit_runs, audit_runs.c.id == findings.c.audit_run_id))
             .where(findings.c.audit == run.audit, audit_runs.c.period_start < start, COUNTED)
             .group_by(state, findings.c.severity))
    counts: dict[str, dict[str, int]] = {name: dict.fromkeys(SEVERITIES, 0) for name in ("open", "overdue", "closed")}
    for name, severity, number in conn.execute(query):
        counts[name][severity] = number
    return counts

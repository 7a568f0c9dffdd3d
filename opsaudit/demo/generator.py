"""The deterministic demo company: realistic operational data with planted problems.

`build_demo` replaces the contract tables of a database with a company of eight departments
(operations, three customer-service departments, sales, R&D, finance and the general office),
about ninety staff, months of tickets with QA reviews, plans, tasks and analysis reports. The
data is healthy except for the problems it plants, one or more per rule of the audit catalogue,
in the last complete week, month and quarter before as_of; `DemoSummary.planted` lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from opsaudit.demo import planted as plant
from opsaudit.demo.load import Loader
from opsaudit.demo.org import Org, build_org
from opsaudit.demo.planted import PlantedProblem
from opsaudit.demo.reports import build_reports
from opsaudit.demo.tickets import TicketCast, TicketGenerator, hourly_volume
from opsaudit.demo.timeline import Timeline
from opsaudit.demo.work import build_work

DEFAULT_SEED = 20261101
# Below this the planted problems have too few tickets to show (and some reports nothing to state).
MIN_TICKETS = 1_000
TIMEZONE = ZoneInfo("Asia/Shanghai")
# Catalogue order (audit-rules.md section 4), for listing the planted problems.
_RULE_ORDER = (
    "cs.satisfaction_rate", "cs.complaint_satisfaction_rate", "cs.handling_rate", "cs.revisit_rate",
    "cs.first_response_rate", "cs.qa_attitude", "cs.qa_resolution", "cs.qa_compliance", "cs.reopen_rate",
    "exec.on_time_rate", "exec.overdue_task", "exec.outcome_shortfall", "exec.cost_overrun",
    "exec.hours_overrun", "exec.idle_resources", "exec.process_violation",
    "plan.late_submission", "plan.unapproved", "plan.not_decomposed", "plan.target_unreasonable",
    "plan.missing_market_research", "plan.missing_signoff", "plan.adjustment_unapproved", "plan.completion_rate",
    "plan.missing",
    "data.report_late", "data.report_incomplete", "data.report_unreviewed", "data.report_missing",
    "data.metric_mismatch",
    "dq.not_null", "dq.in_set", "dq.range", "dq.unique", "dq.reference", "dq.time_order",
)


@dataclass(frozen=True)
class DemoSummary:
    seed: int
    as_of: datetime
    months: int
    row_counts: dict[str, int]
    planted: tuple[PlantedProblem, ...]


def resolve_as_of(as_of: datetime | None) -> datetime:
    """A naive local datetime: today's midnight in Asia/Shanghai by default."""
    if as_of is None:
        now = datetime.now(TIMEZONE)
        return datetime(now.year, now.month, now.day)
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(TIMEZONE).replace(tzinfo=None)
    return as_of.replace(microsecond=0)


def _cast(rng: np.random.Generator, org: Org) -> TicketCast:
    """Which agents carry the planted customer-service problems (never one who left)."""
    def pick(dept: str, count: int) -> tuple[str, ...]:
        return tuple(sorted(rng.choice(org.stayers(dept), size=count, replace=False).tolist()))

    return TicketCast(low_satisfaction=pick("CS1", 8), slow_response=pick("CS2", 6),
                      poor_attitude=pick("CS3", 1)[0])


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not enabled) as bar:
        yield bar


def build_demo(engine: sa.Engine, *, seed: int = DEFAULT_SEED, as_of: datetime | None = None,
               months: int = 6, tickets_per_month: int = 20_000, total_tickets: int | None = None,
               progress: bool = False) -> DemoSummary:
    """Drop and recreate the contract tables in engine's database and fill them with the demo.

    The data covers the first day of the month `months - 1` months before as_of's month up to
    as_of. Same seed, as_of and sizes give identical rows. total_tickets, when given, replaces
    tickets_per_month so that exactly that many tickets are generated.
    """
    as_of = resolve_as_of(as_of)
    timeline = Timeline.build(as_of, months)
    org_rng, work_rng, ticket_rng, report_rng = (np.random.default_rng(s)
                                                 for s in np.random.SeedSequence(seed).spawn(4))
    org = build_org(org_rng, timeline)
    cast = _cast(org_rng, org)
    work = build_work(work_rng, timeline, org)
    tickets = TicketGenerator(ticket_rng, timeline, org, cast, auditors=org.members("OPS", "auditor"))
    volume = hourly_volume(ticket_rng, timeline, tickets_per_month, total_tickets)
    if volume[2].sum() < MIN_TICKETS:
        raise ValueError(f"the demo needs at least {MIN_TICKETS:,} tickets, not {int(volume[2].sum()):,}")

    with _progress(progress) as bar, engine.begin() as conn:
        loader = Loader(conn, tickets.stats.agents)
        loader.reset()
        step = bar.add_task("tickets", total=int(volume[2].sum()))
        for chunk in tickets.chunks(volume):
            loader.tickets(chunk)
            bar.advance(step, len(chunk))
        stats = tickets.stats
        reviews = [{"review_id": f"QA-{n:06d}", **row} for n, row in enumerate(stats.qa_rows, start=1)]
        reports = build_reports(report_rng, timeline, org, stats, work.tasks)
        tables = {
            "departments": org.department_rows(), "staff": org.staff_rows(), "qa_reviews": reviews,
            "plans": work.plans, "plan_targets": work.plan_targets, "plan_signoffs": work.plan_signoffs,
            "plan_adjustments": work.plan_adjustments, "tasks": work.tasks,
            "analysis_reports": reports.analysis_reports, "reported_metrics": reports.reported_metrics,
        }
        step = bar.add_task("other tables", total=sum(map(len, tables.values())))
        for name, rows in tables.items():
            loader.rows(name, rows)
            bar.advance(step, len(rows))
        step = bar.add_task("keys, indexes, statistics", total=1)
        loader.finish()
        bar.advance(step)

    problems = [*plant.customer_service(timeline, cast, stats),
                *work.planted, *reports.planted, *plant.ticket_defects(timeline, stats)]
    problems.sort(key=lambda p: _RULE_ORDER.index(p.rule_id))  # stable: keeps the order within a rule
    return DemoSummary(seed=seed, as_of=as_of, months=months, row_counts=dict(loader.counts),
                       planted=tuple(problems))

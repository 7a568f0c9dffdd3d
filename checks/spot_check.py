"""Spot checks (不定期抽查, seed 000 §4.1): unannounced audits of a key area, one department and a
random sample of its records over the last 30 days.

- When: a daily tick decides at random whether to audit today, from the operating system's
  secure source, with the chance that gives `checks_per_month` spot checks in an average month;
  no date follows from the schedule.
- What: a seed drives `random.Random`: first the key area, among those with records in the
  window; then the department, among those with records of that area; then the sample, as many
  records as attribute sampling asks for (audit-rules §5, finite population correction), drawn
  from the department's record ids in code-point order. The same seed and the same data give the
  same draw, so anyone can re-perform it from the recorded seed.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from opsaudit.checks.metrics import in_period
from opsaudit.checks.sampling import attribute_sample_size
from opsaudit.checks.scope import Scope
from opsaudit.config.models import Sampling
from opsaudit.errors import SourceError
from opsaudit.i18n.render import Message
from opsaudit.periods import Period, date_range
from opsaudit.source import Source, missing_tables

WINDOW_DAYS = 30
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class Frame:
    """The records of an area a spot check samples: their table, id, the dates that put a record
    in the window (any of them), and what a record is (an entity type of the findings)."""

    table: str
    id_column: str
    dates: tuple[str, ...]
    entity_type: str


FRAMES: dict[str, Frame] = {
    "customer_service": Frame("tickets", "ticket_id", ("opened_at",), "ticket"),
    "execution": Frame("tasks", "task_id", ("due_at", "completed_at"), "task"),
    "planning": Frame("plans", "plan_id", ("due_at", "submitted_at", "approved_at"), "plan"),
    "data_analysis": Frame("analysis_reports", "report_id", ("due_at", "submitted_at"), "report"),
}


@dataclass(frozen=True)
class SpotCheckDraw:
    """What a spot check audits, and the seed that chose it."""

    seed: int
    area: str
    department_id: str
    window: Period
    table: str
    population: int  # the department's records of the area in the window
    sample_ids: tuple[str, ...]

    @property
    def scope(self) -> Scope:
        return Scope(departments=(self.department_id,), sample_table=self.table, sample_ids=self.sample_ids)

    def as_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "area": self.area, "department_id": self.department_id,
                "window": self.window.label, "table": self.table,
                "records": FRAMES[self.area].entity_type, "population": self.population,
                "sample_size": len(self.sample_ids), "sample_ids": list(self.sample_ids)}


def daily_chance(checks_per_month: int) -> float:
    """The chance of a spot check on any one day."""
    return min(1.0, checks_per_month / DAYS_PER_MONTH)


def audits_today(checks_per_month: int, rng: random.Random | None = None) -> bool:
    """Whether today's tick audits: the operating system's secure randomness unless `rng` is given."""
    return (rng or secrets.SystemRandom()).random() < daily_chance(checks_per_month)


def window_before(moment: datetime) -> Period:
    """The 30 whole days before the day of the naive local `moment`."""
    last = moment.date() - timedelta(days=1)
    return date_range(last - timedelta(days=WINDOW_DAYS - 1), last)


def _in_window(source: Source, frame: Frame, window: Period) -> sa.ColumnElement[bool]:
    table = source.table(frame.table)
    return sa.or_(*(in_period(table.c[column], window) for column in frame.dates))


def records_per_department(source: Source, frame: Frame, window: Period) -> dict[str, int]:
    """department_id -> its records of the frame in the window."""
    table = source.table(frame.table)
    query = (sa.select(table.c.department_id, sa.func.count()).where(_in_window(source, frame, window),
                                                                     table.c.department_id.is_not(None))
             .group_by(table.c.department_id))
    with source.engine.connect() as conn:
        return {str(department): int(count) for department, count in conn.execute(query)}


def record_ids(source: Source, frame: Frame, window: Period, department: str) -> list[str]:
    """The department's record ids of the frame in the window, in code-point order."""
    table = source.table(frame.table)
    query = sa.select(table.c[frame.id_column]).where(_in_window(source, frame, window),
                                                      table.c.department_id == department)
    with source.engine.connect() as conn:
        return sorted(str(value) for value in conn.execute(query).scalars())


def draw(source: Source, areas: Sequence[str], window: Period, seed: int, sampling: Sampling) -> SpotCheckDraw:
    """The key area, department and sample of records that `seed` picks from the data in `window`."""
    if not 0 <= seed < 2**63:
        raise ValueError("seed must be in 0 .. 2**63 - 1 (the store keeps it as BIGINT)")
    rng = random.Random(seed)
    present = set(areas) - _areas_missing(source, areas)
    departments = {area: records_per_department(source, FRAMES[area], window) for area in sorted(present)}
    candidates = [area for area in sorted(present) if departments[area]]
    if not candidates:
        raise SourceError(Message.of("error.spot_check.no_records", areas=sorted(areas), window=window.label))
    area = rng.choice(candidates)
    department = rng.choice(sorted(departments[area]))
    frame = FRAMES[area]
    ids = record_ids(source, frame, window, department)
    size = attribute_sample_size(sampling.confidence, sampling.tolerable_rate, sampling.expected_rate, len(ids))
    sample = tuple(sorted(rng.sample(ids, size)))
    return SpotCheckDraw(seed, area, department, window, frame.table, len(ids), sample)


def _areas_missing(source: Source, areas: Iterable[str]) -> set[str]:
    """The areas whose frame table the source does not have."""
    absent = missing_tables(source, tuple(FRAMES[area].table for area in areas))
    return {area for area in areas if FRAMES[area].table in absent}

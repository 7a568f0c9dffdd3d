"""Attribute sampling for the weekly customer-service quality review (audit-rules section 5).

The population of a week is the tickets handled in it: resolved in the week, or closed in it
when they have no resolved_at. Timestamps, not the current status, decide membership, so every
handled ticket belongs to exactly one week (a ticket opened on Sunday and resolved on Monday is
not lost at the week boundary) and a later re-performance finds the same population.

Per department the size comes from the AICPA attribute-sampling table (binomial) with the
finite population correction. The size is spread over agent x channel strata in proportion to
their tickets, after every active agent has received `min_per_agent`; the tickets of a stratum
are drawn from its ticket ids in code-point order with `random.Random(seed)`, so the same seed
and the same data give the same sample.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, FromClause

from opsaudit.config.models import Sampling
from opsaudit.errors import SourceError
from opsaudit.i18n.render import Message
from opsaudit.periods import Period
from opsaudit.source import Source
from opsaudit.store.schema import samples

POPULATION_RULE = "tickets resolved in the period, or closed in it when they have no resolved_at"

# Beyond this the expected rate is too close to the tolerable rate for a sample to be useful
# (the AICPA table prints "*" long before); it also bounds the exact arithmetic below.
MAX_SAMPLE_SIZE = 10_000

# Bound parameters per IN list, well below SQLite's and PostgreSQL's limits.
_CHUNK = 500


# --- sample size -----------------------------------------------------------------------------

def attribute_sample_size(confidence: float, tolerable: float, expected: float,
                          population: int | None = None) -> int:
    """The AICPA attribute sample size, with the finite population correction when `population` is given.

    The smallest n such that, allowing k = ceil(n * expected) deviations, the one-sided binomial
    upper limit of the deviation rate at `confidence` is at most `tolerable` (95%, 5%: 59, 93 and
    181 for expected 0%, 1% and 2%). Then n' = ceil(n / (1 + n / N)), which never exceeds N.
    """
    conf, tol, exp = _exact(confidence), _exact(tolerable), _exact(expected)
    if not (0 < conf < 1 and 0 < tol < 1 and 0 <= exp < tol):
        raise ValueError("need 0 < confidence < 1, 0 < tolerable < 1 and 0 <= expected < tolerable")
    if population is not None and population < 0:
        raise ValueError("population must not be negative")
    n = _large_population_size(1 - conf, tol, exp)
    if population is None:
        return n
    return -(-n * population // (n + population))  # ceil(n*N / (N+n)) in integers; 0 for N = 0


def _exact(value: float) -> Fraction:
    # Through the shortest decimal repr, so 0.07 is 7/100: ceil(100 * 0.07) must be 7, not 8.
    return Fraction(repr(float(value)))


def _large_population_size(risk: Fraction, tol: Fraction, exp: Fraction) -> int:
    """The table's fixed point: raise k to ceil(n_k * expected) until n_k allows it.

    n_k grows with k and ceil(n * expected) grows with n, so the first n_k that allows its own
    expected deviations is also the smallest n of the definition.
    """
    k, n = 0, 1
    while True:
        n = _smallest_n(k, tol, risk, start=n)
        needed = math.ceil(n * exp)
        if needed <= k:
            return n
        k = needed


def _smallest_n(k: int, tol: Fraction, risk: Fraction, start: int) -> int:
    """The smallest n >= start with P(X <= k | n, tol) <= risk: k deviations in n prove rate <= tol."""
    lo = max(start, k + 1)
    hi = lo
    while not _at_most_risk(k, hi, tol, risk):
        if hi >= MAX_SAMPLE_SIZE:
            raise ValueError(f"the sample would exceed {MAX_SAMPLE_SIZE} tickets: the expected rate is "
                             "too close to the tolerable rate")
        lo, hi = hi + 1, min(hi * 2, MAX_SAMPLE_SIZE)
    while lo < hi:
        mid = (lo + hi) // 2
        if _at_most_risk(k, mid, tol, risk):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _at_most_risk(k: int, n: int, tol: Fraction, risk: Fraction) -> bool:
    """Whether the binomial CDF P(X <= k | n, tol) is at most `risk`, in exact integers."""
    a, b = tol.numerator, tol.denominator
    c = b - a
    # sum_i C(n,i) a^i c^(n-i) = c^(n-k) * sum_i C(n,i) a^i c^(k-i): one big power, small terms.
    inner, comb = 0, 1
    for i in range(k + 1):
        inner += comb * a**i * c ** (k - i)
        comb = comb * (n - i) // (i + 1)
    return inner * c ** (n - k) * risk.denominator <= risk.numerator * b**n


# --- plan ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stratum:
    """The tickets of one department, agent (None: no agent) and channel in the population."""

    department_id: str
    agent_id: str | None
    channel: str
    population: int
    active_agent: bool  # the agent is active staff, so owed min_per_agent

    @property
    def key(self) -> tuple[str, bool, str, str]:
        """The documented order of strata: department, the no-agent stratum first, agent, channel."""
        return (self.department_id, self.agent_id is not None, self.agent_id or "", self.channel)


@dataclass(frozen=True)
class Allocation:
    stratum: Stratum
    size: int


@dataclass(frozen=True)
class DepartmentSample:
    department_id: str
    population: int
    planned_size: int  # the attribute sample size with the finite population correction
    size: int  # planned_size, raised when the agents' minimums need more


@dataclass(frozen=True)
class SamplePlan:
    departments: tuple[DepartmentSample, ...]
    allocations: tuple[Allocation, ...]


def plan_sample(strata: Iterable[Stratum], sampling: Sampling) -> SamplePlan:
    """Each department's size and its allocation over agent x channel strata (sums to the size)."""
    departments: list[DepartmentSample] = []
    allocations: list[Allocation] = []
    ordered = sorted(strata, key=lambda s: s.key)
    for department_id, group in groupby(ordered, key=lambda s: s.department_id):
        members = list(group)
        population = sum(s.population for s in members)
        planned = attribute_sample_size(sampling.confidence, sampling.tolerable_rate,
                                        sampling.expected_rate, population)
        sizes = _allocate(members, planned, sampling.min_per_agent)
        departments.append(DepartmentSample(department_id, population, planned, sum(sizes)))
        allocations.extend(Allocation(s, size) for s, size in zip(members, sizes, strict=True))
    return SamplePlan(tuple(departments), tuple(allocations))


def _allocate(strata: Sequence[Stratum], planned: int, min_per_agent: int) -> list[int]:
    """Largest-remainder allocation of the size, after the agents' minimums.

    One ticket at a time goes to the stratum furthest below its proportional share
    size * N_s / N (ties: the first stratum in order), never beyond its tickets. Without
    minimums this is the largest-remainder (Hamilton) method.
    """
    total = sum(s.population for s in strata)
    owed = {
        agent: min(min_per_agent, sum(strata[i].population for i in indexes))
        for agent, indexes in _agent_strata(strata).items()
    }
    size = max(planned, sum(owed.values()))
    sizes = [0] * len(strata)

    def give_one(candidates: Sequence[int]) -> None:
        open_ = [i for i in candidates if sizes[i] < strata[i].population]
        best = max(open_, key=lambda i: (size * strata[i].population - sizes[i] * total, -i))
        sizes[best] += 1

    for agent, indexes in _agent_strata(strata).items():
        for _ in range(owed[agent]):
            give_one(indexes)
    everyone = range(len(strata))
    while sum(sizes) < size:
        give_one(everyone)
    return sizes


def _agent_strata(strata: Sequence[Stratum]) -> dict[str, list[int]]:
    """The indexes of each active agent's strata."""
    found: dict[str, list[int]] = {}
    for index, stratum in enumerate(strata):
        if stratum.active_agent and stratum.agent_id is not None:
            found.setdefault(stratum.agent_id, []).append(index)
    return found


# --- draw ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SampleRow:
    department_id: str
    agent_id: str | None
    channel: str
    ticket_id: str
    draw_order: int  # 1.. over the whole draw, in drawing order


@dataclass(frozen=True)
class SampleDraw:
    """A drawn sample with everything needed to re-perform it."""

    seed: int
    sampling: Sampling
    large_population_size: int  # the table's size before the finite population correction
    departments: tuple[DepartmentSample, ...]
    allocations: tuple[Allocation, ...]
    rows: tuple[SampleRow, ...]

    def parameters(self) -> dict[str, Any]:
        """JSON for the audit run's parameters and the review sheet."""
        return {
            "seed": self.seed,
            "confidence": self.sampling.confidence,
            "tolerable_rate": self.sampling.tolerable_rate,
            "expected_rate": self.sampling.expected_rate,
            "min_per_agent": self.sampling.min_per_agent,
            "population_rule": POPULATION_RULE,
            "large_population_size": self.large_population_size,
            "departments": [
                {"department_id": d.department_id, "population": d.population,
                 "planned_size": d.planned_size, "size": d.size}
                for d in self.departments
            ],
        }


def new_seed() -> int:
    """A fresh seed that fits the store's BIGINT columns."""
    return secrets.randbits(63)


def draw_sample(source: Source, period: Period, sampling: Sampling, seed: int) -> SampleDraw:
    """Plan the sample from counts in SQL, then draw it from the ticket ids of the strata needed."""
    if not 0 <= seed < 2**63:
        raise ValueError("seed must be in 0 .. 2**63 - 1 (the store keeps it as BIGINT)")
    tickets = source.table("tickets")
    rng = random.Random(seed)
    rows: list[SampleRow] = []
    with source.engine.connect() as conn:
        plan = plan_sample(count_strata(conn, source, period), sampling)
        for department_id, group in groupby(plan.allocations, key=lambda a: a.stratum.department_id):
            needed = [a for a in group if a.size > 0]
            ids = _stratum_ids(conn, tickets, period, department_id, [a.stratum for a in needed])
            for allocation in needed:
                stratum = allocation.stratum
                pool = ids.get((stratum.agent_id, stratum.channel), [])
                if len(pool) != stratum.population:
                    raise SourceError(Message.of("error.sample.changed", table="tickets", period=period.label))
                for ticket_id in _pick(rng, pool, allocation.size):
                    rows.append(SampleRow(department_id, stratum.agent_id, stratum.channel, ticket_id,
                                          len(rows) + 1))
    large = attribute_sample_size(sampling.confidence, sampling.tolerable_rate, sampling.expected_rate)
    return SampleDraw(seed, sampling, large, plan.departments, plan.allocations, tuple(rows))


def _pick(rng: random.Random, ids: Sequence[str], count: int) -> Iterator[str]:
    """`count` ids by a partial Fisher-Yates shuffle of the sorted ids.

    Only rng.random() is used: Python guarantees its sequence for a seed across versions, while
    random.sample() and randrange() may change.
    """
    pool = sorted(ids)
    for i in range(count):
        j = i + int(rng.random() * (len(pool) - i))
        pool[i], pool[j] = pool[j], pool[i]
        yield pool[i]


def _in_population(tickets: FromClause, period: Period) -> ColumnElement[bool]:
    handled = sa.func.coalesce(tickets.c.resolved_at, tickets.c.closed_at)
    return sa.and_(handled >= period.start, handled < period.end)


def _department(tickets: FromClause) -> ColumnElement[str]:
    # department_id and channel are NOT NULL in the contract; a null (reported by dq.not_null)
    # becomes '' so that it cannot break the ordering of strata.
    return sa.func.coalesce(tickets.c.department_id, "")


def _channel(tickets: FromClause) -> ColumnElement[str]:
    return sa.func.coalesce(tickets.c.channel, "")


def count_strata(conn: Connection, source: Source, period: Period) -> list[Stratum]:
    """The population of `period` counted per department, agent and channel, in SQL."""
    tickets, staff = source.table("tickets"), source.table("staff")
    department, channel = _department(tickets), _channel(tickets)
    counted = conn.execute(
        sa.select(department, tickets.c.agent_id, channel, sa.func.count())
        .where(_in_population(tickets, period))
        .group_by(department, tickets.c.agent_id, channel)
    ).all()
    agents = sorted({row[1] for row in counted if row[1] is not None})
    active: set[str] = set()
    for chunk in _chunks(agents):
        active.update(conn.execute(
            sa.select(staff.c.staff_id).where(staff.c.staff_id.in_(chunk), staff.c.active == sa.true())
        ).scalars())
    return [Stratum(d, agent, ch, int(count), agent in active) for d, agent, ch, count in counted]


def _stratum_ids(conn: Connection, tickets: FromClause, period: Period, department_id: str,
                 strata: Sequence[Stratum]) -> dict[tuple[str | None, str], list[str]]:
    """The ticket ids of the given strata of one department; ids only."""
    channel = _channel(tickets)
    pairs = [(s.agent_id, s.channel) for s in strata if s.agent_id is not None]
    unassigned = [s.channel for s in strata if s.agent_id is None]
    which = []
    if pairs:
        which.append(sa.tuple_(tickets.c.agent_id, channel).in_(pairs))
    if unassigned:
        which.append(sa.and_(tickets.c.agent_id.is_(None), channel.in_(unassigned)))
    if not which:
        return {}
    found: dict[tuple[str | None, str], list[str]] = {}
    for agent, ch, ticket_id in conn.execute(
        sa.select(tickets.c.agent_id, channel, tickets.c.ticket_id)
        .where(_in_population(tickets, period), _department(tickets) == department_id, sa.or_(*which))
    ):
        found.setdefault((agent, ch), []).append(ticket_id)
    return found


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


# --- for the review sheet and the store ------------------------------------------------------

@dataclass(frozen=True)
class TicketInfo:
    kind: str
    opened_at: datetime


def ticket_details(source: Source, ticket_ids: Sequence[str]) -> dict[str, TicketInfo]:
    """Kind and opening time of the sampled tickets, for the review sheet."""
    tickets = source.table("tickets")
    found: dict[str, TicketInfo] = {}
    with source.engine.connect() as conn:
        for chunk in _chunks(sorted(set(ticket_ids))):
            for ticket_id, kind, opened_at in conn.execute(
                sa.select(tickets.c.ticket_id, tickets.c.kind, tickets.c.opened_at)
                .where(tickets.c.ticket_id.in_(chunk))
            ):
                found[ticket_id] = TicketInfo(kind, opened_at)
    return found


def record_sample(store_conn: Connection, audit_run_id: str, period_label: str, draw: SampleDraw) -> None:
    """Store the draw in oa_samples, replacing what an earlier attempt of the same run stored.

    Runs in the caller's transaction when one is open, else in its own.
    """
    if store_conn.in_transaction():
        _replace_sample(store_conn, audit_run_id, period_label, draw)
    else:
        with store_conn.begin():
            _replace_sample(store_conn, audit_run_id, period_label, draw)


def _replace_sample(conn: Connection, audit_run_id: str, period_label: str, draw: SampleDraw) -> None:
    conn.execute(sa.delete(samples).where(samples.c.audit_run_id == audit_run_id))
    if draw.rows:
        conn.execute(sa.insert(samples), [
            {"audit_run_id": audit_run_id, "period": period_label, "department_id": row.department_id,
             "agent_id": row.agent_id, "channel": row.channel, "ticket_id": row.ticket_id,
             "draw_order": row.draw_order, "seed": draw.seed}
            for row in draw.rows
        ])

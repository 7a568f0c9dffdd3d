"""Tickets and their QA reviews, drawn a week at a time with numpy so memory stays flat.

Times are int64 seconds since 1970 (naive local time) while drawing and datetime64[s] (NaT for
null) in the chunks handed to the loader. While drawing, the generator also counts what the
reports state and what the planted customer-service problems look like to an audit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from opsaudit.demo.org import CS_DEPARTMENTS, Org
from opsaudit.demo.timeline import Timeline
from opsaudit.periods import Period

HOUR = 3600
DAY = 86400
# Index 6, "fax", is not in the contract's set: it is used only for the planted in_set defect,
# and like any unknown channel it gets the SLA of "other".
CHANNELS: tuple[str, ...] = ("phone", "chat", "email", "web", "onsite", "other", "fax")
FAX = 6
SLA_SECONDS = np.array([HOUR, HOUR, DAY, DAY, HOUR, DAY, DAY], dtype=np.int64)
KINDS: tuple[str, ...] = ("consultation", "complaint", "application")
COMPLAINT = 1
STATUSES: tuple[str, ...] = ("open", "in_progress", "resolved", "closed")


def _cumulative(shares: tuple[float, ...]) -> np.ndarray:
    cum = np.cumsum(np.asarray(shares, dtype=float) / sum(shares))
    cum[-1] = 1.0  # so a draw below 1 never falls past the last bucket
    return cum


_DEPARTMENT_CUM = _cumulative((0.42, 0.36, 0.22))
# Channel mix per CS department, in CHANNELS order (without fax): hotline, online, field service.
_CHANNEL_CUM = np.array([_cumulative(mix) for mix in ((0.62, 0.18, 0.06, 0.06, 0.02, 0.06),
                                                      (0.05, 0.38, 0.30, 0.24, 0.00, 0.03),
                                                      (0.35, 0.04, 0.10, 0.08, 0.40, 0.03))])
_KIND_CUM = _cumulative((0.62, 0.12, 0.26))
_RATED = np.array([0.65, 0.70, 0.45, 0.50, 0.60, 0.40, 0.40])
# A first response inside the SLA takes a Beta(a, b) share of it: phone is near-instant, mail slower.
_FR_BETA_A = np.array([1.0, 1.2, 1.3, 1.3, 1.5, 1.5, 1.5])
_FR_BETA_B = np.array([14.0, 9.0, 5.0, 5.0, 8.0, 4.0, 4.0])
_RESOLVE_MEDIAN = np.array([0.4, 14.0, 6.0]) * HOUR
_DOW = np.array([1.15, 1.05, 1.0, 1.0, 0.95, 0.65, 0.55])
_HOUR_PROFILE = np.array([0.15, 0.10, 0.08, 0.07, 0.08, 0.15, 0.35, 0.70, 1.20, 1.60, 1.70, 1.60,
                          1.20, 1.40, 1.60, 1.55, 1.40, 1.20, 1.00, 0.95, 0.90, 0.75, 0.50, 0.30])

# Healthy service levels, and the planted departures from them inside the problem window.
FR_MISS, FR_MISS_SLOW = 0.012, 0.18
SATISFIED, SATISFIED_COMPLAINT = 0.97, 0.99
SATISFIED_LOW_AGENT, SATISFIED_COMPLAINT_CS3 = 0.50, 0.86
STUCK_CS3, NO_REVISIT_CS1 = 0.025, 0.04
# Tickets reopened after resolution: complaints more often; CS2's fixes do not hold in the window.
REOPEN, REOPEN_COMPLAINT, REOPEN_CS2 = 0.015, 0.06, 0.15
QA_PER_DEPARTMENT_WEEK = 24
NONCOMPLIANT, NONCOMPLIANT_CS2 = 0.007, 0.15


def _seconds(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds())


@dataclass(frozen=True)
class TicketCast:
    """The agents who carry planted problems."""

    low_satisfaction: tuple[str, ...]  # CS1: satisfaction collapses in the problem window
    slow_response: tuple[str, ...]  # CS2: first responses miss the SLA
    poor_attitude: str  # CS3: QA attitude scores around 68, resolution scores around 70


@dataclass
class TicketChunk:
    """One week of tickets as columns; ticket numbers run from `first_number`."""

    first_number: int
    kind: np.ndarray
    channel: np.ndarray
    department: np.ndarray
    agent: np.ndarray  # index into TicketStats.agents, -1 for none
    opened_at: np.ndarray
    first_response_at: np.ndarray
    resolved_at: np.ndarray
    closed_at: np.ndarray
    status: np.ndarray
    satisfaction: np.ndarray  # 0 for none
    revisited_at: np.ndarray
    reopened_count: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)


def ticket_id(number: int) -> str:
    return f"T{number:08d}"


# Counters per department for one audit period.
WINDOW_FIELDS = ("opened", "frr_ok", "rated", "satisfied", "complaint_rated", "complaint_satisfied",
                 "handling_due", "handled", "revisit_due", "revisited", "done", "reopened")
MONTH_FIELDS = ("opened", "complaints", "rated", "satisfied", "frr_ok")
AGENT_FIELDS = ("opened", "frr_ok", "rated", "satisfied")


@dataclass
class TicketStats:
    """What the generated tickets add up to: per department and month (for the reports), per
    department in the last complete week and month, and per agent in the month."""

    agents: list[str]
    months: list[Period]
    by_month: np.ndarray = field(init=False)
    week: np.ndarray = field(init=False)
    month: np.ndarray = field(init=False)
    agent_month: np.ndarray = field(init=False)
    qa_rows: list[dict] = field(default_factory=list)
    # Per QA row: the reviewed ticket's agent, department and opening time.
    qa_tickets: list[tuple[str, str, datetime]] = field(default_factory=list)
    # Planted defects by "table.column": the ticket ids; and the ticket with the QA score of 48.
    defects: dict[str, list[str]] = field(default_factory=dict)
    low_review_ticket: str | None = None

    def __post_init__(self) -> None:
        n_dept = len(CS_DEPARTMENTS)
        self.by_month = np.zeros((len(self.months), n_dept, len(MONTH_FIELDS)), dtype=np.int64)
        self.week = np.zeros((n_dept, len(WINDOW_FIELDS)), dtype=np.int64)
        self.month = np.zeros((n_dept, len(WINDOW_FIELDS)), dtype=np.int64)
        self.agent_month = np.zeros((len(self.agents), len(AGENT_FIELDS)), dtype=np.int64)

    def window(self, which: str, department_id: str) -> dict[str, int]:
        table = self.week if which == "week" else self.month
        row = table[CS_DEPARTMENTS.index(department_id)]
        return dict(zip(WINDOW_FIELDS, row.tolist(), strict=True))

    def company_window(self, which: str) -> dict[str, int]:
        """The window's counts over every department: the company result of a department rule."""
        table = self.week if which == "week" else self.month
        return dict(zip(WINDOW_FIELDS, table.sum(axis=0).tolist(), strict=True))

    def agent(self, staff_id: str) -> dict[str, int]:
        return dict(zip(AGENT_FIELDS, self.agent_month[self.agents.index(staff_id)].tolist(), strict=True))

    def period_counts(self, period: Period, department_id: str | None) -> dict[str, int]:
        """Ticket counts over the covered months inside `period`, for one department or all."""
        picked = [i for i, m in enumerate(self.months) if period.start <= m.start and m.end <= period.end]
        block = self.by_month[picked]
        block = block.sum(axis=1) if department_id is None else block[:, CS_DEPARTMENTS.index(department_id)]
        return dict(zip(MONTH_FIELDS, block.sum(axis=0).tolist(), strict=True))


def hourly_volume(rng: np.random.Generator, timeline: Timeline, tickets_per_month: int,
                  total: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start (seconds), length (seconds) and ticket count of every covered hour.

    Volume follows the weekday and hour of day with some day-to-day noise; counts are rounded by
    largest remainder so they add up exactly to the total.
    """
    t0, t1 = _seconds(timeline.start), _seconds(timeline.as_of)
    starts = np.arange(t0, t1, HOUR, dtype=np.int64)
    lengths = np.minimum(HOUR, t1 - starts)
    days = starts // DAY
    day_noise = rng.lognormal(0.0, 0.08, size=int(days[-1] - days[0]) + 1)
    weights = (_DOW[(days + 3) % 7] * _HOUR_PROFILE[(starts % DAY) // HOUR]
               * day_noise[days - days[0]] * lengths / HOUR)
    if total is None:
        covered = sum((min(m.end, timeline.as_of) - m.start) / (m.end - m.start) for m in timeline.months())
        total = round(tickets_per_month * covered)
    expected = weights / weights.sum() * total
    counts = np.floor(expected).astype(np.int64)
    remainder = int(total - counts.sum())
    counts[np.argsort(-(expected - counts), kind="stable")[:remainder]] += 1
    return starts, lengths, counts


class TicketGenerator:
    """Draws the tickets week by week, recording QA reviews, defects and counts in `stats`."""

    def __init__(self, rng: np.random.Generator, timeline: Timeline, org: Org, cast: TicketCast,
                 auditors: list[str]) -> None:
        self.rng, self.timeline, self.cast, self.auditors = rng, timeline, cast, auditors
        agents = [a for d in CS_DEPARTMENTS for a in org.agents(d)]
        self.stats = TicketStats(agents=agents, months=timeline.months())
        self.agent_dept = np.array([d for d, dept in enumerate(CS_DEPARTMENTS) for _ in org.agents(dept)])
        never = _seconds(datetime(9999, 1, 1))
        self.left_at = np.array([_seconds(org.left_at[a]) if a in org.left_at else never for a in agents])
        self.low = np.isin(agents, cast.low_satisfaction)
        self.slow = np.isin(agents, cast.slow_response)
        self.poor = agents.index(cast.poor_attitude)
        weight = np.array([org.agent_weight[a] for a in agents])
        # Per department: its agents and their cumulative workload shares, then the same for
        # the agents who never left.
        self.pools: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for d in range(len(CS_DEPARTMENTS)):
            members = np.flatnonzero(self.agent_dept == d)
            stay = members[self.left_at[members] == never]
            self.pools.append((members, _cumulative(tuple(weight[members])),
                               stay, _cumulative(tuple(weight[stay]))))
        self.as_of = _seconds(timeline.as_of)
        self.window = tuple(_seconds(t) for t in timeline.problem_window)
        self.week = (_seconds(timeline.week.start), _seconds(timeline.week.end))
        self.month = (_seconds(timeline.month.start), _seconds(timeline.month.end))
        self.dq = tuple(_seconds(t) for t in timeline.dq_window)
        self.month_starts = np.array([_seconds(m.start) for m in self.stats.months])

    def chunks(self, volume: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Iterator[TicketChunk]:
        """Every ticket of the hourly volume, one ISO week per chunk, in opening order."""
        starts, lengths, counts = volume
        week_of = (starts // DAY + 3) // 7  # weeks since the Monday before 1970-01-01
        number = 1
        for week in np.unique(week_of):
            hours = week_of == week
            n = int(counts[hours].sum())
            if n == 0:
                continue
            opened = np.repeat(starts[hours], counts[hours]) + (
                self.rng.random(n) * np.repeat(lengths[hours], counts[hours])).astype(np.int64)
            opened.sort()
            week_end = int((week + 1) * 7 - 3) * DAY
            yield self._chunk(number, opened, week_end)
            number += n

    def _chunk(self, number: int, opened: np.ndarray, week_end: int) -> TicketChunk:
        rng, n = self.rng, len(opened)
        dept = np.searchsorted(_DEPARTMENT_CUM, rng.random(n), side="right")
        channel = (rng.random(n)[:, None] >= _CHANNEL_CUM[dept]).sum(axis=1)
        kind = np.searchsorted(_KIND_CUM, rng.random(n), side="right")
        complaint = kind == COMPLAINT
        agent = self._agents(dept, opened)
        in_window = (opened >= self.window[0]) & (opened < self.window[1])
        in_week = (opened >= self.week[0]) & (opened < self.week[1])
        in_month = (opened >= self.month[0]) & (opened < self.month[1])

        # First response: inside the SLA, or missed by 1 minute to 80% of it.
        sla = SLA_SECONDS[channel]
        miss = rng.random(n) < np.where(self.slow[agent] & in_window, FR_MISS_SLOW, FR_MISS)
        within = 60 + (sla - 120) * rng.beta(_FR_BETA_A[channel], _FR_BETA_B[channel])
        late = sla + 60 + sla * rng.uniform(0.0, 0.8, n)
        first = opened + np.where(miss, late, within).astype(np.int64)
        # A response that would come after as_of but in time is brought forward rather than left
        # missing: at as_of it is not late yet, and a null would count as a miss.
        pending = (first > self.as_of) & ~miss
        first = np.where(pending, opened + ((self.as_of - opened) * rng.uniform(0.05, 0.95, n)).astype(np.int64),
                         first)
        has_first = first <= self.as_of

        # Resolution within 70 h of opening, so every healthy ticket old enough for the handling
        # rule (72 h) is resolved; reopened tickets take longer.
        work = np.clip(rng.lognormal(np.log(_RESOLVE_MEDIAN[kind]), 0.9), 120, 60 * HOUR)
        reopen_draw = rng.random(n)
        p_reopen = np.where(complaint, REOPEN_COMPLAINT, REOPEN)
        p_reopen = np.where((dept == 1) & in_window, REOPEN_CS2, p_reopen)
        reopened = np.where(reopen_draw < p_reopen * 0.1, 2, np.where(reopen_draw < p_reopen, 1, 0))
        work = work + (reopened > 0) * rng.uniform(2 * HOUR, 20 * HOUR, n)
        resolved = opened + np.maximum(np.minimum(first - opened + work, 70 * HOUR), first - opened + 60).astype(
            np.int64)
        handling_due = (in_week & (opened <= self.week[1] - 72 * HOUR)) | (
            in_month & (opened <= self.month[1] - 72 * HOUR))
        stuck = (dept == 2) & handling_due & (rng.random(n) < STUCK_CS3)
        has_resolved = has_first & ~stuck & (resolved <= self.as_of)

        # Follow-up visit within 6.5 days; one brought forward to before as_of if it would be later.
        revisit = resolved + np.clip(rng.lognormal(np.log(20 * HOUR), 0.7, n), 600, 6.5 * DAY).astype(np.int64)
        squeeze = rng.uniform(0.05, 0.95, n)
        revisit = np.where(revisit > self.as_of, resolved + ((self.as_of - resolved) * squeeze).astype(np.int64),
                           revisit)
        # Not in the day whose revisit window closes at as_of: audited any time that day, the
        # planted problem reads the same (a ticket there is judged or not by the hour of the audit).
        deciding_day = (resolved >= self.as_of - 7 * DAY) & (resolved < self.as_of - 6 * DAY)
        no_revisit = (dept == 0) & in_window & (rng.random(n) < NO_REVISIT_CS1) & ~deciding_day
        has_revisit = has_resolved & ~no_revisit
        closed = np.where(has_revisit, revisit + rng.uniform(600, DAY, n).astype(np.int64),
                          resolved + rng.uniform(DAY, 2 * DAY, n).astype(np.int64))
        has_closed = has_resolved & (closed <= self.as_of)

        # Ratings: most customers satisfied; the planted agents and CS3's complaints less so.
        rated = has_resolved & (rng.random(n) < _RATED[channel])
        p_satisfied = np.where(complaint, SATISFIED_COMPLAINT, SATISFIED)
        p_satisfied = np.where(self.low[agent] & in_window & ~complaint, SATISFIED_LOW_AGENT, p_satisfied)
        p_satisfied = np.where((dept == 2) & complaint & in_window, SATISFIED_COMPLAINT_CS3, p_satisfied)
        satisfied = rng.random(n) < p_satisfied
        grade = rng.random(n)
        score = np.where(satisfied, np.where(grade < 0.74, 5, 4),
                         np.where(grade < 0.55, 3, np.where(grade < 0.85, 2, 1)))
        satisfaction = np.where(rated, score, 0)

        status = np.where(~has_first, 0, np.where(~has_resolved, 1, np.where(has_closed, 3, 2)))
        self._plant_defects(number, opened, dept, channel, satisfaction, closed, has_closed, has_resolved)

        def stamp(values: np.ndarray, present: np.ndarray) -> np.ndarray:
            out = values.astype("datetime64[s]")
            out[~present] = np.datetime64("NaT")
            return out

        chunk = TicketChunk(
            first_number=number, kind=kind, channel=channel, department=dept,
            agent=np.where(has_first, agent, -1), opened_at=opened.astype("datetime64[s]"),
            first_response_at=stamp(first, has_first), resolved_at=stamp(resolved, has_resolved),
            closed_at=stamp(closed, has_closed), status=status, satisfaction=satisfaction,
            revisited_at=stamp(revisit, has_revisit), reopened_count=np.where(has_resolved, reopened, 0))
        self._count(chunk, opened, first, resolved, revisit)
        self._sample_for_qa(chunk, week_end)
        return chunk

    def _agents(self, dept: np.ndarray, opened: np.ndarray) -> np.ndarray:
        """An agent of the ticket's department by workload, never one who had left by then."""
        agent = np.empty(len(dept), dtype=np.int64)
        for d, (members, cum, stay, stay_cum) in enumerate(self.pools):
            rows = np.flatnonzero(dept == d)
            pick = members[np.minimum(np.searchsorted(cum, self.rng.random(len(rows)), side="right"),
                                      len(members) - 1)]
            again = np.minimum(np.searchsorted(stay_cum, self.rng.random(len(rows)), side="right"), len(stay) - 1)
            gone = opened[rows] >= self.left_at[pick]
            pick[gone] = stay[again[gone]]
            agent[rows] = pick
        return agent

    def _plant_defects(self, number: int, opened: np.ndarray, dept: np.ndarray, channel: np.ndarray,
                       satisfaction: np.ndarray, closed: np.ndarray, has_closed: np.ndarray,
                       has_resolved: np.ndarray) -> None:
        """The planted data-quality defects: three ratings of 7 (CS2), a 'fax' channel (CS1) and a
        closing before the opening (CS3), on the first fitting tickets of the defect window."""
        in_dq = (opened >= self.dq[0]) & (opened < self.dq[1])
        if not in_dq.any():
            return
        picks = (("tickets.satisfaction", 3, in_dq & (dept == 1) & (satisfaction > 0)),
                 ("tickets.channel", 1, in_dq & (dept == 0) & has_resolved),
                 ("tickets.closed_at", 1, in_dq & (dept == 2) & has_closed))
        for column, wanted, fits in picks:
            done = self.stats.defects.setdefault(column, [])
            rows = np.flatnonzero(fits)[: wanted - len(done)]
            if column == "tickets.satisfaction":
                satisfaction[rows] = 7
            elif column == "tickets.channel":
                channel[rows] = FAX
            else:
                closed[rows] = opened[rows] - 2 * HOUR
            done.extend(ticket_id(number + int(r)) for r in rows)

    def _count(self, chunk: TicketChunk, opened: np.ndarray, first: np.ndarray, resolved: np.ndarray,
               revisit: np.ndarray) -> None:
        """Add the chunk to the counters, from the columns as they will be stored and by the
        rules' formulas (a rating outside 1..5 is no rating)."""
        dept, stats = chunk.department, self.stats
        rated = (chunk.satisfaction >= 1) & (chunk.satisfaction <= 5)
        satisfied = rated & (chunk.satisfaction >= 4)
        complaint = chunk.kind == COMPLAINT
        has_first = ~np.isnat(chunk.first_response_at)
        frr_ok = has_first & (first - opened <= SLA_SECONDS[chunk.channel])
        has_resolved = ~np.isnat(chunk.resolved_at)
        revisited = has_resolved & ~np.isnat(chunk.revisited_at) & (revisit - resolved <= 7 * DAY)
        # As cs.revisit_rate judges it: a ticket resolved less than 7 days before the audit may
        # still be followed up in time, so it counts only once it was.
        revisit_due = has_resolved & (revisited | (self.as_of - resolved >= 7 * DAY))

        month = np.searchsorted(self.month_starts, opened, side="right") - 1
        flat = month * len(CS_DEPARTMENTS) + dept
        size = stats.by_month.shape[0] * stats.by_month.shape[1]
        for f, values in enumerate((np.ones_like(rated), complaint, rated, satisfied, frr_ok)):
            stats.by_month[..., f] += np.bincount(flat, weights=values, minlength=size).astype(np.int64).reshape(
                stats.by_month.shape[:2])

        for table, (start, end) in ((stats.week, self.week), (stats.month, self.month)):
            inside = (opened >= start) & (opened < end)
            due = inside & (opened <= end - 72 * HOUR)
            # Resolved in the window, as cs.reopen_rate counts tickets: by when they were resolved.
            done = has_resolved & (resolved >= start) & (resolved < end)
            values = (inside, inside & frr_ok, inside & rated, inside & rated & satisfied,
                      inside & rated & complaint, inside & rated & satisfied & complaint,
                      due, due & has_resolved, inside & revisit_due, inside & revisited,
                      done, done & (chunk.reopened_count > 0))
            for f, v in enumerate(values):
                table[:, f] += np.bincount(dept, weights=v, minlength=len(CS_DEPARTMENTS)).astype(np.int64)

        inside = (opened >= self.month[0]) & (opened < self.month[1]) & (chunk.agent >= 0)
        agent = np.where(inside, chunk.agent, 0)
        for f, v in enumerate((inside, inside & frr_ok, inside & rated, inside & rated & satisfied)):
            stats.agent_month[:, f] += np.bincount(agent, weights=v, minlength=len(stats.agents)).astype(np.int64)

    def _sample_for_qa(self, chunk: TicketChunk, week_end: int) -> None:
        """The week's QA sample per department, every agent at least once (the poor-attitude agent
        three times), reviewed during the following week by an auditor."""
        rng = self.rng
        opened = chunk.opened_at.astype(np.int64)
        reviewable = ~np.isnat(chunk.resolved_at)
        for d in range(len(CS_DEPARTMENTS)):
            order = rng.permutation(np.flatnonzero(reviewable & (chunk.department == d)))
            _, first = np.unique(chunk.agent[order], return_index=True)
            taken = np.zeros(len(order), dtype=bool)
            taken[first] = True
            rest = order[~taken]
            extra = max(0, QA_PER_DEPARTMENT_WEEK - len(first))
            later = rest[extra:]
            again = later[chunk.agent[later] == self.poor][:2]
            for row in np.concatenate([order[np.sort(first)], rest[:extra], again]).tolist():
                self._review(chunk, row, int(opened[row]), week_end)

    def _review(self, chunk: TicketChunk, row: int, opened: int, week_end: int) -> None:
        rng = self.rng
        reviewed = week_end + int(rng.integers(0, 5)) * DAY + 9 * HOUR + int(rng.integers(0, 9 * HOUR))
        attitude = round(78 + 20 * rng.beta(3.0, 2.0))
        resolution = round(75 + 23 * rng.beta(3.0, 2.0))
        compliant_draw = rng.random()
        if reviewed > self.as_of:
            return  # not reviewed yet
        in_month = self.month[0] <= opened < self.month[1] or self.month[0] <= reviewed < self.month[1]
        agent = int(chunk.agent[row])
        noncompliant = NONCOMPLIANT_CS2 if in_month and chunk.department[row] == 1 else NONCOMPLIANT
        notes = None
        if in_month and agent == self.poor:
            attitude = int(np.clip(round(rng.normal(68, 5)), 61, 77))
            resolution = int(np.clip(round(rng.normal(70, 5)), 61, 77))
            notes = "服务态度生硬，未主动安抚客户，问题未彻底解决"
            both = self.month[0] <= opened and reviewed < self.month[1]
            if both and self.stats.low_review_ticket is None:
                attitude, resolution, notes = 48, 52, "与客户争执，态度恶劣，问题未解决即结单"
                self.stats.low_review_ticket = ticket_id(chunk.first_number + row)
        compliant = compliant_draw >= noncompliant
        if not compliant:
            notes = "未按服务流程核实客户信息"
        self.stats.qa_tickets.append((self.stats.agents[agent], CS_DEPARTMENTS[int(chunk.department[row])],
                                      datetime(1970, 1, 1) + timedelta(seconds=opened)))
        self.stats.qa_rows.append({
            "ticket_id": ticket_id(chunk.first_number + row),
            "reviewer_id": self.auditors[int(rng.integers(len(self.auditors)))],
            "reviewed_at": datetime(1970, 1, 1) + timedelta(seconds=reviewed),
            "attitude_score": float(attitude), "resolution_score": float(resolution),
            "compliant": bool(compliant), "notes": notes,
        })

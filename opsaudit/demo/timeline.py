"""The demo's calendar: the covered span and the last complete periods the audits look at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from opsaudit import periods
from opsaudit.periods import Period


def _month_index(moment: datetime) -> int:
    return moment.year * 12 + moment.month - 1


@dataclass(frozen=True)
class Timeline:
    """Data covers [start, as_of); week, month and quarter are the last complete ones before as_of."""

    as_of: datetime
    start: datetime
    week: Period
    month: Period
    quarter: Period

    @classmethod
    def build(cls, as_of: datetime, months: int) -> Timeline:
        """The timeline for `months` calendar months ending with as_of's month.

        The previous complete quarter must be covered whole, or the planning and data audits
        would have nothing to look at; ValueError says how many months that takes.
        """
        quarter = periods.previous("quarter", as_of)
        needed = _month_index(as_of) - _month_index(quarter.start) + 1
        if months < needed:
            raise ValueError(f"months={months} does not cover the previous complete quarter "
                             f"{quarter.label} before {as_of:%Y-%m-%d}; use at least {needed}")
        first = _month_index(as_of) - (months - 1)
        return cls(as_of=as_of, start=datetime(first // 12, first % 12 + 1, 1),
                   week=periods.previous("week", as_of), month=periods.previous("month", as_of),
                   quarter=quarter)

    @property
    def problem_window(self) -> tuple[datetime, datetime]:
        """Where planted customer-service problems live: the last complete week and month, and
        the days between them, so both the weekly and the monthly audit see them."""
        return (min(self.week.start, self.month.start), max(self.week.end, self.month.end))

    @property
    def next_quarter(self) -> Period:
        return periods.shift(self.quarter, 1)

    def quarter_month(self, index: int) -> Period:
        """The index-th (0, 1, 2) month of the previous complete quarter."""
        return periods.shift(periods.containing("month", self.quarter.start), index)

    @property
    def dq_window(self) -> tuple[datetime, datetime]:
        """Days 2 to 12 of the quarter's second month: inside the quarter and never in the last
        complete week or month, so only the quarter's audits see the planted defects."""
        start = self.quarter_month(1).start
        return (start + timedelta(days=1), start + timedelta(days=12))

    def months(self) -> list[Period]:
        """Every month with covered days, oldest first (the last one may be partial or empty)."""
        out = [periods.containing("month", self.start)]
        while out[-1].end <= self.as_of:
            out.append(periods.shift(out[-1], 1))
        return [m for m in out if m.start < self.as_of]

    def complete(self, kind: str) -> list[Period]:
        """Every month or quarter lying wholly inside [start, as_of), oldest first."""
        period = periods.containing(kind, self.start)  # type: ignore[arg-type]
        if period.start < self.start:
            period = periods.shift(period, 1)
        out = []
        while period.end <= self.as_of:
            out.append(period)
            period = periods.shift(period, 1)
        return out

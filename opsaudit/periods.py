"""Audit periods: `2026` (year), `2026Q4`, `2026-11`, `2026-W47` (ISO week), or a date range.

Bounds are naive local datetimes (start inclusive, end exclusive), matching the contract's naive
timestamps in OPSAUDIT_TIMEZONE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

PeriodKind = Literal["year", "quarter", "month", "week", "range"]
# One label of each kind, as errors show what a period looks like.
LABEL_EXAMPLES = ("2026", "2026Q4", "2026-11", "2026-W47", "2026-10-01..2026-10-31")

_PATTERNS: tuple[tuple[PeriodKind, re.Pattern[str]], ...] = (
    ("week", re.compile(r"^(\d{4})-W(\d{2})$")),
    ("quarter", re.compile(r"^(\d{4})Q([1-4])$")),
    ("month", re.compile(r"^(\d{4})-(\d{2})$")),
    ("year", re.compile(r"^(\d{4})$")),
    ("range", re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")),
)


@dataclass(frozen=True, order=True)
class Period:
    start: datetime
    end: datetime
    kind: PeriodKind
    label: str

    def __str__(self) -> str:
        return self.label

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def year(y: int) -> Period:
    return Period(datetime(y, 1, 1), datetime(y + 1, 1, 1), "year", f"{y:04d}")


def quarter(y: int, q: int) -> Period:
    start = datetime(y, 3 * (q - 1) + 1, 1)
    end = datetime(y + 1, 1, 1) if q == 4 else datetime(y, 3 * q + 1, 1)
    return Period(start, end, "quarter", f"{y:04d}Q{q}")


def month(y: int, m: int) -> Period:
    end = datetime(y + 1, 1, 1) if m == 12 else datetime(y, m + 1, 1)
    return Period(datetime(y, m, 1), end, "month", f"{y:04d}-{m:02d}")


def week(y: int, w: int) -> Period:
    start = _midnight(date.fromisocalendar(y, w, 1))
    return Period(start, start + timedelta(days=7), "week", f"{y:04d}-W{w:02d}")


def date_range(first: date, last: date) -> Period:
    """The days first..last, both included."""
    return Period(_midnight(first), _midnight(last) + timedelta(days=1), "range",
                  f"{first.isoformat()}..{last.isoformat()}")


def parse_period(text: str) -> Period:
    """A Period from its label; ValueError names what was expected."""
    text = text.strip()
    for kind, pattern in _PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        try:
            if kind == "week":
                return week(int(match[1]), int(match[2]))
            if kind == "quarter":
                return quarter(int(match[1]), int(match[2]))
            if kind == "month":
                if not 1 <= int(match[2]) <= 12:
                    break
                return month(int(match[1]), int(match[2]))
            if kind == "year":
                return year(int(match[1]))
            first, last = date.fromisoformat(match[1]), date.fromisoformat(match[2])
            if last < first:
                break
            return date_range(first, last)
        except ValueError:
            break
    raise ValueError(f"{text!r} is not a period (expected {', '.join(LABEL_EXAMPLES)})")


def given_period(label: str, option: str) -> Period:
    """The period a person gave as `option` (or a flow's parameter); a UsageError naming it, in
    the reader's language, when `label` names none."""
    # Imported here: the catalogue's formatters read periods from this module.
    from opsaudit.errors import option_error
    from opsaudit.i18n.render import Message

    try:
        return parse_period(label)
    except ValueError:
        key = "error.period.not_a_period" if label.strip() else "error.period.empty"
        raise option_error(option, Message.of(key, value=label.strip(), examples=list(LABEL_EXAMPLES))) from None


def given_month(label: str, option: str) -> Period:
    """The month a person gave as `option` (scores, the circulation); a UsageError for anything else."""
    from opsaudit.errors import option_error
    from opsaudit.i18n.render import Message

    period = given_period(label, option)
    if period.kind != "month":
        raise option_error(option, Message.of("error.period.not_a_month", value=label.strip(), kind=period.kind,
                                              example="2026-10"))
    return period


def containing(kind: PeriodKind, moment: datetime) -> Period:
    """The period of `kind` that contains the naive local `moment`."""
    if kind == "year":
        return year(moment.year)
    if kind == "quarter":
        return quarter(moment.year, (moment.month - 1) // 3 + 1)
    if kind == "month":
        return month(moment.year, moment.month)
    if kind == "week":
        iso = moment.isocalendar()
        return week(iso.year, iso.week)
    raise ValueError(f"no period of kind {kind!r} contains a moment")


def previous(kind: PeriodKind, local_now: datetime) -> Period:
    """The last complete period of `kind` before the naive local time `local_now`."""
    current = containing(kind, local_now)
    return containing(kind, current.start - timedelta(seconds=1))


def shift(period: Period, steps: int) -> Period:
    """The period `steps` periods after (negative: before) `period`, of the same kind."""
    if period.kind == "range":
        length = period.end - period.start
        first = period.start + steps * length
        return date_range(first.date(), (first + length - timedelta(days=1)).date())
    if period.kind == "week":
        return containing("week", period.start + timedelta(weeks=steps))
    months = {"month": 1, "quarter": 3, "year": 12}[period.kind]
    index = period.start.year * 12 + period.start.month - 1 + steps * months
    return containing(period.kind, datetime(index // 12, index % 12 + 1, 1))


def periods_ending_in(period: Period) -> list[str]:
    """Labels of the months, quarters and years whose last day falls in the period."""
    labels: list[str] = []
    for kind in ("month", "quarter", "year"):
        current = containing(kind, period.start)
        while current.start < period.end:
            if period.start < current.end <= period.end:
                labels.append(current.label)
            current = shift(current, 1)
    return labels

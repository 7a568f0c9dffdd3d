"""Periods: labels, bounds, the last complete period, and shifting."""

from __future__ import annotations

from datetime import datetime

import pytest

from opsaudit.periods import parse_period, previous, shift


@pytest.mark.parametrize(("label", "start", "end"), [
    ("2026", datetime(2026, 1, 1), datetime(2027, 1, 1)),
    ("2026Q4", datetime(2026, 10, 1), datetime(2027, 1, 1)),
    ("2026-02", datetime(2026, 2, 1), datetime(2026, 3, 1)),
    ("2026-W47", datetime(2026, 11, 16), datetime(2026, 11, 23)),
    ("2026-W01", datetime(2025, 12, 29), datetime(2026, 1, 5)),
    ("2026-10-05..2026-10-20", datetime(2026, 10, 5), datetime(2026, 10, 21)),
])
def test_parse(label, start, end):
    period = parse_period(label)
    assert (period.start, period.end, period.label) == (start, end, label)


@pytest.mark.parametrize("label", ["2026-13", "2026Q5", "26-10", "2026-W60", "2026-10-20..2026-10-01", ""])
def test_parse_rejects(label):
    with pytest.raises(ValueError, match="is not a period"):
        parse_period(label)


@pytest.mark.parametrize(("kind", "now", "expected"), [
    ("week", datetime(2026, 11, 23, 8), "2026-W47"),   # Monday morning: the previous ISO week
    ("week", datetime(2026, 11, 22, 23), "2026-W46"),
    ("month", datetime(2026, 11, 1, 8), "2026-10"),
    ("month", datetime(2026, 1, 15), "2025-12"),
    ("quarter", datetime(2026, 10, 1, 8), "2026Q3"),
    ("quarter", datetime(2026, 2, 1), "2025Q4"),
])
def test_previous_complete_period(kind, now, expected):
    assert previous(kind, now).label == expected


def test_shift():
    assert shift(parse_period("2026-01"), -2).label == "2025-11"
    assert shift(parse_period("2026Q1"), -1).label == "2025Q4"
    assert shift(parse_period("2026-W01"), -1).label == "2025-W52"
    assert shift(parse_period("2026-10-01..2026-10-10"), 1).label == "2026-10-11..2026-10-20"

"""Templates with named formatters: `{observed:percent}`, `{due_at:date}`, `{priority:enum.priority}`.

A template never holds a number format; the formatter after the colon decides it per language,
with Babel for numbers, percentages and dates. A missing value renders as `—`; a value the
formatter cannot read renders as it is. Neither raises.
"""

from __future__ import annotations

import decimal
import math
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import NumberPattern, parse_pattern

from opsaudit.i18n.catalogue import CatalogueError, has_message, message
from opsaudit.periods import parse_period

MISSING = "—"
ENUM_PREFIX = "enum."
_LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en_US"}
_PARSER = string.Formatter()

Formatter = Callable[[Any, str], str]


def text(key: str, language: str, /, **values: Any) -> str:
    """The message `key` in `language` with `values` filled in."""
    return render(message(key, language), language, values)


@dataclass(frozen=True)
class Message:
    """A catalogue message and its values, written out only when someone reads it, in their
    language: said once, read in a task log, a JSON summary and the terminal. A value may be a
    Message itself (a role inside a note)."""

    key: str
    values: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, key: str, /, **values: Any) -> Message:
        return cls(key, tuple(values.items()))

    def text(self, language: str) -> str:
        return text(self.key, language, **{name: value.text(language) if isinstance(value, Message) else value
                                           for name, value in self.values})


def render(template: str, language: str, values: Mapping[str, Any]) -> str:
    """`template` with each `{name:formatter}` replaced by the formatted value of `name`."""
    parts: list[str] = []
    for literal, name, formatter in _parsed(template):
        parts.append(literal)
        if name is not None:
            parts.append(format_value(values.get(name), formatter, language))
    return "".join(parts)


def placeholders(template: str) -> set[tuple[str, str]]:
    """The (name, formatter) pairs a template uses."""
    return {(name, formatter) for _, name, formatter in _parsed(template) if name is not None}


@lru_cache(maxsize=4096)
def _parsed(template: str) -> tuple[tuple[str, str | None, str], ...]:
    """(literal, name, formatter) pieces of a template, parsed once: a list renders it thousands of times."""
    return tuple((literal, name, spec or "text") for literal, name, spec, _ in _PARSER.parse(template))


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(_LOCALES[language])


@cache
def _number_pattern(pattern: str) -> NumberPattern:
    return parse_pattern(pattern)


def format_value(value: Any, formatter: str, language: str) -> str:
    """One value through one formatter (`count`, `percent`, `enum.priority`, ...)."""
    if _missing(value):
        return MISSING
    if formatter.startswith(ENUM_PREFIX):
        return enum_text(formatter.removeprefix(ENUM_PREFIX), value, language)
    function = FORMATTERS.get(formatter)
    if function is None:
        raise CatalogueError(f"unknown formatter {formatter!r} (known: {', '.join(FORMATTERS)}, enum.NAME)")
    try:
        return function(value, language)
    except (ValueError, TypeError, ArithmeticError):
        return str(value)


def is_formatter(formatter: str) -> bool:
    return formatter in FORMATTERS or formatter.startswith(ENUM_PREFIX)


def enum_text(enum: str, value: Any, language: str) -> str:
    """An enumeration value in words (`enum.priority.critical`); an unknown value as it is."""
    key = f"{ENUM_PREFIX}{enum}.{value}"
    return message(key, language) if has_message(key, language) else str(value)


def _missing(value: Any) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    return isinstance(value, float) and math.isnan(value)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    return float(str(value).strip())


@lru_cache(maxsize=65536)
def _decimal(value: float, pattern: str, language: str) -> str:
    # Through Decimal of the shortest repr, so 0.8205 rounds as written, not as its binary double.
    # Cached: a report of thousands of findings formats the same counts and shares over and over,
    # and Babel takes tens of microseconds each time. The rounding is set here, so a cached
    # figure never depends on its caller's context: as people round, 82.05% is 82.1%.
    with decimal.localcontext() as context:
        context.rounding = decimal.ROUND_HALF_UP
        return _number_pattern(pattern).apply(Decimal(repr(value)), _locale(language))


def _whole(value: float) -> bool:
    return abs(value - round(value)) < 1e-9


def count(value: Any, language: str) -> str:
    """A count with thousands separators: 60,132 (a fractional count keeps two decimals)."""
    number = _number(value)
    return _decimal(round(number) if _whole(number) else number, "#,##0.##", language)


def number(value: Any, language: str) -> str:
    """A figure with thousands separators and at most two decimals: 12,345.5."""
    return _decimal(_number(value), "#,##0.##", language)


def percent(value: Any, language: str) -> str:
    """A share as a percentage with one decimal: 0.974493 is 97.4%; a tiny share is <0.1%."""
    share = _number(value)
    if share != 0 and abs(share) < 0.0005:
        return "<" + _decimal(0.001, "#,##0.0%", language)
    return _decimal(share, "#,##0.0%", language)


def points(value: Any, language: str) -> str:
    """A difference of two shares in percentage points, one decimal: 0.08 is 8.0."""
    return _decimal(_number(value) * 100, "#,##0.0", language)


def score(value: Any, language: str) -> str:
    """A score on 0..100 with its unit: 55分 / 55 points."""
    return render(message("format.score", language), language, {"value": _decimal(_number(value), "#,##0.#", language)})


def hours(value: Any, language: str) -> str:
    """Working hours with their unit: 120.5小时 / 120.5 hours."""
    return render(message("format.hours", language), language, {"value": _decimal(_number(value), "#,##0.#", language)})


def amount(value: Any, language: str) -> str:
    """Money with its unit, to the fen: 12,500元 / 12,500 yuan."""
    return render(message("format.amount", language), language,
                  {"value": _decimal(_number(value), "#,##0.##", language)})


def days(value: Any, language: str) -> str:
    """A duration in days: 46天 / 46 days; a part day keeps one decimal (3.5 days)."""
    amount = round(_number(value), 1)
    key = "format.days.one" if amount == 1 else "format.days.other"
    return render(message(key, language), language, {"value": _decimal(amount, "#,##0.#", language)})


def whole_days(value: Any, language: str) -> str:
    """Days late, counted in whole days as people count lateness: 46.2 days is 46天 / 46 days."""
    return days(math.floor(_number(value)), language)


def moment(value: Any) -> datetime:
    """A datetime from a datetime, a date or an ISO string (`2026-09-15T00:00:00` or with a space)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.fromisoformat(str(value).strip())


def date_text(value: Any, language: str) -> str:
    """A date: 2026-09-15 in Chinese, Sep 15, 2026 in English."""
    return format_date(moment(value), message("format.date_pattern", language), locale=_locale(language))


def datetime_text(value: Any, language: str) -> str:
    """A date and time to the minute: 2026-09-15 14:30 / Sep 15, 2026, 14:30."""
    when = moment(value)
    # Babel would show an aware time in UTC; keep the wall time the value carries.
    return format_datetime(when, message("format.datetime_pattern", language), tzinfo=when.tzinfo,
                           locale=_locale(language))


def weekday(value: Any, language: str) -> str:
    """The day of the week, short: 周一 / Mon."""
    return format_date(moment(value), "EEE", locale=_locale(language))


def period_text(value: Any, language: str) -> str:
    """An audit period in words: 2026-10 is 2026年10月 / October 2026; an unknown label as it is."""
    return _period_words(str(value), language)


@lru_cache(maxsize=1024)
def _period_words(label: str, language: str) -> str:
    # Cached: every finding of a run names the same period, thousands of times in one report.
    period = parse_period(label)
    start = period.start
    if period.kind == "range":
        last = period.end - timedelta(days=1)
        values: dict[str, Any] = {"start": date_text(start, language), "end": date_text(last, language)}
    else:
        iso = start.isocalendar()
        values = {"year": iso.year if period.kind == "week" else start.year, "month": start.month,
                  "quarter": (start.month - 1) // 3 + 1, "week": iso.week}
    return text(f"format.period.{period.kind}", language, **values)


def list_text(value: Any, language: str) -> str:
    """Items joined the way the language lists them: a、b、c / a, b, c."""
    items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    return message("format.list_separator", language).join(str(item) for item in items)


def plain(value: Any, _language: str) -> str:
    """The value as it is: ids, names, titles."""
    if isinstance(value, float) and _whole(value):
        return str(int(value))
    return str(value)


FORMATTERS: dict[str, Formatter] = {
    "text": plain,
    "count": count,
    "number": number,
    "percent": percent,
    "points": points,
    "score": score,
    "hours": hours,
    "amount": amount,
    "days": days,
    "whole_days": whole_days,
    "date": date_text,
    "datetime": datetime_text,
    "weekday": weekday,
    "period": period_text,
    "list": list_text,
}

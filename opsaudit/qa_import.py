"""`opsaudit qa import FILE`: load a filled QA review sheet (CSV or XLSX) into qa_reviews.

The sheet may be in either language (its headers are matched in both). All or nothing: every row
is checked first, and the errors, each with its line (up to 50, then how many more), reject the
whole file. Rows without any score are not reviewed yet and are skipped, so a sheet can be
imported as it fills up: a row already in qa_reviews with the same values is skipped too, and one
with other values is an error, never an update.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zipfile import BadZipFile
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException
from sqlalchemy.engine import Connection, Engine

from opsaudit.config.models import SourceMapping
from opsaudit.contract import qa_reviews
from opsaudit.errors import InputError, SourceError
from opsaudit.i18n import Message, resolve_language, text
from opsaudit.periods import parse_period
from opsaudit.reports.review_sheet import column_for_header, period_of, review_sheet_titles
from opsaudit.settings import load_settings
from opsaudit.source import Source, missing_tables

REQUIRED = ("review_id", "ticket_id", "reviewer_id", "reviewed_at", "attitude_score", "resolution_score",
            "compliant")
SCORED = ("attitude_score", "resolution_score", "compliant")
_TRUE = frozenset({"true", "yes", "1", "是"})
_FALSE = frozenset({"false", "no", "0", "否"})
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_CHUNK = 500
MAX_LISTED_ERRORS = 50

Fail = Callable[..., None]


@dataclass(frozen=True)
class ImportSummary:
    path: Path
    imported: int
    unreviewed: int  # rows without scores, skipped
    already_imported: int  # rows identical to a review already in qa_reviews, skipped
    period: str | None = None  # the sheet's period label, when its name or its review ids tell

    def sentence(self, language: str) -> str:
        """What a person reads when the import succeeded."""
        counts = {"imported": self.imported, "unreviewed": self.unreviewed, "already": self.already_imported}
        if self.period is not None:
            return text("qa.imported", language, period=self.period, **counts)
        return text("qa.imported_file", language, path=self.path, **counts)


@dataclass(frozen=True)
class _Row:
    line: int
    cells: dict[str, Any]  # column -> value; None when empty


@dataclass(frozen=True)
class _Review:
    line: int
    review_id: str
    ticket_id: str
    reviewer_id: str
    reviewed_at: datetime | None  # None: empty in the sheet, stored as the import time
    attitude_score: float
    resolution_score: float
    compliant: bool
    notes: str | None


class _Problems:
    """The errors found, each on a line (CSV) or row (XLSX) of the file, in the reader's language."""

    def __init__(self, path: Path, word: str, language: str) -> None:
        self.path, self.word, self.language = path, word, language
        self.found: list[tuple[int, str]] = []

    def add(self, line: int, key: str, **values: Any) -> None:
        """Record the error `qa.error.<key>` on `line`; a `column` value is named by its header."""
        if "column" in values:
            values["column"] = header(values["column"], self.language)
        self.found.append((line, text(f"qa.error.{key}", self.language, **values)))

    def where(self, line: int) -> str:
        return text(f"qa.error.{self.word}", self.language, line=line)

    def raise_any(self) -> None:
        """One InputError listing every error in file order, up to MAX_LISTED_ERRORS of them."""
        if not self.found:
            return
        found = sorted(self.found, key=lambda item: item[0])
        lines = [text("qa.error.rows" if len(found) > 1 else "qa.error.rows_one", self.language, path=self.path,
                      count=len(found))]
        lines += ["  " + text("qa.error.at", self.language, where=self.where(line), message=message)
                  for line, message in found[:MAX_LISTED_ERRORS]]
        if len(found) > MAX_LISTED_ERRORS:
            lines.append("  " + text("qa.error.more", self.language, count=len(found) - MAX_LISTED_ERRORS))
        raise InputError("\n".join(lines))


def header(column: str, language: str) -> str:
    """A column of the sheet as its header reads in `language`."""
    return text(f"review_sheet.column.{column}", language)


# The tables an import reads (the reviewed tickets and the reviewers) and the one it writes.
QA_TABLES = ("tickets", "staff", "qa_reviews")


def import_review_sheet(engine: Engine, path: Path, *, source: Source | None = None,
                        language: str | None = None) -> ImportSummary:
    """Import the reviewed rows of a sheet into qa_reviews of `engine`, in one transaction.

    `source` maps the contract tables of that same database (default: contract names); tickets,
    staff and existing reviews are checked through it. Errors are in `language` (default
    OPSAUDIT_LANGUAGE).
    """
    language = resolve_language(language)
    source = source or Source(engine, SourceMapping())
    absent = missing_tables(source, QA_TABLES)
    if absent:
        raise SourceError(Message.of("error.source.qa_tables", purpose=Message.of("error.purpose.database"),
                                     tables=[source.physical_name(t) for t in sorted(absent)], command="qa import",
                                     read=list(QA_TABLES[:-1]), written=QA_TABLES[-1]).text(language))
    tz = load_settings().tz
    now = datetime.now(tz).replace(tzinfo=None, microsecond=0)
    word, rows = _read(path, language)
    problems = _Problems(path, word, language)
    reviews, unreviewed = _parse(rows, tz, now, problems)
    with engine.begin() as conn:
        _check_tickets_and_reviewers(conn, source, reviews, tz, problems)
        new, identical = _split_existing(conn, source, reviews, problems)
        problems.raise_any()
        if new:
            try:
                _insert(conn, source, new, now, language)
            except sa.exc.IntegrityError as exc:
                reason = str(exc.orig).strip().splitlines()[0]
                raise InputError(text("qa.error.refused", language, path=path, reason=reason)) from None
    return ImportSummary(path, len(new), unreviewed, identical, _sheet_period(path, rows))


def _sheet_period(path: Path, rows: list[_Row]) -> str | None:
    """The period the sheet was drawn for: from its file name, else from its prefilled review ids."""
    from_ids = {str(row.cells.get("review_id") or "").removeprefix("QA-").rpartition("-")[0] for row in rows}
    for labels in ({period_of(path)}, from_ids):
        if len(labels) == 1 and (label := labels.pop()):
            try:
                return parse_period(label).label
            except ValueError:
                continue
    return None


# --- reading ---------------------------------------------------------------------------------

def _read(path: Path, language: str) -> tuple[str, list[_Row]]:
    """The data rows of a CSV (counted in lines) or XLSX (counted in rows); header checked."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InputError(text("qa.error.not_a_sheet", language, path=path))
    try:
        word, table = ("line", list(_csv_rows(path))) if suffix == ".csv" else ("row", list(_xlsx_rows(path)))
    except (OSError, ValueError, KeyError, csv.Error, BadZipFile, InvalidFileException) as exc:
        raise InputError(text("qa.error.cannot_read", language, path=path, reason=exc)) from None
    if not table:
        raise InputError(text("qa.error.empty_file", language, path=path))
    (_, names), data = table[0], table[1:]
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        column = column_for_header(str(name)) if name is not None else None
        if column in (*REQUIRED, "notes") and column not in index:
            index[column] = position
    missing = [header(column, language) for column in REQUIRED if column not in index]
    if missing:
        where = text(f"qa.error.{word}", language, line=1)
        raise InputError(text("qa.error.missing_columns", language, path=path, where=where, columns=missing))
    rows = []
    for line, values in data:
        cells = {name: _blank_to_none(values[i]) if i < len(values) else None for name, i in index.items()}
        if any(value is not None for value in cells.values()):
            rows.append(_Row(line, cells))
    return word, rows


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")  # Excel on a Chinese Windows saves CSV in the ANSI code page
    reader = csv.reader(io.StringIO(text, newline=""))
    first_line = 1
    for values in reader:
        yield first_line, values  # a quoted note may span lines: report where its record starts
        first_line = reader.line_num + 1


def _xlsx_rows(path: Path) -> Iterator[tuple[int, Sequence[Any]]]:
    book = load_workbook(path, data_only=True)
    titles = [title for title in book.sheetnames if title in review_sheet_titles()]
    sheet = book[titles[0]] if titles else book.worksheets[0]
    yield from enumerate(sheet.iter_rows(values_only=True), start=1)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


# --- parsing ---------------------------------------------------------------------------------

def _parse(rows: list[_Row], tz: ZoneInfo, now: datetime, problems: _Problems) -> tuple[list[_Review], int]:
    """The reviewed rows, and the count of rows not reviewed yet; problems collects the errors."""
    reviews: list[_Review] = []
    unreviewed = 0
    first_review: dict[str, int] = {}
    first_ticket: dict[str, int] = {}
    for row in rows:
        if all(row.cells.get(column) is None for column in SCORED):
            unreviewed += 1
            continue
        review = _review(row, tz, now, problems)
        if review is None:
            continue
        if review.review_id in first_review:
            problems.add(row.line, "duplicate_review", review_id=review.review_id,
                         first=problems.where(first_review[review.review_id]))
        elif review.ticket_id in first_ticket:
            problems.add(row.line, "duplicate_ticket", ticket_id=review.ticket_id,
                         first=problems.where(first_ticket[review.ticket_id]))
        else:
            first_review[review.review_id] = first_ticket[review.ticket_id] = row.line
            reviews.append(review)
    return reviews, unreviewed


def _review(row: _Row, tz: ZoneInfo, now: datetime, problems: _Problems) -> _Review | None:
    """One reviewed row, or None with its problems added."""
    def fail(key: str, **values: Any) -> None:
        problems.add(row.line, key, **values)

    before = len(problems.found)
    review_id, ticket_id, reviewer_id = (_identifier(row, c, fail)
                                         for c in ("review_id", "ticket_id", "reviewer_id"))
    limit = qa_reviews.c.review_id.type.length
    if review_id is not None and len(review_id) > limit:
        fail("too_long", column="review_id", value=review_id, limit=limit)
    attitude = _score(row, "attitude_score", fail)
    resolution = _score(row, "resolution_score", fail)
    compliant = _boolean(row, fail)
    reviewed_at = _timestamp(row, tz, now, fail)
    notes = row.cells.get("notes")
    if len(problems.found) > before:
        return None
    return _Review(row.line, review_id, ticket_id, reviewer_id, reviewed_at, attitude, resolution,
                   compliant, None if notes is None else str(notes))


def _identifier(row: _Row, column: str, fail: Fail) -> str | None:
    value = row.cells.get(column)
    if value is None:
        fail("empty", column=column)
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an id typed as a number in Excel comes back as 1001.0
    return str(value)


def _score(row: _Row, column: str, fail: Fail) -> float | None:
    value = row.cells.get(column)
    if value is None:
        fail("empty", column=column)
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        fail("not_a_number", column=column, value=value)
        return None
    if not 0 <= number <= 100:
        fail("out_of_range", column=column, value=value)
        return None
    return number


def _boolean(row: _Row, fail: Fail) -> bool | None:
    value = row.cells.get("compliant")
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel's 1 and 0 come back as 1.0 and 0.0
    text = "" if value is None else str(value)
    if text.casefold() in _TRUE:
        return True
    if text.casefold() in _FALSE:
        return False
    if value is None:
        fail("empty", column="compliant")
    else:
        fail("not_a_boolean", column="compliant", value=value)
    return None


def _timestamp(row: _Row, tz: ZoneInfo, now: datetime, fail: Fail) -> datetime | None:
    """The naive local review time; None when empty (then the import time) or bad."""
    value = row.cells.get("reviewed_at")
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else _parse_time(str(value))
    if moment is None:
        fail("not_a_time", column="reviewed_at", value=value)
        return None
    moment = _local(moment, tz)
    if moment > now:
        fail("in_the_future", column="reviewed_at", value=moment)
        return None
    return moment


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    """A naive local time, as the contract keeps timestamps."""
    return moment.astimezone(tz).replace(tzinfo=None) if moment.tzinfo is not None else moment


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _TIME_FORMATS:  # what Excel makes of a time: 2026/11/7 9:05
        try:
            return datetime.strptime(text.replace("/", "-"), fmt)
        except ValueError:
            continue
    return None


# --- database --------------------------------------------------------------------------------

def _check_tickets_and_reviewers(conn: Connection, source: Source, reviews: list[_Review], tz: ZoneInfo,
                                 problems: _Problems) -> None:
    """Unknown tickets and reviewers, and reviews dated before their ticket was opened, looked up in bulk."""
    tickets, staff = source.table("tickets"), source.table("staff")
    opened = dict(_lookup(conn, tickets.c.ticket_id, tickets.c.opened_at, {r.ticket_id for r in reviews}))
    known_staff = dict(_lookup(conn, staff.c.staff_id, sa.literal(1), {r.reviewer_id for r in reviews}))
    for review in reviews:
        if review.ticket_id not in opened:
            problems.add(review.line, "unknown_ticket", ticket_id=review.ticket_id)
        elif review.reviewed_at is not None and opened[review.ticket_id] is not None \
                and review.reviewed_at < _local(opened[review.ticket_id], tz):
            problems.add(review.line, "before_opened", column="reviewed_at", value=review.reviewed_at,
                         ticket_id=review.ticket_id, opened_at=_local(opened[review.ticket_id], tz))
        if review.reviewer_id not in known_staff:
            problems.add(review.line, "unknown_reviewer", reviewer_id=review.reviewer_id)


def _lookup(conn: Connection, key: sa.ColumnElement[str], value: sa.ColumnElement[Any],
            wanted: set[str]) -> Iterator[tuple[str, Any]]:
    """(key, value) of the rows whose key is in `wanted`, in chunks of bound parameters."""
    ordered = sorted(wanted)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start:start + _CHUNK]
        yield from conn.execute(sa.select(key, value).where(key.in_(chunk))).tuples()


def _split_existing(conn: Connection, source: Source, reviews: list[_Review],
                    problems: _Problems) -> tuple[list[_Review], int]:
    """The reviews not in qa_reviews yet, and the count already there with the same values."""
    table = source.table("qa_reviews")
    stored: dict[str, sa.Row[Any]] = {}
    ids = sorted(r.review_id for r in reviews)
    for start in range(0, len(ids), _CHUNK):
        for row in conn.execute(sa.select(table).where(table.c.review_id.in_(ids[start:start + _CHUNK]))):
            stored[row.review_id] = row
    new, identical = [], 0
    for review in reviews:
        previous = stored.get(review.review_id)
        if previous is None:
            new.append(review)
        elif _same(review, previous):
            identical += 1
        else:
            problems.add(review.line, "overwrite", review_id=review.review_id)
    return new, identical


def _same(review: _Review, stored: sa.Row[Any]) -> bool:
    return (review.ticket_id == stored.ticket_id and review.reviewer_id == stored.reviewer_id
            and math.isclose(review.attitude_score, stored.attitude_score, abs_tol=1e-9)
            and math.isclose(review.resolution_score, stored.resolution_score, abs_tol=1e-9)
            and review.compliant == bool(stored.compliant) and review.notes == stored.notes
            and review.reviewed_at in (None, stored.reviewed_at))


def _insert(conn: Connection, source: Source, reviews: list[_Review], now: datetime, language: str) -> None:
    """Insert into qa_reviews under the names the mapping gives it."""
    spec = source.spec("qa_reviews")
    if spec.select is not None:
        raise SourceError(text("qa.error.mapped_to_select", language, table="qa_reviews", file="config/source.yaml"))
    name = {c.name: spec.columns.get(c.name, c.name) for c in qa_reviews.columns}
    columns = [sa.column(name[c.name], c.type) for c in qa_reviews.columns]
    table = sa.table(spec.table or "qa_reviews", *columns, schema=spec.schema_)
    conn.execute(sa.insert(table), [
        {name["review_id"]: r.review_id, name["ticket_id"]: r.ticket_id, name["reviewer_id"]: r.reviewer_id,
         name["reviewed_at"]: r.reviewed_at or now, name["attitude_score"]: r.attitude_score,
         name["resolution_score"]: r.resolution_score, name["compliant"]: r.compliant, name["notes"]: r.notes}
        for r in reviews
    ])

"""`opsaudit qa import FILE`: load a filled QA review sheet (CSV or XLSX) into qa_reviews.

All or nothing: every row is checked first and one error line (naming the file and line, with
the count of further errors) rejects the whole file. Rows without any score are not reviewed
yet and are skipped, so a sheet can be imported as it fills up: a row already in qa_reviews
with the same values is skipped too, and one with other values is an error, never an update.
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
from opsaudit.settings import load_settings
from opsaudit.source import Source

REQUIRED = ("review_id", "ticket_id", "reviewer_id", "reviewed_at", "attitude_score", "resolution_score",
            "compliant")
SCORED = ("attitude_score", "resolution_score", "compliant")
_TRUE = frozenset({"true", "yes", "1", "是"})
_FALSE = frozenset({"false", "no", "0", "否"})
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_CHUNK = 500

Fail = Callable[[str], None]


@dataclass(frozen=True)
class ImportSummary:
    path: Path
    imported: int
    unreviewed: int  # rows without scores, skipped
    already_imported: int  # rows identical to a review already in qa_reviews, skipped


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
    """The errors found, each on a line of the file; reported as the first one and a count."""

    def __init__(self, path: Path, word: str) -> None:
        self.path, self.word = path, word
        self.found: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.found.append((line, message))

    def raise_any(self) -> None:
        if not self.found:
            return
        line, message = min(self.found, key=lambda item: item[0])
        more = f" (and {len(self.found) - 1} more)" if len(self.found) > 1 else ""
        raise InputError(f"{self.path}: {self.word} {line}: {message}{more}")


def import_review_sheet(engine: Engine, path: Path, *, source: Source | None = None) -> ImportSummary:
    """Import the reviewed rows of a sheet into qa_reviews of `engine`, in one transaction.

    `source` maps the contract tables of that same database (default: contract names); tickets,
    staff and existing reviews are checked through it.
    """
    source = source or Source(engine, SourceMapping())
    tz = load_settings().tz
    now = datetime.now(tz).replace(tzinfo=None, microsecond=0)
    word, rows = _read(path)
    problems = _Problems(path, word)
    reviews, unreviewed = _parse(rows, tz, now, problems)
    with engine.begin() as conn:
        _check_references(conn, source, reviews, problems)
        new, identical = _split_existing(conn, source, reviews, problems)
        problems.raise_any()
        if new:
            try:
                _insert(conn, source, new, now)
            except sa.exc.IntegrityError as exc:
                reason = str(exc.orig).strip().splitlines()[0]
                raise InputError(f"{path}: the database refused the reviews: {reason}") from None
    return ImportSummary(path, len(new), unreviewed, identical)


# --- reading ---------------------------------------------------------------------------------

def _read(path: Path) -> tuple[str, list[_Row]]:
    """The data rows of a CSV (counted in lines) or XLSX (counted in rows); header checked."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InputError(f"{path}: not a review sheet (expected .csv or .xlsx)")
    try:
        word, table = ("line", list(_csv_rows(path))) if suffix == ".csv" else ("row", list(_xlsx_rows(path)))
    except (OSError, ValueError, KeyError, csv.Error, BadZipFile, InvalidFileException) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    if not table:
        raise InputError(f"{path}: empty file, expected a header row")
    (_, header), data = table[0], table[1:]
    names = [str(value).strip() if value is not None else "" for value in header]
    missing = [column for column in REQUIRED if column not in names]
    if missing:
        raise InputError(f"{path}: {word} 1: missing column {', '.join(missing)}")
    index = {name: names.index(name) for name in (*REQUIRED, "notes") if name in names}
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
    sheet = book["review"] if "review" in book.sheetnames else book.worksheets[0]
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
            problems.add(row.line, f"review {review.review_id} appears again "
                                   f"(first on {problems.word} {first_review[review.review_id]})")
        elif review.ticket_id in first_ticket:
            problems.add(row.line, f"ticket {review.ticket_id} is reviewed again "
                                   f"(first on {problems.word} {first_ticket[review.ticket_id]})")
        else:
            first_review[review.review_id] = first_ticket[review.ticket_id] = row.line
            reviews.append(review)
    return reviews, unreviewed


def _review(row: _Row, tz: ZoneInfo, now: datetime, problems: _Problems) -> _Review | None:
    """One reviewed row, or None with its problems added."""
    def fail(message: str) -> None:
        problems.add(row.line, message)

    before = len(problems.found)
    review_id, ticket_id, reviewer_id = (_identifier(row, c, fail)
                                         for c in ("review_id", "ticket_id", "reviewer_id"))
    limit = qa_reviews.c.review_id.type.length
    if review_id is not None and len(review_id) > limit:
        fail(f"review_id {review_id} is longer than {limit} characters")
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
        fail(f"{column} is empty")
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an id typed as a number in Excel comes back as 1001.0
    return str(value)


def _score(row: _Row, column: str, fail: Fail) -> float | None:
    value = row.cells.get(column)
    if value is None:
        fail(f"{column} is empty")
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        fail(f"{column} {value!r} is not a number")
        return None
    if not 0 <= number <= 100:
        fail(f"{column} {value} is not within 0..100")
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
    fail(f"compliant {value!r} is not a boolean (true/false, yes/no, 1/0, 是/否)"
         if value is not None else "compliant is empty")
    return None


def _timestamp(row: _Row, tz: ZoneInfo, now: datetime, fail: Fail) -> datetime | None:
    """The naive local review time; None when empty (then the import time) or bad."""
    value = row.cells.get("reviewed_at")
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else _parse_time(str(value))
    if moment is None:
        fail(f"reviewed_at {value!r} is not a date and time (e.g. 2026-11-17 14:30)")
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(tz).replace(tzinfo=None)
    if moment > now:
        fail(f"reviewed_at {moment:%Y-%m-%d %H:%M:%S} is in the future")
        return None
    return moment


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

def _check_references(conn: Connection, source: Source, reviews: list[_Review], problems: _Problems) -> None:
    """Unknown tickets and reviewers, looked up in bulk."""
    tickets, staff = source.table("tickets"), source.table("staff")
    known_tickets = _existing(conn, tickets.c.ticket_id, {r.ticket_id for r in reviews})
    known_staff = _existing(conn, staff.c.staff_id, {r.reviewer_id for r in reviews})
    for review in reviews:
        if review.ticket_id not in known_tickets:
            problems.add(review.line, f"ticket {review.ticket_id} is not a known ticket")
        if review.reviewer_id not in known_staff:
            problems.add(review.line, f"reviewer {review.reviewer_id} is not a known staff id")


def _existing(conn: Connection, column: sa.ColumnElement[str], values: set[str]) -> set[str]:
    found: set[str] = set()
    ordered = sorted(values)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start:start + _CHUNK]
        found.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
    return found


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
            problems.add(review.line, f"review {review.review_id} is already in qa_reviews with other values "
                                      "(a review is never overwritten; give a correction a new review_id)")
    return new, identical


def _same(review: _Review, stored: sa.Row[Any]) -> bool:
    return (review.ticket_id == stored.ticket_id and review.reviewer_id == stored.reviewer_id
            and math.isclose(review.attitude_score, stored.attitude_score, abs_tol=1e-9)
            and math.isclose(review.resolution_score, stored.resolution_score, abs_tol=1e-9)
            and review.compliant == bool(stored.compliant) and review.notes == stored.notes
            and review.reviewed_at in (None, stored.reviewed_at))


def _insert(conn: Connection, source: Source, reviews: list[_Review], now: datetime) -> None:
    """Insert into qa_reviews under the names the mapping gives it."""
    spec = source.spec("qa_reviews")
    if spec.select is not None:
        raise SourceError("qa_reviews is mapped to a SELECT (config/source.yaml): reviews cannot be imported")
    name = {c.name: spec.columns.get(c.name, c.name) for c in qa_reviews.columns}
    columns = [sa.column(name[c.name], c.type) for c in qa_reviews.columns]
    table = sa.table(spec.table or "qa_reviews", *columns, schema=spec.schema_)
    conn.execute(sa.insert(table), [
        {name["review_id"]: r.review_id, name["ticket_id"]: r.ticket_id, name["reviewer_id"]: r.reviewer_id,
         name["reviewed_at"]: r.reviewed_at or now, name["attitude_score"]: r.attitude_score,
         name["resolution_score"]: r.resolution_score, name["compliant"]: r.compliant, name["notes"]: r.notes}
        for r in reviews
    ])

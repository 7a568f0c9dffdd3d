"""The review sheet and `qa import`: write the sheet, fill it as a reviewer would, import it."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from opsaudit import contract
from opsaudit.checks.sampling import SampleDraw, draw_sample, ticket_details
from opsaudit.config.models import Sampling, SourceMapping
from opsaudit.errors import InputError
from opsaudit.periods import week
from opsaudit.qa_import import import_review_sheet
from opsaudit.reports.review_sheet import COLUMNS, write_review_sheet
from opsaudit.source import Source

WEEK = week(2026, 46)
REVIEWED = "2026-11-17 10:30:00"


@pytest.fixture
def sheet(engine, tmp_path) -> tuple[Path, Path, SampleDraw]:
    """Twelve handled tickets of one department, all drawn, written as a sheet."""
    contract.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(contract.departments), [{"department_id": "D1", "name": "客服部"}])
        conn.execute(sa.insert(contract.staff), [
            {"staff_id": s, "name": s, "department_id": "D1", "role": role, "active": True}
            for s, role in (("A1", "agent"), ("A2", "agent"), ("R1", "auditor"), ("R2", "auditor"))])
        conn.execute(sa.insert(contract.tickets), [
            {"ticket_id": f"T{n:03d}", "kind": "complaint" if n % 4 == 0 else "consultation",
             "channel": ("phone", "chat")[n % 2], "department_id": "D1",
             "agent_id": ("A1", "A2", None)[n % 3],
             "opened_at": WEEK.start + timedelta(hours=n), "resolved_at": WEEK.start + timedelta(hours=n + 2),
             "status": "resolved", "reopened_count": 0}
            for n in range(12)])
    source = Source(engine, SourceMapping())
    draw = draw_sample(source, WEEK, Sampling(tolerable_rate=0.03), 42)
    info = ticket_details(source, [r.ticket_id for r in draw.rows])
    csv_path, xlsx_path = write_review_sheet(draw, info, tmp_path / "out", WEEK.label)
    return csv_path, xlsx_path, draw


Fill = Callable[[int, dict[str, str]], None]


def _fill_csv(path: Path, fill: Fill, encoding: str = "utf-8-sig") -> None:
    """Let `fill(index, row)` edit each data row, as a reviewer would in Excel."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for index, row in enumerate(rows):
        fill(index, row)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _review_everything(index: int, row: dict[str, str]) -> None:
    row.update(reviewer_id="R1", reviewed_at=REVIEWED, attitude_score=str(70 + index),
               resolution_score="88.5", compliant=("是", "no", "TRUE", "0")[index % 4], notes=f"第{index}条")


def _stored(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.select(contract.qa_reviews).order_by(contract.qa_reviews.c.review_id)).all()


# --- the sheet -------------------------------------------------------------------------------

def test_the_sheet_lists_the_sample_in_draw_order(sheet):
    csv_path, xlsx_path, draw = sheet
    assert csv_path.name == "qa-review-sheet-2026-W46.csv"
    assert xlsx_path == csv_path.with_suffix(".xlsx")
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for Chinese
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(COLUMNS)
    assert [r["review_id"] for r in rows] == [f"QA-2026-W46-{n:04d}" for n in range(1, 13)]
    assert [r["ticket_id"] for r in rows] == [r.ticket_id for r in draw.rows]
    assert rows[0]["opened_at"].startswith("2026-11-")
    assert all(r[c] == "" for r in rows for c in ("reviewer_id", "attitude_score", "compliant", "notes"))
    about = json.loads(csv_path.with_suffix(".json").read_text(encoding="utf-8"))
    assert (about["period"], about["seed"], about["confidence"]) == ("2026-W46", 42, 0.95)
    assert about["departments"] == [{"department_id": "D1", "population": 12, "planned_size": 12, "size": 12}]


def test_the_xlsx_has_a_frozen_bold_header_validation_and_an_about_sheet(sheet):
    _, xlsx_path, draw = sheet
    book = load_workbook(xlsx_path)
    review, about = book["review"], book["about"]
    assert review.freeze_panes == "A2" and review["A1"].font.bold
    assert [c.value for c in review[1]] == list(COLUMNS)
    assert isinstance(review["G2"].value, datetime)
    assert {v.type for v in review.data_validations.dataValidation} == {"decimal", "list"}
    facts = {row[0]: row[1] for row in about.iter_rows(values_only=True) if row and row[0]}
    assert facts["seed"] == "42" and facts["period"] == "2026-W46"


# --- round trips -----------------------------------------------------------------------------

def test_a_filled_csv_is_imported(engine, sheet):
    csv_path, _, draw = sheet
    _fill_csv(csv_path, _review_everything)
    summary = import_review_sheet(engine, csv_path)
    assert (summary.imported, summary.unreviewed, summary.already_imported) == (12, 0, 0)
    stored = _stored(engine)
    assert [r.ticket_id for r in stored] == [r.ticket_id for r in draw.rows]
    first, second = stored[0], stored[1]
    assert (first.reviewer_id, first.reviewed_at, first.attitude_score, first.resolution_score) == (
        "R1", datetime(2026, 11, 17, 10, 30), 70, 88.5)
    assert (first.compliant, second.compliant, first.notes) == (True, False, "第0条")


def test_a_filled_xlsx_is_imported_and_unreviewed_rows_are_skipped(engine, sheet):
    _, xlsx_path, _ = sheet
    book = load_workbook(xlsx_path)
    review = book["review"]
    column = {name: index + 1 for index, name in enumerate(COLUMNS)}
    for row in range(2, 8):  # the reviewer did the first six tickets
        review.cell(row, column["reviewer_id"], "R2")
        review.cell(row, column["reviewed_at"], datetime(2026, 11, 18, 9, row))
        review.cell(row, column["attitude_score"], 95)
        review.cell(row, column["resolution_score"], 72.5)
        review.cell(row, column["compliant"], row % 2 == 0)
    review.cell(8, column["notes"], "下周再看")  # a note alone does not make a review
    book.save(xlsx_path)
    summary = import_review_sheet(engine, xlsx_path)
    assert (summary.imported, summary.unreviewed) == (6, 6)
    stored = _stored(engine)
    assert [(r.reviewer_id, r.attitude_score, r.compliant) for r in stored[:2]] == [("R2", 95, True),
                                                                                   ("R2", 95, False)]
    assert stored[0].reviewed_at == datetime(2026, 11, 18, 9, 2)


def test_a_sheet_can_be_imported_again_as_it_fills_up(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, lambda i, row: _review_everything(i, row) if i < 5 else None)
    assert import_review_sheet(engine, csv_path).imported == 5
    _fill_csv(csv_path, _review_everything)
    summary = import_review_sheet(engine, csv_path)
    assert (summary.imported, summary.already_imported) == (7, 5)
    again = import_review_sheet(engine, csv_path)
    assert (again.imported, again.already_imported) == (0, 12)
    assert len(_stored(engine)) == 12


def test_an_imported_review_is_never_overwritten(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, _review_everything)
    import_review_sheet(engine, csv_path)
    _fill_csv(csv_path, lambda i, row: row.update(attitude_score="10") if i == 3 else None)
    with pytest.raises(InputError, match=r"line 5: review QA-2026-W46-0004 is already in qa_reviews"):
        import_review_sheet(engine, csv_path)
    assert _stored(engine)[3].attitude_score == 73


def test_an_empty_review_time_is_the_import_time(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, lambda i, row: (_review_everything(i, row), row.update(reviewed_at="")))
    local = ZoneInfo("Asia/Shanghai")
    before = datetime.now(local).replace(tzinfo=None, microsecond=0)
    import_review_sheet(engine, csv_path)
    after = datetime.now(local).replace(tzinfo=None)
    assert all(before <= r.reviewed_at <= after for r in _stored(engine))
    # The same sheet again: the empty time does not make the rows differ from what is stored.
    assert import_review_sheet(engine, csv_path).already_imported == 12


def test_a_csv_saved_by_excel_in_the_chinese_code_page_is_read(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, _review_everything, encoding="gb18030")
    import_review_sheet(engine, csv_path)
    assert _stored(engine)[0].notes == "第0条"


# --- errors: one line naming the file and the line; nothing imported -------------------------

def _edit(*indexes: int, **values: str) -> Fill:
    """Review every row, then give the rows at `indexes` these values."""
    def fill(i: int, row: dict[str, str]) -> None:
        _review_everything(i, row)
        if i in indexes:
            row.update(values)
    return fill


@pytest.mark.parametrize(("fill", "message"), [
    (_edit(5, ticket_id="T999999"), "line 7: ticket T999999 is not a known ticket"),
    (_edit(0, reviewer_id="S404"), "line 2: reviewer S404 is not a known staff id"),
    (_edit(1, reviewer_id=""), "line 3: reviewer_id is empty"),
    (_edit(2, attitude_score="101"), "line 4: attitude_score 101 is not within 0..100"),
    (_edit(2, resolution_score="-0.5"), "line 4: resolution_score -0.5 is not within 0..100"),
    (_edit(3, attitude_score="good"), "line 5: attitude_score 'good' is not a number"),
    (_edit(3, attitude_score="nan"), "line 5: attitude_score 'nan' is not a number"),
    (_edit(4, resolution_score=""), "line 6: resolution_score is empty"),
    (_edit(4, compliant="maybe"), "line 6: compliant 'maybe' is not a boolean"),
    (_edit(6, reviewed_at="2026-13-01"), "line 8: reviewed_at '2026-13-01' is not a date and time"),
    (_edit(6, reviewed_at="2099-01-01 00:00"), "line 8: reviewed_at 2099-01-01 00:00:00 is in the future"),
    (_edit(8, 9, review_id="QA-dup"), "line 11: review QA-dup appears again (first on line 10)"),
    (_edit(9, ticket_id="T000", review_id="QA-x"), "line 11: ticket T000 is reviewed again (first on line"),
])
def test_a_bad_row_is_named_and_nothing_is_imported(engine, sheet, fill, message):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, fill)
    with pytest.raises(InputError) as error:
        import_review_sheet(engine, csv_path)
    assert str(error.value).startswith(f"{csv_path}: {message}")
    assert "\n" not in str(error.value)
    assert _stored(engine) == []


def test_further_errors_are_counted(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, lambda i, row: (_review_everything(i, row),
                                        row.update(ticket_id=f"X{i}") if i in (7, 8) else None,
                                        row.update(attitude_score="200") if i == 10 else None))
    with pytest.raises(InputError, match=r"line 9: ticket X7 is not a known ticket \(and 2 more\)$"):
        import_review_sheet(engine, csv_path)


def test_a_missing_column_is_named(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, lambda i, row: (_review_everything(i, row), row.pop("compliant")))
    with pytest.raises(InputError, match=r"line 1: missing column compliant$"):
        import_review_sheet(engine, csv_path)


def test_xlsx_errors_name_the_row(engine, sheet):
    _, xlsx_path, _ = sheet
    book = load_workbook(xlsx_path)
    review = book["review"]
    review.cell(4, COLUMNS.index("attitude_score") + 1, 80)
    review.cell(4, COLUMNS.index("reviewer_id") + 1, "R1")
    book.save(xlsx_path)
    with pytest.raises(InputError, match=r"\.xlsx: row 4: resolution_score is empty"):
        import_review_sheet(engine, xlsx_path)


def test_lines_are_counted_in_the_file_even_with_multi_line_notes(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, _edit(0, notes="第一行\n第二行"))
    _fill_csv(csv_path, lambda i, row: row.update(compliant="?") if i == 1 else None)
    with pytest.raises(InputError, match=r"line 4: compliant '\?' is not a boolean"):
        import_review_sheet(engine, csv_path)


def test_only_csv_and_xlsx_are_sheets(engine, sheet, tmp_path):
    contract.metadata.create_all(engine)
    other = tmp_path / "reviews.txt"
    other.write_text("review_id\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"reviews\.txt: not a review sheet"):
        import_review_sheet(engine, other)

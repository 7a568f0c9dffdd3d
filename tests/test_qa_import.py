"""The review sheet and `qa import`: write the sheet, fill it as a reviewer would, import it.

The sheet is written in Chinese (the default language) unless a test asks for English; errors are
checked in English, where their wording is asserted, and in Chinese where the language matters.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
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
from opsaudit.reports.review_sheet import COLUMNS, column_for_header, headers, write_review_sheet
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
    """Let `fill(index, row)` edit each data row by column name, as a reviewer would in Excel;
    the file keeps its headers (in whatever language they are)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header, *lines = list(csv.reader(handle))
    names = [column_for_header(name) or name for name in header]
    rows = [dict(zip(names, line, strict=True)) for line in lines]
    for index, row in enumerate(rows):
        fill(index, row)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([header[names.index(name)] if name in names else name for name in rows[0]])
        writer.writerows([list(row.values()) for row in rows])


def _import(engine: sa.Engine, path: Path):
    """Import with messages in English, whose wording the error tests assert."""
    return import_review_sheet(engine, path, language="en")


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
        header, *lines = list(csv.reader(handle))
    assert header == headers("zh-CN")
    assert header[:3] == ["复核编号", "工单编号", "部门编号"]
    rows = [dict(zip(COLUMNS, line, strict=True)) for line in lines]
    assert [r["review_id"] for r in rows] == [f"QA-2026-W46-{n:04d}" for n in range(1, 13)]
    assert [r["ticket_id"] for r in rows] == [r.ticket_id for r in draw.rows]
    assert rows[0]["opened_at"].startswith("2026-11-")
    assert {r["channel"] for r in rows} == {"电话", "在线客服"} and {r["kind"] for r in rows} == {"咨询", "投诉"}
    assert all(r[c] == "" for r in rows for c in ("reviewer_id", "attitude_score", "compliant", "notes"))
    about = json.loads(csv_path.with_suffix(".json").read_text(encoding="utf-8"))
    assert (about["period"], about["seed"], about["confidence"]) == ("2026-W46", 42, 0.95)
    assert about["departments"] == [{"department_id": "D1", "population": 12, "planned_size": 12, "size": 12}]


def test_the_xlsx_has_a_frozen_bold_header_validation_and_an_about_sheet(sheet):
    _, xlsx_path, draw = sheet
    book = load_workbook(xlsx_path)
    assert book.sheetnames == ["质检复核", "说明"]
    review, about = book["质检复核"], book["说明"]
    assert review.freeze_panes == "A2" and review["A1"].font.bold
    assert [c.value for c in review[1]] == headers("zh-CN")
    assert isinstance(review["G2"].value, datetime)
    validations = {v.type: v for v in review.data_validations.dataValidation}
    assert validations["list"].formula1 == '"是,否"' and validations["decimal"].error == "请填写0至100之间的分数"
    assert about["A1"].value == "2026年第46周质检复核表" and "未填写得分的行视为尚未复核" in about["A2"].value
    facts = {row[0]: row[1] for row in about.iter_rows(values_only=True) if row and row[0]}
    assert (facts["随机种子"], facts["稽查期间"], facts["置信水平"]) == ("42", "2026年第46周", "95.0%")
    assert facts["部门编号"] == "总体工单数"  # the header of the departments' table
    labels = [row[0] for row in about.iter_rows(values_only=True) if row and row[0] and row[0] != "D1"]
    assert [label for label in labels if re.search("[A-Za-z]", str(label))] == []


def test_the_sheet_can_be_written_in_english(engine, sheet, tmp_path):
    _, _, draw = sheet
    info = ticket_details(Source(engine, SourceMapping()), [r.ticket_id for r in draw.rows])
    csv_path, xlsx_path = write_review_sheet(draw, info, tmp_path / "en", WEEK.label, language="en")
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        header, first, *_ = list(csv.reader(handle))
    assert header[:3] == ["Review ID", "Ticket ID", "Department ID"] and first[4] in ("phone", "chat")
    book = load_workbook(xlsx_path)
    assert book.sheetnames == ["QA review", "about"]
    assert book["about"]["A1"].value == "QA review sheet for week 46 of 2026"


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
    review = book["质检复核"]
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
        _import(engine, csv_path)
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


def test_the_result_is_one_sentence_in_the_language_asked(engine, sheet, tmp_path):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, lambda i, row: _review_everything(i, row) if i < 9 else None)
    summary = import_review_sheet(engine, csv_path)
    assert (summary.period, summary.imported, summary.unreviewed) == ("2026-W46", 9, 3)
    assert summary.sentence("zh-CN") == (
        "已导入2026年第46周质检复核表的9条复核记录（尚未复核而跳过3行，此前已导入0条）。")
    assert summary.sentence("en") == (
        "Imported 9 reviews from the QA review sheet for week 46 of 2026 (3 rows not reviewed yet, 0 imported before).")
    renamed = csv_path.rename(tmp_path / "filled by 李静.csv")  # the period then comes from the review ids
    assert import_review_sheet(engine, renamed).period == "2026-W46"


def test_a_sheet_in_english_is_imported_whatever_the_language(engine, sheet, tmp_path):
    _, _, draw = sheet
    info = ticket_details(Source(engine, SourceMapping()), [r.ticket_id for r in draw.rows])
    csv_path, xlsx_path = write_review_sheet(draw, info, tmp_path / "en", WEEK.label, language="en")
    _fill_csv(csv_path, _review_everything)
    assert import_review_sheet(engine, csv_path, language="zh-CN").imported == 12
    book = load_workbook(xlsx_path)
    book["QA review"].cell(2, COLUMNS.index("attitude_score") + 1, 50)
    book.save(xlsx_path)
    with pytest.raises(InputError) as error:  # a reviewed row, half filled: named in Chinese
        import_review_sheet(engine, xlsx_path, language="zh-CN")
    assert str(error.value).splitlines() == [
        f"{xlsx_path}：3处错误，未导入任何记录：",
        "  第2行：复核人编号为空", "  第2行：问题解决得分为空", "  第2行：是否合规为空"]


# --- errors: each with its line, all of them listed; nothing imported ------------------------

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
    (_edit(1, reviewer_id=""), "line 3: Reviewer ID is empty"),
    (_edit(2, attitude_score="101"), "line 4: Attitude score 101 is not within 0..100"),
    (_edit(2, resolution_score="-0.5"), "line 4: Resolution score -0.5 is not within 0..100"),
    (_edit(3, attitude_score="good"), "line 5: Attitude score 'good' is not a number"),
    (_edit(3, attitude_score="nan"), "line 5: Attitude score 'nan' is not a number"),
    (_edit(4, resolution_score=""), "line 6: Resolution score is empty"),
    (_edit(4, compliant="maybe"), "line 6: Compliant 'maybe' is not a yes or no"),
    (_edit(6, reviewed_at="2026-13-01"), "line 8: Reviewed at '2026-13-01' is not a date and time"),
    (_edit(6, reviewed_at="2099-01-01 00:00"), "line 8: Reviewed at Jan 1, 2099, 00:00 is in the future"),
    (_edit(6, reviewed_at="2026-11-08 09:00"),
     "line 8: Reviewed at Nov 8, 2026, 09:00 is before ticket T006 was opened (Nov 9, 2026, 06:00)"),
    (_edit(8, 9, review_id="QA-dup"), "line 11: review QA-dup appears again (first on line 10)"),
    (_edit(9, ticket_id="T000", review_id="QA-x"), "line 11: ticket T000 is reviewed again (first on line"),
])
def test_a_bad_row_is_named_and_nothing_is_imported(engine, sheet, fill, message):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, fill)
    with pytest.raises(InputError) as error:
        _import(engine, csv_path)
    first, second = str(error.value).splitlines()
    assert first == f"{csv_path}: 1 error, nothing imported:"
    assert second.startswith(f"  {message}")
    assert _stored(engine) == []


def test_every_error_is_listed_with_its_line(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, lambda i, row: (_review_everything(i, row),
                                        row.update(ticket_id=f"X{i}") if i in (7, 8) else None,
                                        row.update(attitude_score="200") if i == 10 else None))
    with pytest.raises(InputError) as error:
        _import(engine, csv_path)
    assert str(error.value).splitlines() == [
        f"{csv_path}: 3 errors, nothing imported:",
        "  line 9: ticket X7 is not a known ticket",
        "  line 10: ticket X8 is not a known ticket",
        "  line 12: Attitude score 200 is not within 0..100",
    ]
    assert _stored(engine) == []


def test_errors_past_fifty_are_counted(engine, sheet):
    csv_path, _, _ = sheet
    # Every row fails four ways (reviewer, both scores, compliant): repeat the rows to pass fifty.
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        header, *lines = list(csv.reader(handle))
    with csv_path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows([header, *(lines * 2)])
    _fill_csv(csv_path, lambda i, row: row.update(reviewer_id="", attitude_score="x", resolution_score="y"))
    with pytest.raises(InputError) as error:
        _import(engine, csv_path)
    lines = str(error.value).splitlines()
    assert lines[0] == f"{csv_path}: 96 errors, nothing imported:"
    assert len(lines) == 1 + 50 + 1 and lines[-1] == "  and 46 more"
    assert lines[1:4] == ["  line 2: Reviewer ID is empty", "  line 2: Attitude score 'x' is not a number",
                          "  line 2: Resolution score 'y' is not a number"]


def test_errors_are_in_chinese_by_default(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, lambda i, row: (_review_everything(i, row),
                                        row.update(attitude_score="101") if i == 2 else None,
                                        row.update(ticket_id="T999") if i == 5 else None))
    with pytest.raises(InputError) as error:
        import_review_sheet(engine, csv_path)
    assert str(error.value).splitlines() == [
        f"{csv_path}：2处错误，未导入任何记录：",
        "  第4行：服务态度得分101不在0至100之间",
        "  第7行：工单T999不存在",
    ]


def test_a_missing_column_is_named(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, lambda i, row: (_review_everything(i, row), row.pop("compliant")))
    with pytest.raises(InputError, match=r"line 1: missing column Compliant$"):
        _import(engine, csv_path)


def test_xlsx_errors_name_the_row(engine, sheet):
    _, xlsx_path, _ = sheet
    book = load_workbook(xlsx_path)
    review = book["质检复核"]
    review.cell(4, COLUMNS.index("attitude_score") + 1, 80)
    review.cell(4, COLUMNS.index("reviewer_id") + 1, "R1")
    book.save(xlsx_path)
    with pytest.raises(InputError, match=r"\.xlsx: 2 errors, nothing imported:\n  row 4: Resolution score is empty\n"
                                         r"  row 4: Compliant is empty$"):
        _import(engine, xlsx_path)


def test_lines_are_counted_in_the_file_even_with_multi_line_notes(engine, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, _edit(0, notes="第一行\n第二行"))
    _fill_csv(csv_path, lambda i, row: row.update(compliant="?") if i == 1 else None)
    with pytest.raises(InputError, match=r"line 4: Compliant '\?' is not a yes or no"):
        _import(engine, csv_path)


def test_only_csv_and_xlsx_are_sheets(engine, sheet, tmp_path):
    contract.metadata.create_all(engine)
    other = tmp_path / "reviews.txt"
    other.write_text("review_id\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"reviews\.txt: not a QA review sheet"):
        _import(engine, other)


# --- the command -----------------------------------------------------------------------------

def _opsaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120)


def test_the_command_prints_one_sentence_and_lists_errors_in_the_language_asked(db_url, sheet):
    csv_path, _, _ = sheet
    _fill_csv(csv_path, lambda i, row: (_review_everything(i, row),
                                        row.update(reviewer_id="S404") if i in (1, 4) else None))
    refused = _opsaudit("qa", "import", str(csv_path), "--db", db_url, "--lang", "zh-CN")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"opsaudit: 错误：{csv_path}：2处错误，未导入任何记录：",
        "  第3行：复核人S404不是已登记的员工",
        "  第6行：复核人S404不是已登记的员工",
    ]
    _fill_csv(csv_path, _review_everything)
    imported = _opsaudit("qa", "import", str(csv_path), "--db", db_url, "--lang", "en")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == ("Imported 12 reviews from the QA review sheet for week 46 of 2026 "
                               "(0 rows not reviewed yet, 0 imported before).\n")
    again = _opsaudit("qa", "import", str(csv_path), "--db", db_url)
    assert again.stdout == "已导入2026年第46周质检复核表的0条复核记录（尚未复核而跳过0行，此前已导入12条）。\n"
    assert _opsaudit("qa", "import", str(csv_path), "--db", db_url, "--lang", "fr").returncode == 2

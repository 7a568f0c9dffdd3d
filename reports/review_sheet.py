"""The QA review sheet of a weekly sample: a CSV and an XLSX the reviewers fill, one row per ticket.

The CSV is UTF-8 with a BOM so that Excel shows Chinese; the draw's seed and parameters go in a
sidecar JSON beside it (the CSV stays a plain table for the import), and in the XLSX's second
sheet "about".
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from opsaudit.checks.sampling import SampleDraw, SampleRow, TicketInfo

PREFILLED = ("review_id", "ticket_id", "department_id", "agent_id", "channel", "kind", "opened_at")
TO_FILL = ("reviewer_id", "reviewed_at", "attitude_score", "resolution_score", "compliant", "notes")
COLUMNS = PREFILLED + TO_FILL

_WIDTHS = {"review_id": 20, "ticket_id": 16, "opened_at": 19, "reviewed_at": 19, "notes": 48}
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def review_id(period_label: str, draw_order: int) -> str:
    """The prefilled, deterministic id of a review: QA-2026-W46-0001."""
    return f"QA-{period_label}-{draw_order:04d}"


def sheet_stem(period_label: str) -> str:
    return f"qa-review-sheet-{period_label}"


def write_review_sheet(draw: SampleDraw, tickets_info: Mapping[str, TicketInfo], out_dir: Path,
                       period_label: str) -> tuple[Path, Path]:
    """Write the sheet as CSV and XLSX (plus the CSV's sidecar `.json`); return (csv, xlsx)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / sheet_stem(period_label)
    rows = [_prefilled(row, tickets_info[row.ticket_id], period_label)
            for row in sorted(draw.rows, key=lambda r: r.draw_order)]
    about = {"period": period_label, **draw.parameters()}
    csv_path, xlsx_path = stem.with_suffix(".csv"), stem.with_suffix(".xlsx")
    _write_csv(csv_path, rows)
    stem.with_suffix(".json").write_text(json.dumps(about, ensure_ascii=False, indent=2) + "\n",
                                         encoding="utf-8")
    _write_xlsx(xlsx_path, rows, about)
    return csv_path, xlsx_path


def _prefilled(row: SampleRow, info: TicketInfo, period_label: str) -> dict[str, Any]:
    return {
        "review_id": review_id(period_label, row.draw_order), "ticket_id": row.ticket_id,
        "department_id": row.department_id, "agent_id": row.agent_id or "", "channel": row.channel,
        "kind": info.kind, "opened_at": info.opened_at,
    }


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_text(row.get(column)) for column in COLUMNS])


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strftime(_TIME_FORMAT) if isinstance(value, datetime) else str(value)


def _write_xlsx(path: Path, rows: list[dict[str, Any]], about: dict[str, Any]) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "review"
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([row.get(column) for column in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for index, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = _WIDTHS.get(column, 14)
        if column in ("opened_at", "reviewed_at"):
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
    _validate(sheet, len(rows))
    _write_about(book.create_sheet("about"), about)
    book.save(path)


def _validate(sheet: Any, count: int) -> None:
    """Excel refuses scores outside 0..100 and offers TRUE/FALSE for compliant."""
    if count == 0:
        return
    last = count + 1

    def cells(column: str) -> str:
        letter = get_column_letter(COLUMNS.index(column) + 1)
        return f"{letter}2:{letter}{last}"

    scores = DataValidation(type="decimal", operator="between", formula1="0", formula2="100",
                            allow_blank=True, showErrorMessage=True,
                            error="A score from 0 to 100", errorTitle="Score")
    scores.add(cells("attitude_score"))
    scores.add(cells("resolution_score"))
    # A drop-down without an error alert: the import also accepts yes/no, 1/0 and 是/否.
    compliant = DataValidation(type="list", formula1='"TRUE,FALSE"', allow_blank=True, showErrorMessage=False)
    compliant.add(cells("compliant"))
    sheet.add_data_validation(scores)
    sheet.add_data_validation(compliant)


def _write_about(sheet: Any, about: dict[str, Any]) -> None:
    """The draw's seed and parameters, then each department's population and size."""
    bold = Font(bold=True)
    for key, value in about.items():
        if key != "departments":
            # As text: Excel keeps numbers as doubles, which would round a 63-bit seed.
            sheet.append([key, str(value) if key == "seed" else value])
    sheet.append([])
    header = ["department_id", "population", "planned_size", "size"]
    sheet.append(header)
    for cell in sheet[sheet.max_row]:
        cell.font = bold
    for department in about["departments"]:
        sheet.append([department[key] for key in header])
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["B"].width = 60

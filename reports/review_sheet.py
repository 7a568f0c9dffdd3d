"""The QA review sheet of a weekly sample: a CSV and an XLSX the reviewers fill, one row per ticket.

Headers, channel and ticket kind, and the "about" sheet are in the language asked (default
OPSAUDIT_LANGUAGE); `qa import` reads a sheet in either language. The CSV is UTF-8 with a BOM so
that Excel shows Chinese; the draw's seed and parameters go in a sidecar JSON beside it (the CSV
stays a plain table for the import), and in the XLSX's second sheet.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from opsaudit.checks.sampling import SampleDraw, SampleRow, TicketInfo
from opsaudit.i18n import LANGUAGES, format_value, resolve_language, text

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


def period_of(path: Path) -> str | None:
    """The period label in a review sheet's file name (qa-review-sheet-2026-W46.csv), if it has one."""
    label = path.stem.removeprefix(sheet_stem(""))
    return label if label != path.stem and label else None


def headers(language: str) -> list[str]:
    """The column headers of the sheet in `language`."""
    return [text(f"review_sheet.column.{column}", language) for column in COLUMNS]


def column_for_header(header: str) -> str | None:
    """The column a header names, in either language or as the column's own name."""
    return _header_columns().get(header.strip().casefold())


def review_sheet_titles() -> set[str]:
    """The title of the sheet to fill, in every language."""
    return {text("review_sheet.sheet.review", language) for language in LANGUAGES}


@cache
def _header_columns() -> dict[str, str]:
    """Every header the import understands, case-folded, to its column (built once)."""
    found = {column.casefold(): column for column in COLUMNS}
    for language in LANGUAGES:
        found.update({header.casefold(): column for header, column in zip(headers(language), COLUMNS, strict=True)})
    return found


def write_review_sheet(draw: SampleDraw, tickets_info: Mapping[str, TicketInfo], out_dir: Path,
                       period_label: str, *, language: str | None = None) -> tuple[Path, Path]:
    """Write the sheet as CSV and XLSX (plus the CSV's sidecar `.json`); return (csv, xlsx).

    `language` defaults to OPSAUDIT_LANGUAGE.
    """
    language = resolve_language(language)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / sheet_stem(period_label)
    rows = [_prefilled(row, tickets_info[row.ticket_id], period_label, language)
            for row in sorted(draw.rows, key=lambda r: r.draw_order)]
    about = {"period": period_label, **draw.parameters()}
    csv_path, xlsx_path = stem.with_suffix(".csv"), stem.with_suffix(".xlsx")
    _write_csv(csv_path, rows, language)
    stem.with_suffix(".json").write_text(json.dumps(about, ensure_ascii=False, indent=2) + "\n",
                                         encoding="utf-8")
    _write_xlsx(xlsx_path, rows, about, language)
    return csv_path, xlsx_path


def _prefilled(row: SampleRow, info: TicketInfo, period_label: str, language: str) -> dict[str, Any]:
    return {
        "review_id": review_id(period_label, row.draw_order), "ticket_id": row.ticket_id,
        "department_id": row.department_id, "agent_id": row.agent_id or "",
        "channel": format_value(row.channel, "enum.channel", language),
        "kind": format_value(info.kind, "enum.ticket_kind", language), "opened_at": info.opened_at,
    }


def _write_csv(path: Path, rows: list[dict[str, Any]], language: str) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers(language))
        for row in rows:
            writer.writerow([_text(row.get(column)) for column in COLUMNS])


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strftime(_TIME_FORMAT) if isinstance(value, datetime) else str(value)


def _write_xlsx(path: Path, rows: list[dict[str, Any]], about: dict[str, Any], language: str) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = text("review_sheet.sheet.review", language)
    sheet.append(headers(language))
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
    _validate(sheet, len(rows), language)
    _write_about(book.create_sheet(text("review_sheet.sheet.about", language)), about, language)
    book.save(path)


def _validate(sheet: Any, count: int, language: str) -> None:
    """Excel refuses scores outside 0..100 and offers yes and no for compliant."""
    if count == 0:
        return
    last = count + 1

    def cells(column: str) -> str:
        letter = get_column_letter(COLUMNS.index(column) + 1)
        return f"{letter}2:{letter}{last}"

    scores = DataValidation(type="decimal", operator="between", formula1="0", formula2="100",
                            allow_blank=True, showErrorMessage=True,
                            error=text("review_sheet.score_error", language),
                            errorTitle=text("review_sheet.score_error_title", language))
    scores.add(cells("attitude_score"))
    scores.add(cells("resolution_score"))
    # A drop-down without an error alert: the import accepts yes/no, true/false, 1/0 and 是/否.
    choices = text("review_sheet.compliant_choices", language)
    compliant = DataValidation(type="list", formula1=f'"{choices}"', allow_blank=True, showErrorMessage=False)
    compliant.add(cells("compliant"))
    sheet.add_data_validation(scores)
    sheet.add_data_validation(compliant)


def _write_about(sheet: Any, about: dict[str, Any], language: str) -> None:
    """How to fill the sheet; the draw's seed and parameters; each department's population and size."""
    bold = Font(bold=True)
    sheet.append([text("review_sheet.about.title", language, period=about["period"])])
    sheet["A1"].font = bold
    sheet.append([text("review_sheet.about.instructions", language)])
    sheet.append([])
    for key, value in about.items():
        if key != "departments":
            sheet.append([text(f"review_sheet.about.{key}", language), _about_value(key, value, language)])
    sheet.append([])
    header = ["department_id", "population", "planned_size", "size"]
    sheet.append([text(f"review_sheet.about.{key}", language) for key in header])
    for cell in sheet[sheet.max_row]:
        cell.font = bold
    for department in about["departments"]:
        sheet.append([department[key] for key in header])
    sheet.column_dimensions["A"].width = 28
    sheet.column_dimensions["B"].width = 60


def _about_value(key: str, value: Any, language: str) -> Any:
    if key == "seed":
        return str(value)  # as text: Excel keeps numbers as doubles, which would round a 63-bit seed
    if key == "period":
        return format_value(value, "period", language)
    if key == "population_rule":
        return text("review_sheet.about.population_rule_text", language)
    if key in ("confidence", "tolerable_rate", "expected_rate"):
        return format_value(value, "percent", language)
    return value

"""The findings list as an Excel workbook for managers: localized headers, severity in colour,
dates as dates, a frozen header row and filters on every column."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from opsaudit.i18n import entity_reference, format_value, text
from opsaudit.i18n.findings import labelled

# (header key in the catalogue, how to read the value from a finding, column width)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("field.id", "id", 38), ("field.severity", "severity_label", 10), ("field.status", "status_label", 14),
    ("field.title", "title", 28), ("field.description", "description", 70), ("field.period", "period", 12),
    ("field.audit", "audit", 22), ("field.rule", "rule_id", 28), ("field.entity", "entity", 24),
    ("field.department", "department_name", 18), ("field.owner", "owner_name", 16),
    ("field.found_at", "found_at", 17), ("field.plan_due_at", "plan_due_at", 13),
    ("field.due_at", "due_at", 12), ("field.observed", "observed", 10), ("field.target", "target", 10),
    ("field.population", "population", 10), ("field.failures", "failures", 10),
    ("field.recurring", "recurring", 8), ("field.samples", "sample_ids", 40), ("field.query", "query", 60),
)
SEVERITY_FILL = {"major": "F8D7DA", "important": "FFF3CD", "general": "FFFFFF"}
DATES = {"plan_due_at", "due_at"}


def write_findings_workbook(path: Path, findings: Sequence[dict[str, Any]], language: str) -> Path:
    """Write `findings` (as `opsaudit findings list` reads them) to `path`; return it."""
    book = Workbook()
    sheet = book.active
    sheet.title = text("cli.findings.sheet", language)[:31]
    sheet.append([text(key, language) for key, _, _ in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="1F4E79")
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    for finding in findings:
        sheet.append(row_values(finding, language))
        fill = PatternFill("solid", fgColor=SEVERITY_FILL[finding["severity"]])
        for cell in sheet[sheet.max_row][:4]:
            cell.fill = fill
        for cell in sheet[sheet.max_row]:
            cell.alignment = Alignment(vertical="top", wrap_text=cell.column in (4, 5))
    for index, (_, name, width) in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = width
        if name in DATES | {"found_at"}:
            for cell in sheet[letter][1:]:
                cell.number_format = "yyyy-mm-dd hh:mm" if name == "found_at" else "yyyy-mm-dd"
    sheet.freeze_panes = "B2"
    sheet.auto_filter.ref = sheet.dimensions
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def row_values(finding: dict[str, Any], language: str) -> list[Any]:
    """One finding's cells, in the order of COLUMNS (the workbook's row, and the report's CSV line)."""
    return [_value(finding, name, language) for _, name, _ in COLUMNS]


def _value(finding: dict[str, Any], name: str, language: str) -> Any:
    if name == "entity":
        return entity_reference(finding["entity_type"], finding["entity_id"], language)
    if name == "audit":
        return format_value(finding["audit"], "enum.audit", language)
    if name == "period":
        return format_value(finding["period"], "period", language)
    if name == "recurring":
        return format_value(finding["recurring"], "enum.yes_no", language)
    if name == "sample_ids":
        return " ".join(finding["sample_ids"])
    if name in ("department_name", "owner_name"):
        identifier = finding["department_id" if name == "department_name" else "owner_id"]
        return labelled(finding[name], identifier, language)
    value = finding.get(name)
    if name in DATES | {"found_at"} and value:
        # Excel keeps no time zone: the local time of OPSAUDIT_TIMEZONE, as the rest of the report.
        return datetime.fromisoformat(value).replace(tzinfo=None)
    return value

"""Findings as the pages list them: texts in the reader's language, names from the directory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from opsaudit.store.finding_views import finding_text
from opsaudit.store.lifecycle import NOT_CLOSED
from opsaudit.store.times import from_db
from opsaudit.web.context import Visitor


def finding_rows(rows: Sequence[RowMapping], who: Visitor, now: datetime,
                 actions: Callable[[RowMapping], list[str]] | None = None) -> list[dict[str, Any]]:
    """What a list row shows; no query (titles from the facts, names from the directory)."""
    directory, language = who.directory, who.language
    shown = []
    for row in rows:
        due = from_db(row["due_at"], now.tzinfo)
        shown.append({
            "id": row["id"], "title": finding_text(row, language)[0], "severity": row["severity"],
            "status": row["status"], "period": row["period"], "due": due,
            "overdue": due < now and row["status"] in NOT_CLOSED,
            "department": directory.department_label(row["department_id"], language),
            "owner": directory.person_label(row["owner_id"], language) if row["owner_id"] else None,
            "actions": actions(row) if actions else []})
    return shown

"""Reading findings back: filters, the interface's JSON shape, and a finding's history."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.errors import InputError
from opsaudit.store.schema import finding_events, findings
from opsaudit.store.times import from_db

# interface.md, "JSON of a finding": these keys, in this order.
FINDING_KEYS = (
    "id", "audit", "audit_run_id", "area", "rule_id", "period", "entity_type", "entity_id", "department_id",
    "severity", "status", "title", "description", "observed", "target", "population", "evidence",
    "found_at", "due_at", "owner_id", "recurring",
)
SEVERITY_ORDER = {"major": 0, "important": 1, "general": 2}


def finding_json(row: RowMapping, zone: tzinfo, language: str = "zh-CN") -> dict[str, Any]:
    """A finding exactly as interface.md shows it; instants in OPSAUDIT_TIMEZONE, title and
    description rendered from its facts in `language`."""
    values = dict(row)
    values["title"], values["description"] = finding_text(row, language)
    for name in ("found_at", "due_at"):
        moment = from_db(values[name], zone)
        values[name] = moment.isoformat(timespec="seconds") if moment else None
    values["recurring"] = bool(values["recurring"])
    return {key: values[key] for key in FINDING_KEYS}


def finding_text(row: RowMapping, language: str) -> tuple[str, str]:
    """The finding's title and description in `language`. A finding stored before facts were kept
    (store revision 0001) has only the texts it was stored with."""
    from opsaudit.i18n import render_finding

    if row["facts"] is None:
        return row["title"] or row["rule_id"], row["description"] or ""
    text = render_finding(row["rule_id"], row["entity_type"], {**row["facts"], "entity_id": row["entity_id"]},
                          language)
    return text.title, text.description


def list_findings(conn: Connection, *, status: str | None = None, severity: str | None = None,
                  area: str | None = None, audit_run: str | None = None) -> list[RowMapping]:
    query = sa.select(findings)
    for column, value in (("status", status), ("severity", severity), ("area", area),
                          ("audit_run_id", audit_run)):
        if value:
            query = query.where(findings.c[column] == value)
    rows = conn.execute(query).mappings().all()
    return sorted(rows, key=lambda r: (SEVERITY_ORDER.get(r["severity"], 9), r["period"], r["rule_id"],
                                       r["entity_id"]))


def get_finding(conn: Connection, finding_id: str) -> RowMapping:
    """One finding by id or by an unambiguous prefix of it."""
    rows = conn.execute(sa.select(findings).where(findings.c.id.like(f"{finding_id}%")).limit(2)).mappings().all()
    if not rows:
        raise InputError(f"finding {finding_id}: no such finding")
    if len(rows) > 1:
        raise InputError(f"finding {finding_id}: the prefix matches several findings; give more of the id")
    return rows[0]


def events_of(conn: Connection, finding_id: str, zone: tzinfo) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(finding_events).where(finding_events.c.finding_id == finding_id)
                        .order_by(finding_events.c.id)).mappings().all()
    return [{**dict(row), "at": from_db(row["at"], zone).isoformat(timespec="seconds")} for row in rows]

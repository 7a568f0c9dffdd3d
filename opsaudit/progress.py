"""The weekly rectification progress report (seed 000 §5.4: the audit team reports progress to the
operations manager regularly; §6.2: a major problem's progress goes to senior management).

The figures are counted by the database; the report names the longest overdue findings, those
falling due, and every major finding not closed with its special meeting and task force.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.i18n.render import Message
from opsaudit.reports import outbox
from opsaudit.reports.recipients import Directory, Role, resolve
from opsaudit.store.lifecycle import NOT_CLOSED, WITH_OWNER, major_handling_of
from opsaudit.store.schema import finding_notices, findings
from opsaudit.store.schema import outbox as outbox_table
from opsaudit.store.times import to_db
from opsaudit.tracking import Level

LIST_LIMIT = 20
SEVERITIES = ("major", "important", "general")


@dataclass(frozen=True)
class Progress:
    """Rectification progress at `now`: counts by severity, and the findings worth naming."""

    now: datetime
    week: str
    counts: dict[str, dict[str, int]]  # open, due_soon, overdue, escalated, closed -> severity -> n
    overdue: list[RowMapping]  # most overdue first, at most LIST_LIMIT
    due_soon: list[RowMapping]  # soonest first, at most LIST_LIMIT
    majors: list[RowMapping]  # every major finding not closed
    escalation: dict[str, str]  # finding id -> highest level told for its deadline
    handling: dict[str, Any]  # finding id -> MajorHandling


def progress(conn: Connection, now: datetime, zone: tzinfo) -> Progress:
    """The figures of the progress report, counted by the database."""
    soon, week_ago = to_db(now + timedelta(days=7)), to_db(now - timedelta(days=7))
    moment = to_db(now)
    with_owner = findings.c.status.in_(WITH_OWNER)
    escalated = sa.exists().where(finding_notices.c.finding_id == findings.c.id,
                                  finding_notices.c.deadline == findings.c.due_at,
                                  finding_notices.c.step.like("escalate:%"))
    conditions = {
        "open": findings.c.status.in_(NOT_CLOSED),
        "due_soon": sa.and_(with_owner, findings.c.due_at >= moment, findings.c.due_at < soon),
        "overdue": sa.and_(with_owner, findings.c.due_at < moment),
        "escalated": sa.and_(findings.c.status.in_(NOT_CLOSED), escalated),
        "closed": sa.and_(findings.c.status == "closed", findings.c.closed_at >= week_ago),
    }
    counts = {name: dict.fromkeys(SEVERITIES, 0) for name in conditions}
    for name, condition in conditions.items():
        query = sa.select(findings.c.severity, sa.func.count()).where(condition).group_by(findings.c.severity)
        for severity, number in conn.execute(query):
            counts[name][severity] = number
    overdue = _rows(conn, conditions["overdue"], findings.c.due_at)
    due_soon = _rows(conn, conditions["due_soon"], findings.c.due_at)
    majors = list(conn.execute(sa.select(findings).where(findings.c.severity == "major", conditions["open"])
                               .order_by(findings.c.due_at, findings.c.id)).mappings())
    named = [row["id"] for row in (*overdue, *majors)]
    iso = now.astimezone(zone).isocalendar()
    return Progress(now, f"{iso.year:04d}-W{iso.week:02d}", counts, overdue, due_soon, majors,
                    _highest_levels(conn, named), major_handling_of(conn, [row["id"] for row in majors]))


def _rows(conn: Connection, condition: sa.ColumnElement[bool], order: sa.ColumnElement[Any]) -> list[RowMapping]:
    return list(conn.execute(sa.select(findings).where(condition).order_by(order, findings.c.id)
                             .limit(LIST_LIMIT)).mappings())


def _highest_levels(conn: Connection, finding_ids: list[str]) -> dict[str, str]:
    if not finding_ids:
        return {}
    rows = conn.execute(sa.select(finding_notices.c.finding_id, finding_notices.c.step).where(
        finding_notices.c.finding_id.in_(finding_ids), finding_notices.c.step.like("escalate:%"),
        finding_notices.c.deadline == sa.select(findings.c.due_at).where(
            findings.c.id == finding_notices.c.finding_id).scalar_subquery()))
    order = list(Level)
    highest: dict[str, str] = defaultdict(str)
    for finding_id, step in rows:
        level = Level(step.removeprefix("escalate:"))
        if not highest[finding_id] or order.index(level) > order.index(Level(highest[finding_id])):
            highest[finding_id] = level.value
    return dict(highest)


class ProgressSent(NamedTuple):
    """What one call did: the week reported (None when nothing was enqueued), the messages (one
    per language), and who should have received it but could not."""

    week: str | None
    messages: int
    notes: tuple[Message, ...] = ()


def send_progress_report(conn: Connection, directory: Directory, weekday: int, *, now: datetime, zone: tzinfo,
                         language: str) -> ProgressSent:
    """On or after the ISO `weekday`, the week's progress report to the operations manager,
    and to the executives while a major finding is open; once a week."""
    from opsaudit.reports import rectification as mails

    local = now.astimezone(zone)
    if local.isoweekday() < weekday:
        return ProgressSent(None, 0)
    iso = local.isocalendar()
    prefix = f"rectification:progress:{iso.year:04d}-W{iso.week:02d}:"
    sent = conn.execute(sa.select(sa.func.count()).select_from(outbox_table)
                        .where(outbox_table.c.dedupe_key.like(f"{prefix}%"))).scalar_one()
    if sent:
        return ProgressSent(None, 0)
    report = progress(conn, now, zone)
    roles = [Role.OPERATIONS_MANAGER] + ([Role.EXECUTIVE] if report.majors else [])
    recipients = resolve(directory, roles=roles)
    groups = recipients.by_language(language)
    writer = mails.Writer(directory, zone, report.handling)
    for mail_language, addresses in groups.items():
        outbox.enqueue(conn, writer.progress(report, addresses, mail_language, f"{prefix}{mail_language}"), now=now)
    return ProgressSent(report.week if groups else None, len(groups), recipients.notes)

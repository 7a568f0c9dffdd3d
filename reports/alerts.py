"""The immediate alert on a major problem (seed 000 §6.2): the operations manager, the deputies,
the head of the responsible department and the executives are told at once, without waiting for
the report's review, what the problem is, whose it is and by when it must be rectified.

One message per major finding and language, keyed by the finding: a rerun of the period (which
updates the same finding) never alerts twice, while a finding that became major on a rerun is
alerted then. The findings not yet alerted are read in one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.config.models import Deadlines, Recipients
from opsaudit.i18n.render import Message
from opsaudit.reports import outbox
from opsaudit.reports.outbox import OutgoingMail
from opsaudit.reports.recipients import Directory, RecipientList, alert_recipients
from opsaudit.reports.rectification import Body
from opsaudit.settings import Settings
from opsaudit.store.findings import ENDED
from opsaudit.store.schema import audit_runs, findings
from opsaudit.store.schema import outbox as outbox_table
from opsaudit.store.times import from_db
from opsaudit.web.links import finding_url

KEY = "alert:major:"


@dataclass(frozen=True)
class AlertSummary:
    """What one alerting did: the findings alerted, the messages enqueued, who could not be told."""

    findings: tuple[str, ...] = ()
    messages: tuple[int, ...] = ()
    notes: tuple[Message, ...] = ()

    def as_json(self, language: str) -> dict[str, Any]:
        return {"alerted": list(self.findings), "messages": list(self.messages),
                "unreachable": [note.text(language) for note in self.notes]}


def unalerted_majors(conn: Connection, run_id: str) -> list[RowMapping]:
    """The run's major findings not closed or withdrawn and never alerted, with their run's audit and period."""
    alerted = sa.exists().where(outbox_table.c.dedupe_key.startswith(sa.literal(KEY) + findings.c.id + ":"))
    return list(conn.execute(
        sa.select(findings, audit_runs.c.period.label("run_period"))
        .join(audit_runs, audit_runs.c.id == findings.c.audit_run_id)
        .where(findings.c.audit_run_id == run_id, findings.c.severity == "major",
               findings.c.status.not_in(ENDED), ~alerted)
        .order_by(sa.nulls_first(findings.c.department_id), findings.c.rule_id, findings.c.entity_id)).mappings())


def alert_major_findings(conn: Connection, directory: Directory, config: Recipients, run_id: str, *,
                         deadlines: Deadlines, language: str, zone: tzinfo, now: datetime,
                         settings: Settings) -> AlertSummary:
    """Enqueue one alert per major finding of the run not alerted before, in each recipient's language,
    linking to the finding's page on `settings`' OPSAUDIT_WEB_URL."""
    rows = unalerted_majors(conn, run_id)
    audiences: dict[str | None, RecipientList] = {}
    ids: list[int] = []
    notes: list[Message] = []
    for row in rows:
        department = row["department_id"]
        if department not in audiences:
            audiences[department] = alert_recipients(directory, config, department)
            notes += audiences[department].notes
        for mail_language, addresses in audiences[department].by_language(language).items():
            mail = compose(row, directory, deadlines, zone, mail_language, addresses, finding_url(settings, row["id"]))
            ids.append(outbox.enqueue(conn, mail, now=now))
    return AlertSummary(tuple(row["id"] for row in rows), tuple(ids), tuple(dict.fromkeys(notes)))


def compose(row: RowMapping, directory: Directory, deadlines: Deadlines, zone: tzinfo, language: str,
            addresses: tuple[outbox.Address, ...], url: str) -> OutgoingMail:
    """The alert: the problem in words, the department, the owner, the deadlines, what must be done,
    and the finding's page (`url`), where those told act on it."""
    from opsaudit.i18n import entity_label, format_value, text
    from opsaudit.store.finding_views import finding_text

    problem, description = finding_text(row, language)
    title = text("label.named", language, name=problem, id=entity_label(row, language))
    owner = directory.people.get(row["owner_id"] or "")
    fields = [
        ("field.title", title),
        ("field.description", description),
        ("field.department", directory.department_label(row["department_id"], language)),
        ("field.owner", owner.label(language) if owner else row["owner_id"] or text("alert.unassigned", language)),
        ("field.plan_due_at", format_value(from_db(row["plan_due_at"], zone), "date", language)),
        ("field.due_at", format_value(from_db(row["due_at"], zone), "date", language)),
        ("field.handling", text("handling.major", language, deadline=deadlines.major,
                                plan_deadline=deadlines.major_plan)),
        ("alert.finding", row["id"]),
    ]
    body = Body(language).paragraph(text("alert.intro", language, audit=row["audit"], period=row["run_period"]))
    for key, value in fields:
        body.paragraph(text("rectification.mail.field", language, name=text(key, language), value=value))
    body.link(url).paragraph(text("rectification.mail.footer", language))
    return OutgoingMail(dedupe_key=f"{KEY}{row['id']}:{language}", kind="alert", recipients=addresses,
                        subject=text("alert.subject", language, title=title),
                        body_text=body.text(), body_html=body.html())

"""The monthly circulation (通报, seed 000 §6.3): the audit team tells all operations staff how the
month's audits went and how rectification progresses.

A month's audits are the runs whose period ends in it (as the monthly scores count them), the
latest run of each audit and period; the month's manual findings are those of its `manual` run.
Findings the audit team lead withdrew are not counted. The root causes and prevention stated with
the plans submitted in the month are listed (seed 000 §6.3), the latest plan of each finding. The
figures are counted by the database; the circulation is written once per language as an HTML file
under OPSAUDIT_OUTPUT_DIR/circulation/<YYYY-MM>/ and mailed with it, keyed by the month: a rerun
never circulates a month twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.config.models import Recipients
from opsaudit.i18n.render import Message
from opsaudit.periods import Period
from opsaudit.progress import SEVERITIES, progress
from opsaudit.reports import outbox
from opsaudit.reports.outbox import Address, OutgoingMail
from opsaudit.reports.recipients import Directory, circulation_recipients
from opsaudit.reports.rectification import Body
from opsaudit.store.findings import COUNTED
from opsaudit.store.schema import audit_runs, finding_events, findings
from opsaudit.store.schema import outbox as outbox_table
from opsaudit.store.times import to_db

KEY = "circulation:"


@dataclass(frozen=True)
class MonthFigures:
    """What the circulation says: the month's audits, its problems by department and severity, and
    rectification progress at the time it is written."""

    month: Period
    now: datetime
    runs: list[dict[str, Any]]  # audit, kind, period, problems
    problems: dict[str | None, dict[str, int]]  # department -> severity -> count
    progress: dict[str, dict[str, int]]  # open, due_soon, overdue, escalated, closed -> severity -> count
    causes: list[RowMapping]  # the findings whose plan was submitted in the month, with plan_cause, plan_prevention


@dataclass(frozen=True)
class Circulation:
    """What circulating a month did: the files written, the messages enqueued, to whom; `again`
    when the month was circulated before (nothing is written or sent then)."""

    month: str
    again: bool = False
    files: tuple[Path, ...] = ()
    messages: tuple[int, ...] = ()
    recipients: tuple[Address, ...] = ()
    notes: tuple[Message, ...] = ()

    def as_json(self, language: str) -> dict[str, Any]:
        return {"month": self.month, "again": self.again, "files": [str(path) for path in self.files],
                "messages": list(self.messages), "recipients": [address.email for address in self.recipients],
                "unreachable": [note.text(language) for note in self.notes]}


def figures(conn: Connection, month: Period, *, now: datetime, zone: tzinfo) -> MonthFigures:
    """The month's figures, in three queries and the progress report's."""
    ends_in_month = sa.and_(audit_runs.c.period_end > month.start, audit_runs.c.period_end <= month.end,
                            audit_runs.c.status == "succeeded")
    rows = conn.execute(sa.select(audit_runs.c.id, audit_runs.c.audit, audit_runs.c.kind, audit_runs.c.period)
                        .where(ends_in_month).order_by(audit_runs.c.started_at)).all()
    latest = {(row.audit, row.period): row for row in rows}  # a rerun of a period replaces the run before
    run_ids = [row.id for row in latest.values()]
    per_run = dict(conn.execute(sa.select(findings.c.audit_run_id, sa.func.count())
                                .where(findings.c.audit_run_id.in_(run_ids), COUNTED)
                                .group_by(findings.c.audit_run_id)).all())
    problems: dict[str | None, dict[str, int]] = {}
    for department, severity, number in conn.execute(
            sa.select(findings.c.department_id, findings.c.severity, sa.func.count())
            .where(findings.c.audit_run_id.in_(run_ids), COUNTED)
            .group_by(findings.c.department_id, findings.c.severity)
            .order_by(sa.nulls_first(findings.c.department_id))):
        problems.setdefault(department, dict.fromkeys(SEVERITIES, 0))[severity] = number
    runs = [{"audit": row.audit, "kind": row.kind, "period": row.period, "problems": per_run.get(row.id, 0)}
            for row in sorted(latest.values(), key=lambda row: (row.audit, row.period))]
    return MonthFigures(month, now, runs, problems, progress(conn, now, zone).counts, plan_causes(conn, month, zone))


def plan_causes(conn: Connection, month: Period, zone: tzinfo) -> list[RowMapping]:
    """The findings (not withdrawn) whose rectification plan was submitted in the month with a root
    cause, each with the cause and prevention of its latest such plan, in the order submitted."""
    start, end = month.start.replace(tzinfo=zone), month.end.replace(tzinfo=zone)
    rows = conn.execute(
        sa.select(findings, finding_events.c.data.label("plan_data"))
        .join(finding_events, finding_events.c.finding_id == findings.c.id)
        .where(finding_events.c.action == "submit-plan", finding_events.c.at >= to_db(start),
               finding_events.c.at < to_db(end), COUNTED)
        .order_by(finding_events.c.at, finding_events.c.id)).mappings()
    latest: dict[str, RowMapping] = {}
    for row in rows:
        if (row["plan_data"] or {}).get("cause"):
            latest.pop(row["id"], None)  # a plan submitted again moves the finding to its latest place
            latest[row["id"]] = row
    return list(latest.values())

def body(data: MonthFigures, language: str, zone: tzinfo, directory: Directory) -> Body:
    """The circulation as blocks, every word from the catalogue; departments by name and id."""
    from opsaudit.i18n import format_value, text

    def counts(by_severity: dict[str, int]) -> list[str]:
        return [*(format_value(by_severity[s], "count", language) for s in SEVERITIES),
                format_value(sum(by_severity.values()), "count", language)]

    severities = [*(text(f"enum.severity.{s}", language) for s in SEVERITIES),
                  text("rectification.progress.total", language)]
    written = Body(language).heading(text("circulation.title", language, month=data.month.label))
    written.paragraph(text("circulation.intro", language, month=data.month.label))
    written.heading(text("circulation.runs", language))
    if data.runs:
        columns = ("audit", "kind", "period", "problems")
        written.table([text(f"circulation.column.{name}", language) for name in columns],
                      [[text(f"enum.audit.{run['audit']}", language), text(f"enum.audit_kind.{run['kind']}", language),
                        format_value(run["period"], "period", language),
                        format_value(run["problems"], "count", language)] for run in data.runs], compact=True)
    else:
        written.paragraph(text("circulation.no_runs", language))
    written.heading(text("circulation.by_department", language))
    if data.problems:
        total = {s: sum(row[s] for row in data.problems.values()) for s in SEVERITIES}
        rows = [[directory.department_label(department, language), *counts(by_severity)]
                for department, by_severity in data.problems.items()]
        rows.append([text("rectification.progress.total", language), *counts(total)])
        written.table([text("circulation.column.department", language), *severities], rows, compact=True)
    else:
        written.paragraph(text("review.mail.no_problems", language))
    _causes(written, data.causes, language, directory)
    written.heading(text("circulation.progress", language, now=data.now.astimezone(zone)))
    written.table(["", *severities], [[text(f"rectification.progress.row.{name}", language), *counts(by_severity)]
                                      for name, by_severity in data.progress.items()], compact=True)
    return written


def _causes(written: Body, causes: list[RowMapping], language: str, directory: Directory) -> None:
    """The month's plans: each finding, its department, the root cause and the prevention stated."""
    from opsaudit.i18n import entity_label, text
    from opsaudit.store.finding_views import finding_text

    written.heading(text("judgment.circulation.causes", language))
    if not causes:
        written.paragraph(text("judgment.circulation.no_causes", language))
        return
    columns = ("finding", "department", "cause", "prevention")
    written.table([text(f"judgment.circulation.column.{name}", language) for name in columns],
                  [[text("label.named", language, name=finding_text(row, language)[0],
                         id=f"{entity_label(row, language)} · {row['id'][:8]}"),
                    directory.department_label(row["department_id"], language),
                    row["plan_data"]["cause"], row["plan_data"].get("prevention") or ""] for row in causes])


def circulate(conn: Connection, directory: Directory, config: Recipients, month: Period, *, output_dir: Path,
              language: str, zone: tzinfo, now: datetime) -> Circulation:
    """Write and mail the month's circulation, once: to all operations staff and recipients.yaml
    `circulation`, each in their language (OPSAUDIT_LANGUAGE when unset)."""
    from opsaudit.i18n import text

    prefix = f"{KEY}{month.label}:"
    if conn.execute(sa.select(outbox_table.c.id).where(outbox_table.c.dedupe_key.startswith(prefix)).limit(1)).first():
        return Circulation(month.label, again=True)
    found = circulation_recipients(directory, config)
    groups = found.by_language(language)
    data = figures(conn, month, now=now, zone=zone)
    folder = output_dir / "circulation" / month.label
    folder.mkdir(parents=True, exist_ok=True)
    files, ids = [], []
    for mail_language in sorted(set(groups) | {language}):
        written = body(data, mail_language, zone, directory)
        path = folder / f"circulation.{mail_language}.html"
        path.write_text(written.html(), encoding="utf-8")
        files.append(path)
        if mail_language not in groups:
            continue
        written.paragraph(text("rectification.mail.footer", mail_language))
        mail = OutgoingMail(dedupe_key=f"{prefix}{mail_language}", kind="report", recipients=groups[mail_language],
                            subject=text("circulation.subject", mail_language, month=month.label),
                            body_text=written.text(), body_html=written.html(), attachments=(path,))
        ids.append(outbox.enqueue(conn, mail, now=now))
    return Circulation(month.label, False, tuple(files), tuple(ids), found.addresses, found.notes)

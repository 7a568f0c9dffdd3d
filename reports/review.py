"""The review gate of seed 000 §5.3: a finished audit's report goes to the audit lead as a draft;
approval sends it to the operations manager and the other recipients; rejection returns it to the
auditors with the note. With OPSAUDIT_REPORT_REVIEW=off a report goes out at once.

`oa_reports` holds each report file (one row per run, language and format) with its latest status
and review; `oa_report_events` holds every step. Mail goes through the outbox, keyed by the run,
the language and a digest of the files submitted, so a repeated step never mails twice while a
new submission is mailed anew. Every refusal is a ReviewError: one line in the reader's language.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.config.models import Recipients
from opsaudit.db import unsupported_store
from opsaudit.errors import OpsauditError
from opsaudit.i18n.render import Message
from opsaudit.reports import outbox
from opsaudit.reports.outbox import Address, Kind, MailSummary, OutgoingMail
from opsaudit.reports.recipients import (
    Directory,
    Person,
    RecipientList,
    draft_recipients,
    reason,
    report_recipients,
)
from opsaudit.reports.rectification import MAIL_ROWS, Body
from opsaudit.settings import Settings
from opsaudit.store.findings import COUNTED, of_run
from opsaudit.store.runs import OWN_FOLDER_KINDS, _jsonable
from opsaudit.store.schema import audit_runs, findings, report_events, reports
from opsaudit.store.times import from_db, to_db
from opsaudit.web.links import report_url

DRAFT, APPROVED, REJECTED, SENT = "draft", "approved", "rejected", "sent"
# Report files by suffix; the report mail carries these formats, in this order (the JSON of the
# raw results goes to the audit lead with the draft, and stays beside the report for machines).
FORMATS = {".html": "html", ".pdf": "pdf", ".csv": "csv", ".json": "json"}
MAILED_FORMATS = ("pdf", "html", "csv")
SEVERITIES = ("major", "important", "general")
REPORT_KEY = "review:report:"
_EPOCH = datetime.min.replace(tzinfo=UTC)


class ReviewError(OpsauditError):
    """A review step that cannot be taken: no such report, not the audit lead, already reviewed."""


@dataclass(frozen=True)
class Gate:
    """What every review step needs: who is who, the configured recipients and the settings."""

    directory: Directory
    recipients: Recipients
    settings: Settings


@dataclass(frozen=True)
class Outcome:
    """What a review step did: the report's new status, the messages it enqueued, who got them,
    and who should have but could not."""

    status: str
    messages: tuple[int, ...] = ()
    recipients: tuple[Address, ...] = ()
    notes: tuple[Message, ...] = ()


@dataclass(frozen=True)
class RunReport:
    """The run a report belongs to."""

    id: str
    audit: str
    period: str
    kind: str = "periodic"
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReviewStamp:
    """Where a report stands in the review, as the report itself states it: a draft, approved by
    the audit lead (`reviewer`) or released without review (no reviewer), or returned."""

    status: str
    reviewer: str | None = None
    at: datetime | None = None
    note: str | None = None


def stamp_of(conn: Connection, settings: Settings, run_id: str, language: str) -> ReviewStamp:
    """The review of the run's report in `language` as the store has it, or of the run's report in
    another language when none in this one was submitted (a copy rendered after the review); a
    report not yet submitted is a draft, or released at once when OPSAUDIT_REPORT_REVIEW is off."""
    every = conn.execute(sa.select(reports.c.language, reports.c.status, reports.c.reviewed_by,
                                   reports.c.reviewed_at, reports.c.review_note)
                         .where(reports.c.audit_run_id == run_id)).all()
    rows = [row for row in every if row.language == language] or every
    if not rows:
        return ReviewStamp(DRAFT if settings.report_review == "required" else APPROVED)
    row = min(rows, key=lambda r: _PRECEDENCE.index(r.status))
    status = APPROVED if row.status == SENT else row.status
    return ReviewStamp(status, row.reviewed_by, from_db(row.reviewed_at, settings.tz), row.review_note)


def _t(key: str, language: str, **values: Any) -> str:
    from opsaudit.i18n import text

    return text(key, language, **values)


def _refuse(key: str, language: str, **values: Any) -> ReviewError:
    return ReviewError(_t(f"review.refused.{key}", language, **values))


def _run(conn: Connection, run_id: str, language: str) -> RunReport:
    """The run whose id is `run_id` or starts with it (as `findings` takes a prefix)."""
    if not run_id.strip():
        raise _refuse("unknown_run", language, run="“”")
    matches = conn.execute(sa.select(audit_runs.c.id).where(audit_runs.c.id.startswith(run_id.strip(), autoescape=True))
                           .limit(2)).scalars().all()
    if len(matches) > 1:
        raise _refuse("ambiguous_run", language, run=run_id)
    run_id = matches[0] if matches else run_id
    row = conn.execute(sa.select(audit_runs.c.id, audit_runs.c.audit, audit_runs.c.period, audit_runs.c.kind,
                                 audit_runs.c.parameters).where(audit_runs.c.id == run_id)).first()
    if row is None:
        raise _refuse("unknown_run", language, run=run_id)
    return RunReport(row.id, row.audit, row.period, row.kind, row.parameters or {})


def file_rows(files: Iterable[str | Path], language: str) -> list[dict[str, Any]]:
    """Each report file's format (from its suffix), resolved path and SHA-256."""
    rows: dict[str, dict[str, Any]] = {}
    for name in files:
        path = Path(name).expanduser().resolve()
        if path.suffix.lower() not in FORMATS:
            raise _refuse("file_format", language, path=str(path), formats=sorted(set(FORMATS.values())))
        if not path.is_file():
            raise _refuse("file_missing", language, path=str(path))
        fmt = FORMATS[path.suffix.lower()]
        if fmt in rows:
            raise _refuse("file_twice", language, path=str(path), other=rows[fmt]["path"])
        rows[fmt] = {"format": fmt, "path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return list(rows.values())


def digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """A short digest of a submission's files: what makes a new submission a new mail."""
    joined = "|".join(sorted(f"{row['format']}:{row['sha256']}" for row in rows))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def _upsert(dialect: str):
    builders = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if dialect not in builders:
        raise unsupported_store(Message.of("error.store.review_gate"), dialect)
    statement = builders[dialect](reports)
    return statement.on_conflict_do_update(
        index_elements=["audit_run_id", "language", "format"],
        set_={name: statement.excluded[name] for name in
              ("path", "sha256", "status", "created_at", "reviewed_by", "reviewed_at", "review_note")})


def _event(run_id: str, language: str | None, now: datetime, actor: str, action: str, note: str | None = None,
           **data: Any) -> dict[str, Any]:
    return {"audit_run_id": run_id, "language": language, "at": to_db(now), "actor": actor, "action": action,
            "note": note, "data": _jsonable(data)}


def submit(conn: Connection, gate: Gate, run_id: str, language: str, files: Sequence[str | Path], *,
           now: datetime, actor: str = "system") -> Outcome:
    """Record the run's report files in `language` and send them on: to the audit lead as a
    draft, or, with OPSAUDIT_REPORT_REVIEW=off, straight to the report's recipients.

    A new submission replaces the earlier one of the run and language, and the unreviewed reports
    of earlier runs of the same audit and period (a rerun replaces the draft).
    """
    run = _run(conn, run_id, language)
    rows = file_rows(files, language)
    status = DRAFT if gate.settings.report_review == "required" else APPROVED
    # A special audit or spot check is its own request: another over the same days keeps its draft.
    earlier = sa.select(audit_runs.c.id).where(audit_runs.c.audit == run.audit, audit_runs.c.period == run.period,
                                                audit_runs.c.id != run.id, audit_runs.c.kind.not_in(OWN_FOLDER_KINDS))
    conn.execute(reports.delete().where(reports.c.language == language, reports.c.status.in_((DRAFT, REJECTED)),
                                        reports.c.audit_run_id.in_(earlier.scalar_subquery())))
    conn.execute(reports.delete().where(reports.c.audit_run_id == run.id, reports.c.language == language,
                                        reports.c.format.not_in([row["format"] for row in rows])))
    conn.execute(_upsert(conn.dialect.name), [
        {"id": str(uuid.uuid4()), "audit_run_id": run.id, "language": language, "created_at": to_db(now),
         "status": status, "reviewed_by": None, "reviewed_at": None, "review_note": None, **row} for row in rows])
    returned = conn.execute(sa.select(sa.func.count()).where(
        report_events.c.audit_run_id == run.id, report_events.c.language == language,
        report_events.c.action == "rejected")).scalar_one()
    conn.execute(report_events.insert().values(**_event(
        run.id, language, now, actor, "submitted", files=rows, review=gate.settings.report_review)))
    if status == APPROVED:
        return _release(conn, gate, run, [language], now=now, reviewer=None)
    return _send_draft(conn, gate, run, language, rows, now, returned=returned)


def _send_draft(conn: Connection, gate: Gate, run: RunReport, language: str, rows: list[dict[str, Any]],
                now: datetime, *, returned: int) -> Outcome:
    """The draft to the audit lead; after a return, as a new mail that says it was revised."""
    found = draft_recipients(gate.directory)
    if not found.recipients:
        return Outcome(DRAFT, notes=found.notes)
    lead = found.recipients[0]
    mails = Mails(conn, gate, run)
    body = Body(language).paragraph(_t("review.mail.draft.intro", language, name=lead.name or lead.email,
                                       audit=run.audit, period=run.period))
    if returned:
        body.paragraph(_t("review.mail.draft.revised", language))
    mails.purpose(body, language)
    mails.summary(body, language)
    body.paragraph(_t("review.mail.draft.web", language, url=report_url(gate.settings, run.id)))
    for action in ("approve", "reject"):
        command = f"opsaudit reports {action} {run.id} --actor {lead.staff_id or '…'}"
        body.paragraph(_t(f"review.mail.draft.{action}", language,
                          command=command + (' --note "…"' if action == "reject" else "")))
    key = f"review:draft:{run.id}:{language}:{digest(rows)}" + (f":{returned}" if returned else "")
    mail = mails.mail(key, "report", found.addresses,
                      _t("review.mail.draft.subject", language, audit=run.audit, period=run.period), body,
                      [Path(row["path"]) for row in rows], language)
    return Outcome(DRAFT, (outbox.enqueue(conn, mail, now=now),), found.addresses, found.notes)


def check_lead(directory: Directory, actor: str, language: str) -> Person:
    """The audit lead, when `actor` is that person; a ReviewError otherwise."""
    lead = directory.audit_lead()
    if lead is None or not lead.active:
        raise _refuse("no_lead", language, setting="OPSAUDIT_AUDIT_LEAD")
    if actor not in directory.people:
        raise _refuse("unknown_actor", language, actor=actor)
    if actor != lead.staff_id:
        raise _refuse("not_lead", language, actor=directory.people[actor].label(language), lead=lead.label(language))
    return lead


def _drafts(conn: Connection, gate: Gate, run_id: str, language: str) -> list[RowMapping]:
    """The run's report files awaiting review; a ReviewError saying what became of them if none do.

    Locked until the decision commits: a second review at the same moment waits here on
    PostgreSQL, then reads the first one's decision, instead of recording and mailing its own too.
    """
    rows = list(conn.execute(sa.select(reports).where(reports.c.audit_run_id == run_id)
                             .order_by(reports.c.language, reports.c.format).with_for_update()).mappings())
    drafts = [row for row in rows if row["status"] == DRAFT]
    if drafts:
        return drafts
    raise _decision(gate, run_id, rows, language)


def _decided_before(conn: Connection, gate: Gate, run_id: str, language: str) -> ReviewError:
    """The refusal of a review that another one, committed first, has decided."""
    rows = list(conn.execute(sa.select(reports).where(reports.c.audit_run_id == run_id)).mappings())
    return _decision(gate, run_id, [row for row in rows if row["status"] != DRAFT], language)


def _decision(gate: Gate, run_id: str, rows: Sequence[RowMapping], language: str) -> ReviewError:
    """What became of a run's reports that are no longer drafts: a refusal naming it."""
    if not rows:
        return _refuse("no_report", language, run=run_id)
    latest = max(rows, key=lambda row: from_db(row["reviewed_at"]) or _EPOCH)
    if latest["reviewed_by"] is None:
        return _refuse("released", language, run=run_id)
    return _refuse("rejected" if latest["status"] == REJECTED else "approved", language, run=run_id,
                   by=gate.directory.person_label(latest["reviewed_by"], language),
                   at=from_db(latest["reviewed_at"], gate.settings.tz))


def approve(conn: Connection, gate: Gate, run_id: str, actor: str, note: str | None, *, now: datetime,
            language: str) -> Outcome:
    """The audit lead approves the run's drafts: recorded, and the report mailed to its recipients."""
    run = _run(conn, run_id, language)
    check_lead(gate.directory, actor, language)
    drafts = _drafts(conn, gate, run.id, language)
    languages = sorted({row["language"] for row in drafts})
    _review(conn, gate, run.id, drafts, APPROVED, actor, note, now, language)
    _restate(conn, gate, run, languages, ReviewStamp(APPROVED, actor, now.astimezone(gate.settings.tz),
                                                     _cleaned(note)))
    conn.execute(report_events.insert(), [_event(run.id, lang, now, actor, "approved", note) for lang in languages])
    return _release(conn, gate, run, languages, now=now, reviewer=(actor, note))


def reject(conn: Connection, gate: Gate, run_id: str, actor: str, note: str, *, now: datetime,
           language: str) -> Outcome:
    """The audit lead returns the run's drafts with a note: recorded, and the note mailed to the auditors."""
    if not note or not note.strip():
        raise _refuse("note_required", language)
    run = _run(conn, run_id, language)
    lead = check_lead(gate.directory, actor, language)
    drafts = _drafts(conn, gate, run.id, language)
    languages = sorted({row["language"] for row in drafts})
    _review(conn, gate, run.id, drafts, REJECTED, actor, note, now, language)
    _restate(conn, gate, run, languages, ReviewStamp(REJECTED, actor, now.astimezone(gate.settings.tz),
                                                     _cleaned(note)))
    conn.execute(report_events.insert(), [_event(run.id, lang, now, actor, "rejected", note) for lang in languages])
    team = _auditors(gate.directory, reviewer=actor)
    if not team.recipients:
        return Outcome(REJECTED, notes=team.notes)
    mails = Mails(conn, gate, run)
    ids = []
    for mail_language, addresses in team.by_language(gate.settings.language).items():
        body = Body(mail_language).paragraph(_t("review.mail.rejected.intro", mail_language,
                                                lead=lead.label(mail_language), audit=run.audit, period=run.period))
        body.paragraph(_t("review.mail.rejected.note", mail_language, note=note.strip()))
        body.paragraph(_t("review.mail.rejected.web", mail_language, url=report_url(gate.settings, run.id)))
        body.paragraph(_t("review.mail.rejected.resubmit", mail_language,
                          command=f"opsaudit reports resubmit {run.id} --actor …"))
        mails.summary(body, mail_language)
        key = f"review:rejected:{run.id}:{mail_language}:{digest(drafts)}"
        subject = _t("review.mail.rejected.subject", mail_language, audit=run.audit, period=run.period)
        ids.append(outbox.enqueue(conn, mails.mail(key, "notice", addresses, subject, body, [], mail_language),
                                  now=now))
    return Outcome(REJECTED, tuple(ids), team.addresses, team.notes)


def resubmit(conn: Connection, gate: Gate, run_id: str, actor: str, note: str | None, *, now: datetime,
             language: str) -> Outcome:
    """An auditor submits a returned report again: written anew as a draft (with the findings as
    they stand now) and sent to the audit lead as a new mail."""
    from opsaudit.reports.render import write_report_on

    run = _run(conn, run_id, language)
    check_auditor(gate.directory, actor, language)
    rows = list(conn.execute(sa.select(reports).where(reports.c.audit_run_id == run.id)
                             .order_by(reports.c.language, reports.c.format).with_for_update()).mappings())
    returned = sorted({row["language"] for row in rows if row["status"] == REJECTED})
    if not returned:
        drafts = [row for row in rows if row["status"] == DRAFT]
        raise _refuse("awaiting", language, run=run.id) if drafts else _decision(gate, run.id, rows, language)
    outcomes = []
    for report_language in returned:
        ours = [Path(row["path"]) for row in rows if row["language"] == report_language]
        write_report_on(conn, gate.settings, run.id, report_language, ours[0].parent, review=ReviewStamp(DRAFT))
        outcomes.append(submit(conn, gate, run.id, report_language, ours, now=now, actor=actor))
    if note and note.strip():
        conn.execute(report_events.insert(), [_event(run.id, lang, now, actor, "revised", note.strip())
                                              for lang in returned])
    return Outcome(DRAFT, tuple(i for o in outcomes for i in o.messages),
                   tuple(dict.fromkeys(a for o in outcomes for a in o.recipients)),
                   tuple(n for o in outcomes for n in o.notes))


def check_auditor(directory: Directory, actor: str, language: str) -> Person:
    """`actor` when an active auditor of the operations department; a ReviewError otherwise."""
    person = directory.people.get(actor)
    if person is None:
        raise _refuse("unknown_actor", language, actor=actor)
    if not (person.active and person.role == "auditor" and person.department_id == directory.operations_department):
        raise _refuse("not_auditor", language, actor=person.label(language))
    return person


def _auditors(directory: Directory, *, reviewer: str) -> RecipientList:
    """The audit team who revise the report: the active auditors of the operations department
    other than the reviewer; the reviewer alone when the team has nobody else."""
    from opsaudit.reports.recipients import resolve

    team = [person.staff_id for person in directory.people.values() if person.role == "auditor" and person.active
            and person.department_id == directory.operations_department]
    return resolve(directory, named=dict.fromkeys([staff_id for staff_id in team if staff_id != reviewer]
                                                  or [reviewer], reason("auditor")))


def _cleaned(note: str | None) -> str | None:
    return note.strip() if note and note.strip() else None


def _review(conn: Connection, gate: Gate, run_id: str, rows: Sequence[RowMapping], status: str, actor: str,
            note: str | None, now: datetime, language: str) -> None:
    """Decide the drafts, on the condition that they are still drafts. SQLite has no row locks: two
    decisions at the same moment both read the drafts, and the status is what lets one decide."""
    decided = conn.execute(reports.update().where(reports.c.id.in_([row["id"] for row in rows]),
                                                  reports.c.status == DRAFT)
                           .values(status=status, reviewed_by=actor, reviewed_at=to_db(now),
                                   review_note=_cleaned(note))).rowcount
    if decided != len(rows):
        raise _decided_before(conn, gate, run_id, language)


def _restate(conn: Connection, gate: Gate, run: RunReport, languages: Sequence[str], stamp: ReviewStamp) -> None:
    """Write the run's reports in `languages` again, stating `stamp`, and keep their new digests:
    what is mailed, shown and rendered after a review says what the review decided."""
    from opsaudit.reports.render import write_report_on

    rows = list(conn.execute(sa.select(reports.c.id, reports.c.language, reports.c.path).where(
        reports.c.audit_run_id == run.id, reports.c.language.in_(languages))).mappings())
    for language in languages:
        folder = Path(next(row["path"] for row in rows if row["language"] == language)).parent
        write_report_on(conn, gate.settings, run.id, language, folder, review=stamp)
    conn.execute(reports.update().where(reports.c.id == sa.bindparam("b_id")).values(sha256=sa.bindparam("b_sha")),
                 [{"b_id": row["id"], "b_sha": hashlib.sha256(Path(row["path"]).read_bytes()).hexdigest()}
                  for row in rows])


def _release(conn: Connection, gate: Gate, run: RunReport, languages: Sequence[str], *, now: datetime,
             reviewer: tuple[str, str | None] | None) -> Outcome:
    """Mail the approved report in `languages` to its recipients, each in their language when the
    run has a report in it, else in OPSAUDIT_LANGUAGE's (else in the one released)."""
    files = list(conn.execute(sa.select(reports).where(reports.c.audit_run_id == run.id,
                                                       reports.c.status.in_((APPROVED, SENT)))).mappings())
    available = {row["language"] for row in files}
    departments, major = _scope(conn, run.id)
    found = report_recipients(gate.directory, gate.recipients, run.audit, departments=departments, major=major)
    default = gate.settings.language
    mails = Mails(conn, gate, run)
    ids: list[int] = []
    told: list[Address] = []
    groups = found.by_language(default)
    for mail_language in languages:
        addresses = [address for wanted in groups if _reads(wanted, available, default, mail_language) == mail_language
                     for address in groups[wanted]]
        if not addresses:
            continue
        ours = [row for row in files if row["language"] == mail_language]
        attached = [Path(row["path"]) for fmt in MAILED_FORMATS for row in ours if row["format"] == fmt]
        body = Body(mail_language).paragraph(_t("review.mail.report.intro", mail_language, audit=run.audit,
                                                period=run.period))
        if reviewer is None:
            body.paragraph(_t("review.mail.report.unreviewed", mail_language))
        else:
            body.paragraph(_t("review.mail.report.reviewed", mail_language, at=now.astimezone(gate.settings.tz),
                              lead=gate.directory.person_label(reviewer[0], mail_language)))
            if reviewer[1] and reviewer[1].strip():
                body.paragraph(_t("review.mail.report.note", mail_language, note=reviewer[1].strip()))
        mails.summary(body, mail_language)
        key = f"{REPORT_KEY}{run.id}:{mail_language}:{digest(ours)}"
        subject = _t("review.mail.report.subject", mail_language, audit=run.audit, period=run.period)
        ids.append(outbox.enqueue(conn, mails.mail(key, "report", addresses, subject, body, attached, mail_language),
                                  now=now))
        told += addresses
    return Outcome(APPROVED, tuple(ids), tuple(told), found.notes)


def _reads(wanted: str, available: set[str], default: str, released: str) -> str:
    """The report language a recipient who wants `wanted` reads: theirs when the run has it, else
    OPSAUDIT_LANGUAGE's when the run has that, else the one being released."""
    return wanted if wanted in available else default if default in available else released


def _scope(conn: Connection, run_id: str) -> tuple[list[str], bool]:
    """The departments with findings in the run, and whether one of them is a major problem."""
    rows = conn.execute(sa.select(findings.c.department_id, findings.c.severity).where(of_run(run_id), COUNTED)
                        .distinct()).all()
    return sorted({row.department_id for row in rows if row.department_id}), any(row.severity == "major"
                                                                                   for row in rows)


@dataclass
class Mails:
    """Composes a run's review mail: the problems found by severity and department, the major ones named."""

    conn: Connection
    gate: Gate
    run: RunReport
    _counts: list[sa.Row] | None = field(default=None, init=False)
    _majors: list[RowMapping] | None = field(default=None, init=False)

    def _load(self) -> tuple[list[sa.Row], list[RowMapping]]:
        """The run's findings counted by department and severity, and its major ones: read once."""
        if self._counts is None or self._majors is None:
            self._counts = list(self.conn.execute(
                sa.select(findings.c.department_id, findings.c.severity, sa.func.count())
                .where(of_run(self.run.id), COUNTED)
                .group_by(findings.c.department_id, findings.c.severity)
                .order_by(sa.nulls_first(findings.c.department_id))))
            self._majors = list(self.conn.execute(
                sa.select(findings).where(of_run(self.run.id), COUNTED, findings.c.severity == "major")
                .order_by(sa.nulls_first(findings.c.department_id), findings.c.rule_id, findings.c.entity_id)
                .limit(MAIL_ROWS)).mappings())
        return self._counts, self._majors

    def purpose(self, body: Body, language: str) -> None:
        """Why a special audit was made (seed 000 §4.1): its reason, scope and who asked."""
        from opsaudit.reports.special_purpose import special_purpose

        request = self.run.parameters.get("special")
        if self.run.kind == "special" and request:
            directory = self.gate.directory
            body.paragraph(special_purpose(request, self.run.period, language,
                                           department=lambda d: directory.department_label(d, language),
                                           person=lambda s: directory.person_label(s, language) or s))

    def summary(self, body: Body, language: str) -> None:
        """The run, its problems by department and severity, and its major problems named."""
        from opsaudit.i18n import format_value

        counts, majors = self._load()
        body.paragraph(_t("review.mail.run", language, run=self.run.id))
        body.heading(_t("review.mail.problems", language))
        if not counts:
            body.paragraph(_t("review.mail.no_problems", language))
            return
        table: dict[str, dict[str, int]] = {}
        for department, severity, number in counts:
            name = self.gate.directory.department_label(department, language)
            table.setdefault(name, dict.fromkeys(SEVERITIES, 0))[severity] = number
        total = {severity: sum(row[severity] for row in table.values()) for severity in SEVERITIES}
        header = [_t("field.department", language), *(_t(f"enum.severity.{s}", language) for s in SEVERITIES)]
        rows = [[name, *(format_value(by_severity[s], "count", language) for s in SEVERITIES)]
                for name, by_severity in [*table.items(), (_t("review.mail.total", language), total)]]
        body.table(header, rows, compact=True)
        if majors:
            from opsaudit.i18n import entity_label
            from opsaudit.store.finding_views import finding_text

            body.heading(_t("review.mail.majors", language))
            body.table([_t("field.title", language), _t("field.department", language), _t("field.owner", language),
                        _t("field.due_at", language)],
                       [[_t("label.named", language, name=finding_text(row, language)[0],
                            id=entity_label(row, language)),
                         self.gate.directory.department_label(row["department_id"], language),
                         self.gate.directory.person_label(row["owner_id"] or "—", language),
                         format_value(from_db(row["due_at"], self.gate.settings.tz), "date", language)]
                        for row in majors])

    def mail(self, key: str, kind: Kind, addresses: Sequence[Address], subject: str, body: Body,
             attachments: Sequence[Path], language: str) -> OutgoingMail:
        if attachments:
            body.paragraph(_t("review.mail.attachments", language, files=[path.name for path in attachments]))
        body.paragraph(_t("rectification.mail.footer", language))
        return OutgoingMail(dedupe_key=key, kind=kind, recipients=tuple(addresses), subject=subject,
                            body_text=body.text(), body_html=body.html(), attachments=tuple(attachments))


def record_sent(conn: Connection, sent: Sequence[MailSummary], now: datetime) -> int:
    """Mark `sent` the approved reports whose report mail the server just accepted, with an event.
    Returns how many (run, language) reports were marked."""
    pairs = {tuple(m.dedupe_key.removeprefix(REPORT_KEY).split(":")[:2]) for m in sent
             if m.kind == "report" and m.dedupe_key.startswith(REPORT_KEY)}
    if not pairs:
        return 0
    approved = {(row.audit_run_id, row.language) for row in conn.execute(
        sa.select(reports.c.audit_run_id, reports.c.language).where(
            sa.tuple_(reports.c.audit_run_id, reports.c.language).in_(sorted(pairs)),
            reports.c.status == APPROVED).distinct())}
    if not approved:
        return 0
    conn.execute(reports.update().where(reports.c.audit_run_id == sa.bindparam("run"),
                                        reports.c.language == sa.bindparam("lang"), reports.c.status == APPROVED)
                 .values(status=SENT), [{"run": run, "lang": lang} for run, lang in sorted(approved)])
    conn.execute(report_events.insert(), [_event(run, lang, now, "system", "sent") for run, lang in sorted(approved)])
    return len(approved)


@dataclass(frozen=True)
class ReportLine:
    """One run's report as `opsaudit reports list` shows it."""

    audit_run_id: str
    audit: str
    period: str
    status: str
    languages: tuple[str, ...]
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str | None

    def as_json(self) -> dict[str, str]:
        """interface.md's shape."""
        return {"audit_run_id": self.audit_run_id, "audit": self.audit, "period": self.period, "status": self.status}


# A run whose languages differ in status shows the one that still needs someone.
_PRECEDENCE = (DRAFT, REJECTED, APPROVED, SENT)


def list_reports(conn: Connection) -> list[ReportLine]:
    """Every run's report, newest run first, in one query."""
    rows = conn.execute(sa.select(reports.c.audit_run_id, reports.c.language, reports.c.status,
                                  reports.c.reviewed_by, reports.c.reviewed_at, reports.c.review_note,
                                  audit_runs.c.audit, audit_runs.c.period, audit_runs.c.started_at)
                        .join(audit_runs, audit_runs.c.id == reports.c.audit_run_id)
                        .order_by(audit_runs.c.started_at.desc(), audit_runs.c.id, reports.c.language)).all()
    grouped: dict[str, list[sa.Row]] = {}
    for row in rows:
        grouped.setdefault(row.audit_run_id, []).append(row)
    lines = []
    for run_id, group in grouped.items():
        status = min((row.status for row in group), key=_PRECEDENCE.index)
        reviewed = max(group, key=lambda row: from_db(row.reviewed_at) or _EPOCH)
        lines.append(ReportLine(run_id, group[0].audit, group[0].period, status,
                                tuple(sorted({row.language for row in group})), reviewed.reviewed_by,
                                from_db(reviewed.reviewed_at), reviewed.review_note))
    return lines

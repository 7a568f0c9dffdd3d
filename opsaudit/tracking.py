"""Rectification follow-up (seed 000 §5.4): reminders before a deadline and the escalation ladder
after it.

A deadline runs while the rectification is the owner's to deliver (open up to in progress).
Days count in calendar days of OPSAUDIT_TIMEZONE, since the tracking runs once a day:
- before the deadline, the owner is reminded on the first run at most `reminder_days` before
  its date (7 and 1 by default; a run that missed days sends only the nearest reminder);
  a major finding's owner is reminded of the plan's deadline the same way while it is open;
- once it has passed, each level of the ladder is told on the first run at least its
  `escalation_days` after the deadline's date: the department's head, the operations manager,
  the executives (a run that missed days tells every level reached).
Each step is claimed once in `oa_finding_notices` (unique per finding, step and deadline), then
recorded as an event (`reminded`, `escalated`, the note naming who was told) and mailed: one
message per person and run, listing their findings. The weekly report is opsaudit.progress.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping

from opsaudit.audit import check_directory_settings
from opsaudit.config.loader import Config
from opsaudit.config.models import RectificationTracking
from opsaudit.db import source_engine, unsupported_store
from opsaudit.i18n.render import Message
from opsaudit.reports import outbox
from opsaudit.reports.recipients import Directory, Recipient, RecipientList, Role, reason, resolve
from opsaudit.settings import Settings
from opsaudit.source import Source
from opsaudit.store.findings import OPEN, event_row
from opsaudit.store.lifecycle import WITH_OWNER, major_handling_of
from opsaudit.store.migrate import require_writable
from opsaudit.store.roles import load_directory
from opsaudit.store.schema import finding_events, finding_notices, findings
from opsaudit.store.times import from_db, to_db

Kind = Literal["remind", "remind_plan", "escalate"]


class Level(StrEnum):
    """The escalation ladder, lowest first."""

    DEPARTMENT_HEAD = "department_head"
    OPERATIONS_MANAGER = "operations_manager"
    EXECUTIVES = "executives"


@dataclass(frozen=True)
class Step:
    """One reminder or escalation of one finding's deadline."""

    finding: RowMapping
    kind: Kind
    deadline: datetime  # local time
    days: int  # calendar days left before the deadline's date, or past it
    threshold: int  # the configured day this step belongs to
    level: Level | None = None

    @property
    def key(self) -> str:
        """`remind:7`, `remind_plan:1`, `escalate:executives`: once per finding and deadline."""
        return f"escalate:{self.level}" if self.level else f"{self.kind}:{self.threshold}"


@dataclass(frozen=True)
class Notice:
    """A claimed step, who should be told, and who could not be."""

    step: Step
    recipients: tuple[Recipient, ...]
    unreachable: tuple[Message, ...]


@dataclass(frozen=True)
class TrackingSummary:
    """What one tracking run did."""

    reminded: int = 0
    escalated: int = 0
    messages: int = 0
    unreachable: tuple[Message, ...] = ()

    def as_json(self, language: str) -> dict[str, Any]:
        return {"reminded": self.reminded, "escalated": self.escalated, "messages": self.messages,
                "unreachable": [note.text(language) for note in self.unreachable]}


def steps_due(finding: RowMapping, now: datetime, policy: RectificationTracking, zone: tzinfo) -> list[Step]:
    """The steps the finding has reached at `now` (claimed or not)."""
    if finding["status"] not in WITH_OWNER:
        return []
    today = now.astimezone(zone).date()
    due = from_db(finding["due_at"], zone)
    assert due is not None
    steps = _reminder(finding, "remind", due, now, today, policy.reminder_days)
    if now >= due:
        late = (today - due.date()).days
        ladder = policy.escalation_days.model_dump()
        steps += [Step(finding, "escalate", due, late, days, Level(level)) for level, days in ladder.items()
                  if late >= days]
    plan_due = from_db(finding["plan_due_at"], zone)
    if plan_due is not None and finding["status"] == OPEN:
        steps += _reminder(finding, "remind_plan", plan_due, now, today, policy.reminder_days)
    return steps


def _reminder(finding: RowMapping, kind: Kind, deadline: datetime, now: datetime, today: date,
              reminder_days: Sequence[int]) -> list[Step]:
    """The nearest reminder reached before `deadline`, if any."""
    if now >= deadline:
        return []
    left = (deadline.date() - today).days
    reached = [days for days in reminder_days if left <= days]
    return [Step(finding, kind, deadline, left, min(reached))] if reached else []


def candidates(conn: Connection, now: datetime, policy: RectificationTracking) -> list[RowMapping]:
    """The findings with the owner whose deadline or plan deadline is near enough to need a step."""
    horizon = to_db(now + timedelta(days=max(policy.reminder_days, default=0) + 1))
    return list(conn.execute(sa.select(findings).where(
        findings.c.status.in_(WITH_OWNER),
        sa.or_(findings.c.due_at <= horizon,
               sa.and_(findings.c.status == OPEN, findings.c.plan_due_at <= horizon)),
    ).order_by(findings.c.due_at, findings.c.id)).mappings())


def claim(conn: Connection, steps: Sequence[Step], now: datetime) -> list[Step]:
    """The steps not claimed before, now claimed: one statement, which a second run (even a
    concurrent one) cannot claim again."""
    if not steps:
        return []
    builders = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if conn.dialect.name not in builders:
        raise unsupported_store(Message.of("enum.audit.rectification-tracking"), conn.dialect.name)
    statement = (builders[conn.dialect.name](finding_notices).on_conflict_do_nothing()
                 .returning(finding_notices.c.finding_id, finding_notices.c.step))
    rows = [{"finding_id": step.finding["id"], "step": step.key, "deadline": to_db(step.deadline), "at": to_db(now)}
            for step in steps]
    claimed = {(row.finding_id, row.step) for row in conn.execute(statement, rows)}
    return [step for step in steps if (step.finding["id"], step.key) in claimed]


class Audience:
    """Who is told of each step: the owner for a reminder; for an escalation the level's people,
    with the owner in copy. A level's people are looked up once per department and run.

    A finding without a department (a company or data-quality finding) is the operations
    department's: its head is told at the first level.
    """

    ROLES = {Level.DEPARTMENT_HEAD: Role.DEPARTMENT_HEAD, Level.OPERATIONS_MANAGER: Role.OPERATIONS_MANAGER,
             Level.EXECUTIVES: Role.EXECUTIVE}

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._levels: dict[tuple[Level, str], RecipientList] = {}

    def notice(self, step: Step) -> Notice:
        owner = step.finding["owner_id"]
        found = [resolve(self.directory, named={owner: reason("owner")})] if owner else []
        if step.level is not None:
            department = step.finding["department_id"] or self.directory.operations_department
            key = (step.level, department)
            if key not in self._levels:
                self._levels[key] = resolve(self.directory, roles=[self.ROLES[step.level]], departments=[department])
            found.insert(0, self._levels[key])
        recipients: dict[str, Recipient] = {}
        for part in found:
            for recipient in part.recipients:
                recipients.setdefault(recipient.email.lower(), recipient)
        return Notice(step, tuple(recipients.values()), tuple(dict.fromkeys(note for part in found
                                                                            for note in part.notes)))


def record(conn: Connection, notices: Sequence[Notice], now: datetime, language: str) -> None:
    """One event per notice: `reminded` or `escalated`, the note naming who was told."""
    from opsaudit.i18n import text
    from opsaudit.i18n.findings import labelled

    rows = []
    for notice in notices:
        step = notice.step
        people = [labelled(r.name, r.staff_id, language) if r.staff_id else r.email for r in notice.recipients]
        note = (text("rectification.notice.told", language, people=people) if people
                else text("rectification.notice.nobody", language))
        data = {"step": step.key, "deadline": step.deadline.isoformat(), "days": step.days,
                "told": [r.staff_id or r.email for r in notice.recipients],
                "unreachable": [note.text(language) for note in notice.unreachable]}
        rows.append(event_row(step.finding["id"], at=now, actor="system",
                              action="escalated" if step.level else "reminded", note=note, data=data))
    if rows:
        conn.execute(finding_events.insert(), rows)


def by_person(notices: Iterable[Notice]) -> dict[str, tuple[Recipient, list[Step]]]:
    """Each person told (by address) with the steps they are told of, in the order given."""
    grouped: dict[str, tuple[Recipient, list[Step]]] = {}
    for notice in notices:
        for recipient in notice.recipients:
            grouped.setdefault(recipient.email.lower(), (recipient, []))[1].append(notice.step)
    return grouped


def digest_key(kind: str, email: str, steps: Sequence[Step], language: str) -> str:
    """The outbox key of one person's mail of a run: the same steps never make a second message."""
    digest = hashlib.sha256("|".join(sorted(f"{s.finding['id']}:{s.key}:{s.deadline.isoformat()}"
                                            for s in steps)).encode()).hexdigest()[:24]
    return f"rectification:{kind}:{email.lower()}:{digest}:{language}"


def track(conn: Connection, directory: Directory, policy: RectificationTracking, *, now: datetime, zone: tzinfo,
          language: str, settings: Settings) -> TrackingSummary:
    """Claim, record and mail every step due at `now`; each finding a mail names links to its page
    on `settings`' OPSAUDIT_WEB_URL."""
    from opsaudit.reports import rectification as mails

    due = [step for finding in candidates(conn, now, policy) for step in steps_due(finding, now, policy, zone)]
    audience = Audience(directory)
    notices = [audience.notice(step) for step in claim(conn, due, now)]
    record(conn, notices, now, language)
    majors = major_handling_of(conn, sorted({n.step.finding["id"] for n in notices
                                             if n.step.finding["severity"] == "major"}))
    writer = mails.Writer(directory, zone, majors, web=settings)
    messages = 0
    for kind, chosen in (("reminder", [n for n in notices if n.step.level is None]),
                         ("escalation", [n for n in notices if n.step.level is not None])):
        for recipient, steps in by_person(chosen).values():
            mail_language = recipient.language or language
            compose = writer.reminder if kind == "reminder" else writer.escalation
            mail = compose(steps, recipient.address, mail_language,
                           digest_key(kind, recipient.email, steps, mail_language))
            outbox.enqueue(conn, mail, now=now)
            messages += 1
    unreachable = tuple(dict.fromkeys(note for notice in notices for note in notice.unreachable))
    return TrackingSummary(sum(n.step.level is None for n in notices), sum(n.step.level is not None for n in notices),
                           messages, unreachable)


@dataclass(frozen=True)
class TrackingRun:
    """What one run of the rectification tracking needs: settings, config, its clock."""

    settings: Settings
    config: Config
    now: datetime  # aware, in OPSAUDIT_TIMEZONE
    directory: Directory

    def __repr__(self) -> str:
        return f"TrackingRun(now {self.now.isoformat(timespec='minutes')})"

    @cached_property
    def store(self) -> Engine:
        from opsaudit.audit import audit_store

        return audit_store(self.settings)

    @property
    def policy(self) -> RectificationTracking:
        return self.config.audits.rectification_tracking


def prepare_run(settings: Settings, now: datetime | None = None) -> TrackingRun:
    """The run at `now` (default: the clock), checked before anything is written: the store takes
    writes, the operations department exists with its manager, the directory can be read."""
    config = settings.load_config()
    # A plain datetime: Prefect's scheduled times are pendulum's, whose arithmetic drops a zoneinfo zone.
    clock = datetime.fromtimestamp((now or datetime.now(settings.tz)).timestamp(), settings.tz)
    directory = load_directory(settings, config)
    source = Source(source_engine(settings.database, timezone=settings.timezone), config.source,
                    zone=settings.timezone)
    check_directory_settings(settings, source, {"departments", "staff"})
    run = TrackingRun(settings, config, clock, directory)
    require_writable(run.store)
    return run

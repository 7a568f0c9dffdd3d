"""Key tasks watched daily between audits (seed 000 §4.2.2; audit-rules.md "Watching key tasks").

Execution is audited monthly, but key tasks are tracked in real time. Every morning the
`key-task-watch` flow finds, in one query over the tasks table, each task of a key priority
(high or critical by default) that is
- overdue: its due time has passed and it is neither done, cancelled nor completed; or
- due soon: due no later than the end of the day `due_soon_days` calendar days ahead (2 by
  default: the day after tomorrow, in OPSAUDIT_TIMEZONE) and not started (no start time, status
  not_started);
and warns its owner and the head of its department, once per task, state and due date: each
warning is claimed in `oa_key_task_warnings` before it is mailed, in the same transaction, so a
second run of the day sends nothing, while a task that goes from due soon to overdue, or gets a
new due date, is warned again. Each person gets one message per run listing their tasks.

A warning is not a finding: nothing is written to the findings; the monthly execution audit
judges the month. A task whose owner left, or that has none, is warned to the department head
only; whoever cannot be told (no head, no e-mail address) is a note in the run's log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from opsaudit.config.loader import Config
from opsaudit.config.models import KeyTaskWatch
from opsaudit.db import unsupported_store
from opsaudit.errors import SourceError
from opsaudit.i18n.render import Message
from opsaudit.reports import outbox
from opsaudit.reports.outbox import OutgoingMail
from opsaudit.reports.recipients import Directory, Recipient, RecipientList, Role, resolve
from opsaudit.settings import Settings
from opsaudit.source import Source, check_source
from opsaudit.store.schema import key_task_warnings
from opsaudit.store.times import to_db

FINISHED = ("done", "cancelled")
NOT_STARTED = "not_started"
# A message lists at most this many tasks of each state and says how many more there are.
MAIL_ROWS = 100


class State(StrEnum):
    """Why a key task is warned of; each state is warned once."""

    OVERDUE = "overdue"
    DUE_SOON = "due_soon"


@dataclass(frozen=True)
class KeyTask:
    """A key task at risk at the watch's time."""

    task_id: str
    title: str | None
    department_id: str
    owner_id: str | None
    priority: str
    status: str | None
    due_at: datetime  # aware, in OPSAUDIT_TIMEZONE
    state: State


def at_risk(source: Source, policy: KeyTaskWatch, now: datetime, zone: tzinfo) -> list[KeyTask]:
    """The key tasks overdue or due soon at `now`, in one query, the earliest due first."""
    local = now.astimezone(zone).replace(tzinfo=None)  # the source's times are naive local times (Source)
    horizon = datetime.combine(local.date() + timedelta(days=policy.due_soon_days + 1), time())
    t = source.table("tasks")
    unfinished = sa.and_(sa.or_(t.c.status.is_(None), t.c.status.not_in(FINISHED)), t.c.completed_at.is_(None))
    not_started = sa.and_(t.c.started_at.is_(None), sa.func.coalesce(t.c.status, NOT_STARTED) == NOT_STARTED)
    overdue = t.c.due_at < local
    query = (sa.select(t.c.task_id, t.c.title, t.c.department_id, t.c.owner_id, t.c.priority, t.c.status, t.c.due_at,
                       sa.case((overdue, State.OVERDUE.value), else_=State.DUE_SOON.value).label("state"))
             .where(t.c.priority.in_(policy.priorities), unfinished,
                    sa.or_(overdue, sa.and_(t.c.due_at < horizon, not_started)))
             .order_by(t.c.due_at, t.c.task_id))
    try:
        with source.engine.connect() as conn:
            rows = conn.execute(query).all()
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise SourceError(Message.of("error.source.unreadable", table=source.shown_name("tasks"),
                                     what=Message.of("error.source.key_tasks"), reason=reason)) from None
    # A due time that is no timestamp (text in a SQLite column) reads as None: data quality reports it.
    return [KeyTask(row.task_id, row.title, row.department_id, row.owner_id, row.priority, row.status,
                    row.due_at.replace(tzinfo=zone), State(row.state)) for row in rows if row.due_at is not None]


def audience(directory: Directory, task: KeyTask) -> RecipientList:
    """The task's owner and the head of its department, each address once, and who cannot be told."""
    named = {task.owner_id: Message.of("key_tasks.reason.owner")} if task.owner_id else {}
    return resolve(directory, roles=[Role.DEPARTMENT_HEAD], departments=[task.department_id], named=named)


def claim(conn: Connection, tasks: Sequence[KeyTask], audiences: dict[str, RecipientList],
          now: datetime) -> list[KeyTask]:
    """The tasks whose warning (task, state, due date) was not claimed before, now claimed with
    whom they tell: one statement, which a second run, even a concurrent one, cannot claim again."""
    if not tasks:
        return []
    builders = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if conn.dialect.name not in builders:
        raise unsupported_store(Message.of("enum.audit.key-task-watch"), conn.dialect.name)
    statement = (builders[conn.dialect.name](key_task_warnings).on_conflict_do_nothing()
                 .returning(key_task_warnings.c.task_id, key_task_warnings.c.state))
    rows = [{"task_id": task.task_id, "state": task.state.value, "due_at": to_db(task.due_at),
             "priority": task.priority, "department_id": task.department_id, "owner_id": task.owner_id,
             "told": [r.staff_id or r.email for r in audiences[task.task_id].recipients], "at": to_db(now)}
            for task in tasks]
    claimed = {(row.task_id, row.state) for row in conn.execute(statement, rows)}
    return [task for task in tasks if (task.task_id, task.state.value) in claimed]


@dataclass(frozen=True)
class WatchSummary:
    """What one run of the watch did: the warnings it sent (new ones only), how many tasks it found
    already warned of, the messages enqueued, and who could not be told."""

    warned: tuple[KeyTask, ...] = ()
    already_warned: int = 0
    messages: int = 0
    unreachable: tuple[Message, ...] = ()

    def count(self, state: State) -> int:
        return sum(task.state is state for task in self.warned)

    def as_json(self, language: str) -> dict[str, Any]:
        return {"overdue": self.count(State.OVERDUE), "due_soon": self.count(State.DUE_SOON),
                "warned": [{"task_id": task.task_id, "state": task.state.value} for task in self.warned],
                "already_warned": self.already_warned, "messages": self.messages,
                "unreachable": [note.text(language) for note in self.unreachable]}


def warn(conn: Connection, tasks: Sequence[KeyTask], directory: Directory, policy: KeyTaskWatch, *, now: datetime,
         zone: tzinfo, language: str) -> WatchSummary:
    """Claim each warning not sent before and enqueue one message per person told, listing their tasks."""
    audiences = {task.task_id: audience(directory, task) for task in tasks}
    claimed = claim(conn, tasks, audiences, now)
    people: dict[str, tuple[Recipient, list[KeyTask]]] = {}
    for task in claimed:
        for recipient in audiences[task.task_id].recipients:
            people.setdefault(recipient.email.lower(), (recipient, []))[1].append(task)
    writer = Writer(directory, policy, now.astimezone(zone))
    for recipient, told in people.values():
        outbox.enqueue(conn, writer.mail(recipient, told, recipient.language or language), now=now)
    notes = tuple(dict.fromkeys(note for task in claimed for note in audiences[task.task_id].notes))
    return WatchSummary(tuple(claimed), len(tasks) - len(claimed), len(people), notes)


class Writer:
    """One person's warning of a run, in their language: the overdue tasks, then those due soon."""

    def __init__(self, directory: Directory, policy: KeyTaskWatch, now: datetime) -> None:
        self.directory, self.policy, self.now = directory, policy, now

    def mail(self, recipient: Recipient, tasks: Sequence[KeyTask], language: str) -> OutgoingMail:
        from opsaudit.i18n import text
        from opsaudit.reports.rectification import Body

        priorities = [text(f"enum.priority.{p}", language) for p in self.policy.priorities]
        body = Body(language).paragraph(text("key_tasks.mail.intro", language, name=recipient.name or recipient.email,
                                             priorities=priorities, days=self.policy.due_soon_days))
        for state in State:
            listed = [task for task in tasks if task.state is state]
            if listed:
                body.heading(text(f"key_tasks.mail.{state.value}.title", language, count=len(listed)))
                body.table(self.header(state, language), [self.row(task, language) for task in listed[:MAIL_ROWS]])
            if len(listed) > MAIL_ROWS:
                body.paragraph(text("key_tasks.mail.more", language, count=len(listed) - MAIL_ROWS))
        body.paragraph(text("rectification.mail.footer", language))
        return OutgoingMail(dedupe_key=self.key(recipient, tasks, language), kind="notice",
                            recipients=(recipient.address,), subject=self.subject(tasks, language),
                            body_text=body.text(), body_html=body.html())

    def subject(self, tasks: Sequence[KeyTask], language: str) -> str:
        from opsaudit.i18n import text

        if len(tasks) == 1:
            return text(f"key_tasks.mail.{tasks[0].state.value}.subject", language, task=self.named(tasks[0], language))
        return text("key_tasks.mail.subject_many", language, count=len(tasks))

    @staticmethod
    def header(state: State, language: str) -> list[str]:
        from opsaudit.i18n import text

        columns = ("task", "department", "owner", "priority", "status", "due_at", f"days_{state.value}")
        return [text(f"key_tasks.column.{column}", language) for column in columns]

    def row(self, task: KeyTask, language: str) -> list[str]:
        from opsaudit.i18n import format_value

        return [self.named(task, language), self.directory.department_label(task.department_id, language),
                self.directory.person_label(task.owner_id, language) or "—",
                format_value(task.priority, "enum.priority", language),
                format_value(task.status, "enum.task_status", language),
                format_value(task.due_at, "datetime", language), self.days(task, language)]

    @staticmethod
    def named(task: KeyTask, language: str) -> str:
        """升级核心数据库版本（TSK-00898）: the task by title and id; by id alone without a title."""
        from opsaudit.i18n.findings import labelled

        return labelled(task.title, task.task_id, language) or task.task_id

    def days(self, task: KeyTask, language: str) -> str:
        """How late (overdue) or how long left (due soon), in calendar days; the day itself in words."""
        from opsaudit.i18n import format_value, text

        apart = abs((task.due_at.date() - self.now.date()).days)
        if apart == 0:
            return text(f"key_tasks.mail.{task.state.value}.today", language)
        return format_value(apart, "days", language)

    @staticmethod
    def key(recipient: Recipient, tasks: Sequence[KeyTask], language: str) -> str:
        """The outbox key of one person's message: the same warnings never make a second message."""
        digest = hashlib.sha256("|".join(sorted(f"{t.task_id}:{t.state.value}:{t.due_at.isoformat()}"
                                                for t in tasks)).encode()).hexdigest()[:24]
        return f"key-task:{recipient.email.lower()}:{digest}:{language}"


@dataclass(frozen=True)
class WatchRun:
    """What one run of the watch needs: settings, the directory, its thresholds and its clock."""

    settings: Settings
    config: Config
    now: datetime  # aware, in OPSAUDIT_TIMEZONE
    directory: Directory
    policy: KeyTaskWatch

    def __repr__(self) -> str:
        return f"WatchRun(now {self.now.isoformat(timespec='minutes')})"

    @cached_property
    def store(self) -> Engine:
        from opsaudit.audit import audit_store

        return audit_store(self.settings)

    @cached_property
    def source(self) -> Source:
        from opsaudit.audit import open_source

        return open_source(self.settings, self.config)

    def run(self) -> WatchSummary:
        """Find the key tasks at risk, then claim, record and mail each new warning in one transaction."""
        tasks = at_risk(self.source, self.policy, self.now, self.settings.tz)
        with self.store.begin() as conn:
            return warn(conn, tasks, self.directory, self.policy, now=self.now, zone=self.settings.tz,
                        language=self.settings.language)


def prepare_run(settings: Settings, now: datetime | None = None) -> WatchRun:
    """The run at `now` (default: the clock), checked before anything is written: the tasks table
    has the contract's columns, the directory can be read, the store takes writes."""
    from opsaudit.store.migrate import require_writable
    from opsaudit.store.roles import load_directory

    # A plain datetime: Prefect's scheduled times are pendulum's, whose arithmetic drops a zoneinfo zone.
    clock = datetime.fromtimestamp((now or datetime.now(settings.tz)).timestamp(), settings.tz)
    config = settings.load_config()
    run = WatchRun(settings, config, clock, load_directory(settings, config),
                   config.audits.key_task_watch)
    problems = check_source(run.source, ("tasks",))
    if problems:
        raise SourceError(Message.of("error.database.problem", purpose=Message.of("error.purpose.database"),
                                     problem=problems[0]))
    require_writable(run.store)
    return run

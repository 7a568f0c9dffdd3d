"""The rectification lifecycle (interface.md; seed 000 §5.4, §6.2): states, actions, who may.

    open ─submit-plan─▶ plan_submitted ─approve-plan─▶ plan_approved ─start─▶ in_progress
      ▲  ◀─reject-plan──┘                                               ▲ (a general problem
      │                                                                 │  may start from open)
    reopen ◀─ closed ◀─close─ verified ◀─verify─ submitted ◀─submit─────┘ ◀─reject─ submitted

The audit team lead judges any finding not closed (seed 000 §6.1): `regrade` gives it another
severity, its deadlines recomputed from when it was found; `withdraw` ends it as `withdrawn`, out of
every count, score and follow-up. Submitting the plan of an important or major finding states its
root cause and how it is kept from coming back (§6.3).

A plan's steps ask others to act (ASKS): a plan submitted mails those who may approve it, a plan
rejected those who may submit it again, in the same transaction as the step (reports.plan_mail).

An action is checked (actor, state, role, its inputs) before anything is written; a refusal
raises `Refused`, one line in the reader's language, and changes nothing. A move is one
conditional UPDATE (on the status and owner read) and one event, in the caller's transaction, so
two people acting at once cannot both move the finding from the same state.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.checks.results import Severity
from opsaudit.config.models import Deadlines
from opsaudit.errors import InputError, LifecycleError, UsageError
from opsaudit.i18n.render import Message
from opsaudit.reports import plan_mail
from opsaudit.reports.plan_mail import Mailed, Mailing
from opsaudit.reports.recipients import Directory
from opsaudit.store.finding_views import SEVERITIES, code_of, get_finding
from opsaudit.store.findings import CLOSED, OPEN, WITHDRAWN, deadlines_for, event_row
from opsaudit.store.roles import Role, holders, roles_of
from opsaudit.store.schema import finding_events, findings, major_handling
from opsaudit.store.times import from_db, to_db

PLAN_SUBMITTED, PLAN_APPROVED = "plan_submitted", "plan_approved"
IN_PROGRESS, SUBMITTED, VERIFIED = "in_progress", "submitted", "verified"
# The states of a finding still being rectified; a withdrawn one is in none of them.
NOT_CLOSED = (OPEN, PLAN_SUBMITTED, PLAN_APPROVED, IN_PROGRESS, SUBMITTED, VERIFIED)
STATUSES = (*NOT_CLOSED, CLOSED, WITHDRAWN)
# The rectification is the owner's to deliver in these; its deadline runs (reminders, escalation,
# overdue in the scores) until the owner submits it.
WITH_OWNER = (OPEN, PLAN_SUBMITTED, PLAN_APPROVED, IN_PROGRESS)
# Submitting the plan of these states its root cause and prevention (seed 000 §6.3).
NEEDS_CAUSE = ("important", "major")

HEAD_OR_OWNER = (Role.OWNER, Role.DEPARTMENT_HEAD)
MANAGEMENT = (Role.OPERATIONS_MANAGER, Role.DEPUTY)


@dataclass(frozen=True)
class Action:
    """One row of interface.md's lifecycle table."""

    name: str
    sources: tuple[str, ...]
    target: str | None  # None: the status stays
    roles: tuple[Role, ...]
    needs: str | None = None  # the option the action cannot go without: note, evidence or to
    general_sources: tuple[str, ...] = ()  # further from-states for a general problem


ACTIONS: Mapping[str, Action] = {action.name: action for action in (
    Action("assign", NOT_CLOSED, None, (Role.OPERATIONS_MANAGER, Role.DEPARTMENT_HEAD), needs="to"),
    Action("submit-plan", (OPEN,), PLAN_SUBMITTED, HEAD_OR_OWNER),
    Action("approve-plan", (PLAN_SUBMITTED,), PLAN_APPROVED, MANAGEMENT),
    Action("reject-plan", (PLAN_SUBMITTED,), OPEN, MANAGEMENT, needs="note"),
    Action("start", (PLAN_APPROVED,), IN_PROGRESS, HEAD_OR_OWNER, general_sources=(OPEN,)),
    Action("submit", (IN_PROGRESS,), SUBMITTED, HEAD_OR_OWNER, needs="evidence"),
    Action("reject", (SUBMITTED,), IN_PROGRESS, (Role.AUDITOR,), needs="note"),
    Action("verify", (SUBMITTED,), VERIFIED, (Role.AUDITOR,)),
    Action("close", (VERIFIED,), CLOSED, (Role.AUDITOR,)),
    Action("reopen", (CLOSED,), OPEN, (Role.AUDITOR, Role.OPERATIONS_MANAGER), needs="note"),
    Action("regrade", NOT_CLOSED, None, (Role.AUDIT_LEAD,), needs="note"),
    Action("withdraw", NOT_CLOSED, WITHDRAWN, (Role.AUDIT_LEAD,), needs="note"),
)}
# The plan's steps that ask others to act next, and the action they are asked to take: its mail
# goes to whoever may take that action (reports.plan_mail).
ASKS: Mapping[str, str] = {"submit-plan": "approve-plan", "reject-plan": "submit-plan"}
# Seed 000 §6.2: the operations manager calls the special meeting and sets up the task force.
SPECIAL_MEETING = Action("special-meeting", NOT_CLOSED, None, MANAGEMENT)
TASK_FORCE = Action("task-force", NOT_CLOSED, None, MANAGEMENT)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")


class Refused(LifecycleError):
    """An action that the finding's state, the actor's role or its inputs do not allow."""

    def __init__(self, key: str, language: str, **values: Any) -> None:
        from opsaudit.i18n import text

        super().__init__(text(f"rectification.refused.{key}", language, **values))
        self.key = key


@dataclass(frozen=True)
class Request:
    """What a person asks: an action on a finding, with what the action needs."""

    action: str
    actor: str
    note: str | None = None
    evidence: str | None = None
    to: str | None = None
    severity: str | None = None  # regrade: the new severity, its code or its name in either language
    cause: str | None = None  # submit-plan: the root cause
    prevention: str | None = None  # submit-plan: what keeps it from coming back
    channel: str = "cli"  # the door it came through: cli or web (the system writes its own events)
    os_user: str | None = None  # who ran the command line, beside the --actor they named


@dataclass(frozen=True)
class Transition:
    """What an action did."""

    finding_id: str
    action: str
    actor: str
    from_status: str
    to_status: str
    owner_id: str | None
    previous_owner_id: str | None
    recorded: Mapping[str, Any] = field(default_factory=dict)  # the event's data: a regrade's change, a plan's cause
    mailed: Mailed = field(default_factory=Mailed)  # the mail a plan's step queued (ASKS)


def perform(conn: Connection, finding_id: str, request: Request, directory: Directory, *, now: datetime,
            language: str = "zh-CN", deadlines: Deadlines | None = None, mailing: Mailing | None = None
            ) -> Transition:
    """Carry out `request` on the finding (id or unambiguous prefix) or raise `Refused`. A regrade
    needs `deadlines` (thresholds.yaml `deadlines`), from which it recomputes the finding's. A plan's
    step (ASKS) queues its mail with `mailing` (by default, the environment's settings and configuration)."""
    action = ACTIONS.get(request.action)
    if action is None:
        raise UsageError(Message.of("error.action.unknown", action=request.action, actions=list(ACTIONS)))
    check_inputs(action, request)
    finding = get_finding(conn, finding_id)
    check_allowed(finding, action, request.actor, directory, language)
    data: dict[str, Any] = root_cause(finding, request, language) if action.name == "submit-plan" else {}
    regraded: dict[str, Any] = {}
    if action.name == "regrade":
        regraded, data = _regrade(finding, request, deadlines, now.tzinfo, language)
    evidence, evidence_facts = evidence_reference(request.evidence, language)
    owner = finding["owner_id"]
    if request.to is not None:
        owner = _new_owner(finding, request.to, directory, language)
    target = action.target or finding["status"]
    closed_at = to_db(now) if target == CLOSED else None
    moved = conn.execute(findings.update().where(
        findings.c.id == finding["id"], findings.c.status == finding["status"],
        findings.c.severity == finding["severity"],
        findings.c.owner_id.is_(None) if finding["owner_id"] is None else findings.c.owner_id == finding["owner_id"],
    ).values(status=target, owner_id=owner, updated_at=to_db(now), closed_at=closed_at, **regraded))
    if moved.rowcount != 1:
        raise Refused("changed", language)
    if evidence_facts:
        data["evidence_file"] = evidence_facts
    if owner != finding["owner_id"]:
        data["owner"] = {"from": finding["owner_id"], "to": owner}
    event_id = _append(conn, finding["id"], at=now, actor=request.actor, action=action.name,
                       from_status=finding["status"], to_status=target, note=request.note, evidence=evidence,
                       data=data, door=(request.channel, request.os_user))
    mailed = Mailed()
    if action.name in ASKS:
        step = plan_mail.Step(action.name, event_id, request.actor, request.note, data)
        mailed = plan_mail.queue(conn, finding, step, ACTIONS[ASKS[action.name]].roles, directory,
                                 mailing or Mailing.of(), now=now)
    return Transition(finding["id"], action.name, request.actor, finding["status"], target, owner,
                      finding["owner_id"], data, mailed)


def _append(conn: Connection, finding_id: str, *, evidence: str | None = None,
            door: tuple[str, str | None] = ("cli", None), **event: Any) -> int:
    """One event, and its id; a person's action may come with evidence, and came through a door
    (channel, operating-system user)."""
    channel, os_user = door
    inserted = conn.execute(finding_events.insert().values(**event_row(finding_id, **event), evidence=evidence,
                                                           channel=channel,
                                                           os_user=os_user if channel == "cli" else None))
    return int(inserted.inserted_primary_key[0])


def check_inputs(action: Action, request: Request) -> None:
    """A UsageError (exit 2) for an input the action cannot go without, or one it does not take."""
    if action.needs and not (getattr(request, action.needs) or "").strip():
        raise UsageError(Message.of("error.lifecycle.needs", action=action.name, option=f"--{action.needs}"))
    for option, value, only in (("--to", request.to, "assign"), ("--severity", request.severity, "regrade"),
                                ("--cause", request.cause, "submit-plan"),
                                ("--prevention", request.prevention, "submit-plan")):
        if value is not None and action.name != only:
            raise UsageError(Message.of("error.lifecycle.only_with", option=option, action=only))


def root_cause(finding: RowMapping, request: Request, language: str) -> dict[str, str]:
    """What a submitted plan keeps of the root cause and prevention; the plan of an important or
    major finding is refused without both (seed 000 §6.3)."""
    given = {"cause": (request.cause or "").strip(), "prevention": (request.prevention or "").strip()}
    missing = [f"--{name}" for name, value in given.items() if not value]
    if missing and finding["severity"] in NEEDS_CAUSE:
        raise Refused("needs_cause", language, severity=finding["severity"], options=missing)
    return {name: value for name, value in given.items() if value}


def _regrade(finding: RowMapping, request: Request, deadlines: Deadlines | None, zone: tzinfo | None,
             language: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the finding's new severity and deadlines, the event's record of the change, instants in
    `zone`): the deadlines run from when the finding was found, as when it was raised
    (store.findings.deadlines_for)."""
    if deadlines is None:
        raise ValueError("a regrade recomputes the deadlines: pass perform() the configured deadlines")
    given = (request.severity or "").strip()
    if not given:
        raise Refused("needs_severity", language, option="--severity")
    severity = code_of(given, SEVERITIES, "severity")
    if severity is None:
        raise Refused("unknown_severity", language, severity=given, allowed=list(SEVERITIES))
    if severity == finding["severity"]:
        raise Refused("same_severity", language, severity=severity)
    found_at = from_db(finding["found_at"], zone or UTC)
    assert found_at is not None
    due_at, plan_due_at = deadlines_for(Severity(severity), found_at, deadlines)
    values = {"severity": severity, "due_at": to_db(due_at), "plan_due_at": to_db(plan_due_at) if plan_due_at else None}
    changes: dict[str, Any] = {"severity": {"from": finding["severity"], "to": severity}}
    for name, moved in (("due_at", due_at), ("plan_due_at", plan_due_at)):
        changes[name] = {"from": from_db(finding[name], found_at.tzinfo), "to": moved}
    return values, changes


def check_allowed(finding: RowMapping, action: Action, actor: str, directory: Directory, language: str) -> None:
    """Refuse, naming why, when `actor` may not take `action` on the finding as it stands."""
    person = directory.people.get(actor)
    if person is None:
        raise Refused("unknown_actor", language, action=action.name, actor=actor)
    if not person.active:
        raise Refused("inactive_actor", language, action=action.name, actor=person.label(language))
    sources = action.sources + (action.general_sources if finding["severity"] == "general" else ())
    if finding["status"] not in sources:
        if finding["status"] in action.general_sources:
            raise Refused("plan_first", language, severity=finding["severity"])
        allowed = [_status_text(status, language) for status in sources]
        raise Refused("state", language, action=action.name, status=finding["status"], allowed=allowed)
    party = {"owner_id": finding["owner_id"], "department_id": finding["department_id"]}
    if not roles_of(directory, actor, **party) & set(action.roles):
        raise Refused("role", language, action=action.name, actor=person.label(language),
                      who=who_may(action.roles, directory, language, **party))


def who_may(roles: tuple[Role, ...], directory: Directory, language: str, *, owner_id: str | None,
            department_id: str | None) -> str:
    """`责任人王伟（S017）或责任部门负责人王芳（S010）`, in `language`."""
    from opsaudit.i18n import text

    parts = []
    for role in roles:
        people = holders(directory, role, owner_id=owner_id, department_id=department_id)
        role_text = text(f"rectification.role.{role.value}", language)
        parts.append(text("rectification.who", language, role=role_text, people=[p.label(language) for p in people])
                     if people else text("rectification.who_nobody", language, role=role_text))
    return text("rectification.or", language).join(parts)


def _status_text(status: str, language: str) -> str:
    from opsaudit.i18n import text

    return text(f"enum.finding_status.{status}", language)


def _new_owner(finding: RowMapping, staff_id: str, directory: Directory, language: str) -> str:
    person = directory.people.get(staff_id)
    if person is None:
        raise Refused("unknown_owner", language, owner=staff_id)
    if not person.active:
        raise Refused("inactive_owner", language, owner=person.label(language))
    if staff_id == finding["owner_id"]:
        raise Refused("same_owner", language, owner=person.label(language))
    return staff_id


def evidence_reference(given: str | None, language: str = "zh-CN") -> tuple[str | None, dict[str, Any] | None]:
    """(what the event keeps, facts about the file): a URL as given; a path made absolute, which
    must be a readable regular file, with its size and SHA-256 so that a later change to it shows."""
    if given is None or not given.strip():
        return None, None
    given = given.strip()
    if _URL.match(given):
        return given, None
    path = Path(given).expanduser().resolve()
    try:
        # Non-blocking, then checked before reading: a FIFO would wait for a writer, /dev/zero never ends.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise _unreadable(given, exc) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        from opsaudit.i18n import text

        raise InputError(text("validation.evidence.not_a_file", language, option="--evidence", given=given))
    with os.fdopen(descriptor, "rb") as handle:
        digest = hashlib.sha256()
        try:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        except OSError as exc:
            raise _unreadable(given, exc) from None
        size = os.fstat(descriptor).st_size
    return str(path), {"bytes": size, "sha256": digest.hexdigest()}


def _unreadable(given: str, exc: OSError) -> InputError:
    """The evidence file that cannot be read, and why (the system's words)."""
    return InputError(Message.of("error.lifecycle.unreadable_evidence", option="--evidence", given=given,
                                 reason=exc.strerror or str(exc)))


# --- a major finding's special meeting and task force ------------------------------------------

@dataclass(frozen=True)
class MajorHandling:
    """A major finding's special meeting and rectification task force, as recorded so far."""

    finding_id: str
    meeting_on: date | None
    meeting_note: str | None
    task_force_lead: str | None
    task_force_members: tuple[str, ...]


def record_special_meeting(conn: Connection, finding_id: str, *, actor: str, held_on: date, note: str | None,
                           directory: Directory, now: datetime, language: str = "zh-CN",
                           door: tuple[str, str | None] = ("cli", None)) -> MajorHandling:
    """Record the special meeting on a major finding (seed 000 §6.2)."""
    finding = _major(conn, finding_id, SPECIAL_MEETING, actor, directory, language)
    found_on = from_db(finding["found_at"], now.tzinfo).date()
    if held_on < found_on:
        raise Refused("meeting_before_found", language, held_on=held_on, found_on=found_on)
    if held_on > now.date():
        raise Refused("meeting_in_future", language, held_on=held_on, today=now.date())
    _save_handling(conn, finding["id"], actor, now, meeting_on=held_on, meeting_note=note)
    _append(conn, finding["id"], at=now, actor=actor, action=SPECIAL_MEETING.name, from_status=finding["status"],
            to_status=finding["status"], note=note, data={"held_on": held_on.isoformat()}, door=door)
    return major_handling_of(conn, [finding["id"]])[finding["id"]]


def record_task_force(conn: Connection, finding_id: str, *, actor: str, lead: str, members: tuple[str, ...],
                      directory: Directory, now: datetime, note: str | None = None,
                      language: str = "zh-CN", door: tuple[str, str | None] = ("cli", None)) -> MajorHandling:
    """Record (or replace) a major finding's rectification task force; the lead is a member."""
    finding = _major(conn, finding_id, TASK_FORCE, actor, directory, language)
    team = tuple(dict.fromkeys((lead, *members)))
    for staff_id in team:
        person = directory.people.get(staff_id)
        if person is None or not person.active:
            key = "unknown_member" if person is None else "inactive_member"
            raise Refused(key, language, member=person.label(language) if person else staff_id)
    _save_handling(conn, finding["id"], actor, now, task_force_lead=lead, task_force_members=list(team))
    _append(conn, finding["id"], at=now, actor=actor, action=TASK_FORCE.name, from_status=finding["status"],
            to_status=finding["status"], note=note, data={"lead": lead, "members": list(team)}, door=door)
    return major_handling_of(conn, [finding["id"]])[finding["id"]]


def _major(conn: Connection, finding_id: str, action: Action, actor: str, directory: Directory,
           language: str) -> RowMapping:
    finding = get_finding(conn, finding_id)
    if finding["severity"] != "major":
        raise Refused("not_major", language, severity=finding["severity"])
    check_allowed(finding, action, actor, directory, language)
    return finding


def _save_handling(conn: Connection, finding_id: str, actor: str, now: datetime, **values: Any) -> None:
    stamp = {"updated_at": to_db(now), "updated_by": actor}
    updated = conn.execute(major_handling.update().where(major_handling.c.finding_id == finding_id)
                           .values(**values, **stamp))
    if updated.rowcount == 0:
        conn.execute(major_handling.insert().values(finding_id=finding_id, **values, **stamp))


def major_handling_of(conn: Connection, finding_ids: list[str]) -> dict[str, MajorHandling]:
    """The special meeting and task force recorded for each of the findings that has any."""
    if not finding_ids:
        return {}
    rows = conn.execute(sa.select(major_handling).where(major_handling.c.finding_id.in_(finding_ids))).mappings()
    return {row["finding_id"]: MajorHandling(row["finding_id"], row["meeting_on"], row["meeting_note"],
                                             row["task_force_lead"], tuple(row["task_force_members"] or ()))
            for row in rows}

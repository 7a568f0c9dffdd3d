"""Reading findings back: filters, sorting and limits done in SQL, the interface's JSON shape with
texts rendered in the reader's language, and a finding's history."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.errors import InputError
from opsaudit.i18n.render import Message
from opsaudit.store.findings import ENDED, MANUAL, WITHDRAWN, of_run
from opsaudit.store.schema import finding_events, findings
from opsaudit.store.times import from_db, to_db

# interface.md, "JSON of a finding": these keys, in this order.
FINDING_KEYS = (
    "id", "audit", "audit_run_id", "area", "rule_id", "period", "entity_type", "entity_id", "department_id",
    "severity", "status", "title", "description", "observed", "target", "population", "evidence",
    "found_at", "due_at", "owner_id", "recurring",
)
SEVERITIES = ("major", "important", "general")
STATUSES = ("open", "plan_submitted", "plan_approved", "in_progress", "submitted", "verified", "closed", WITHDRAWN)
# --sort: what each key orders by; the most severe first breaks every tie.
_SEVERITY_RANK = sa.case(*((findings.c.severity == s, i) for i, s in enumerate(SEVERITIES)), else_=len(SEVERITIES))
SORTS: dict[str, tuple[Any, ...]] = {
    "severity": (_SEVERITY_RANK, findings.c.due_at),
    "due": (findings.c.due_at, _SEVERITY_RANK),
    "found": (findings.c.found_at.desc(), _SEVERITY_RANK),
    "period": (findings.c.period.desc(), _SEVERITY_RANK),
    "department": (findings.c.department_id, _SEVERITY_RANK),
    "owner": (findings.c.owner_id, _SEVERITY_RANK),
    "rule": (findings.c.rule_id, _SEVERITY_RANK),
}


@dataclass(frozen=True)
class FindingFilter:
    """What `findings list` asks for; every value already validated. `overdue_at`: only findings
    past their deadline at that instant and not closed."""

    status: str | None = None
    severity: str | None = None
    area: str | None = None
    audit: str | None = None
    audit_run: str | None = None
    department: str | None = None
    owner: str | None = None
    rule: str | None = None
    period: str | None = None
    overdue_at: datetime | None = None
    recurring: bool = False

    def where(self) -> list[sa.ColumnElement[bool]]:
        conditions = [findings.c[column] == value for column, value in (
            ("status", self.status), ("severity", self.severity), ("area", self.area), ("audit", self.audit),
            ("department_id", self.department), ("owner_id", self.owner),
            ("period", self.period)) if value]
        if self.audit_run:
            conditions.append(of_run(self.audit_run))
        if self.rule:
            # A rule id, or the start of one ending with a dot: `cs.` is every customer-service rule.
            conditions.append(findings.c.rule_id.startswith(self.rule) if self.rule.endswith(".")
                              else findings.c.rule_id == self.rule)
        if self.overdue_at is not None:
            conditions += [findings.c.due_at < to_db(self.overdue_at), findings.c.status.not_in(ENDED)]
        if self.recurring:
            conditions.append(findings.c.recurring.is_(True))
        return conditions


def code_of(value: str, codes: tuple[str, ...], enum: str) -> str | None:
    """`value` as one of `codes`: the code itself or its name in either language, in any case (重大问题,
    重大, major); a severity may leave out its 问题. None when it is none of them."""
    from opsaudit.i18n import LANGUAGES, text

    wanted = value.strip().lower()
    for code in codes:
        names = {code, *(text(f"enum.{enum}.{code}", language).lower() for language in LANGUAGES)}
        if wanted in names or (enum == "severity" and wanted + "问题" in names):
            return code
    return None


def finding_json(row: RowMapping, zone: tzinfo, language: str = "zh-CN") -> dict[str, Any]:
    """A finding exactly as interface.md shows it; instants in OPSAUDIT_TIMEZONE, title and
    description rendered from its facts in `language`."""
    values = dict(row)
    values["title"], values["description"] = finding_text(row, language)
    for name in ("found_at", "due_at"):
        values[name] = instant(values[name], zone)
    values["recurring"] = bool(values["recurring"])
    return {key: values[key] for key in FINDING_KEYS}


def instant(moment: datetime | None, zone: tzinfo) -> str | None:
    """A stored instant as ISO 8601 in `zone`."""
    local = from_db(moment, zone)
    return local.isoformat(timespec="seconds") if local else None


def finding_text(row: RowMapping, language: str) -> tuple[str, str]:
    """The finding's title and description in `language`. A manual finding, and one stored before
    facts were kept (store revision 0001), has only the texts it was stored with: an auditor's own
    words."""
    from opsaudit.i18n import render_finding

    if row["facts"] is None:
        return row["title"] or row["rule_id"], row["description"] or ""
    text = render_finding(row["rule_id"], row["entity_type"], {**row["facts"], "entity_id": row["entity_id"]},
                          language)
    return text.title, text.description


def list_findings(conn: Connection, where: FindingFilter | None = None, *, sort: str = "severity",
                  limit: int | None = None) -> list[RowMapping]:
    """The findings that match, in the order asked, at most `limit` of them."""
    return list(iter_findings(conn, where, sort=sort, limit=limit))


def iter_findings(conn: Connection, where: FindingFilter | None = None, *, sort: str = "severity",
                  limit: int | None = None, batch: int = 500) -> Iterator[RowMapping]:
    """list_findings, fetched `batch` rows at a time: a run's thousands of findings, each with its
    evidence, never all in memory at once."""
    query = sa.select(findings).where(*(where or FindingFilter()).where())
    query = query.order_by(*SORTS[sort], findings.c.period, findings.c.rule_id, findings.c.entity_id,
                             findings.c.found_at, findings.c.id)
    if limit is not None:
        query = query.limit(limit)
    yield from conn.execute(query, execution_options={"yield_per": batch}).mappings()


def count_findings(conn: Connection, where: FindingFilter | None = None) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(findings)
                            .where(*(where or FindingFilter()).where())).scalar_one())


def resolve_run(conn: Connection, prefix: str) -> str:
    """The audit run id that `prefix` starts, as `findings show` takes a prefix of a finding's id."""
    found = conn.execute(sa.select(findings.c.audit_run_id).where(findings.c.audit_run_id.startswith(prefix))
                         .distinct().limit(2)).scalars().all()
    if not found:
        raise InputError(Message.of("error.run.no_findings", prefix=prefix))
    if len(found) > 1:
        raise InputError(Message.of("error.run.ambiguous", prefix=prefix))
    return found[0]


def get_finding(conn: Connection, finding_id: str) -> RowMapping:
    """One finding by id or by an unambiguous prefix of it."""
    rows = conn.execute(sa.select(findings).where(findings.c.id.startswith(finding_id)).limit(2)).mappings().all()
    if not rows:
        raise InputError(Message.of("error.finding.unknown", id=finding_id))
    if len(rows) > 1:
        raise InputError(Message.of("error.finding.ambiguous", id=finding_id))
    return rows[0]


EVENT_KEYS = ("at", "actor", "action", "from_status", "to_status", "note", "evidence")


def events_of(conn: Connection, finding_id: str, zone: tzinfo) -> list[dict[str, Any]]:
    """The finding's history, oldest first: interface.md's event keys (EVENT_KEYS), then the run
    that wrote it and the event's data, for people."""
    rows = conn.execute(sa.select(finding_events).where(finding_events.c.finding_id == finding_id)
                        .order_by(finding_events.c.id)).mappings().all()
    return [{"at": instant(row["at"], zone), "actor": row["actor"], "action": row["action"],
             "from_status": row["from_status"], "to_status": row["to_status"], "note": row["note"],
             "evidence": row["evidence"], "audit_run_id": row["audit_run_id"], "data": row["data"],
             "channel": event_channel(row), "os_user": row["os_user"], "id": row["id"]}
            for row in rows]


def event_channel(row: RowMapping) -> str:
    """web, cli or system. Events older than store revision 0006 are never rewritten (append-only);
    then the command line and the system were the only doors."""
    if row["channel"]:
        return row["channel"]
    return "system" if row["actor"] == "system" else "cli"


def event_json(event: dict[str, Any]) -> dict[str, Any]:
    """One event as `findings show --format json` gives it: interface.md's keys, the door it came
    through, then what the action recorded, under keys that say what it is: the old and new owner,
    the special meeting's day, the task force, the evidence file's size and digest."""
    data = event.get("data") or {}
    shown = {**{key: event[key] for key in EVENT_KEYS}, "channel": event["channel"]}
    if event["channel"] == "cli":
        shown["os_user"] = event.get("os_user")
    if isinstance(data.get("owner"), dict):
        shown["owner_from"], shown["owner_to"] = data["owner"].get("from"), data["owner"].get("to")
    if data.get("held_on"):
        shown["held_on"] = data["held_on"]
    if data.get("lead"):
        shown["task_force"] = {"lead": data["lead"], "members": list(data.get("members") or [])}
    if isinstance(data.get("evidence_file"), dict):
        shown["evidence_file"] = {"bytes": data["evidence_file"].get("bytes"),
                                  "sha256": data["evidence_file"].get("sha256")}
    if event["action"] == "regrade" and isinstance(data.get("severity"), dict):
        shown["severity_from"], shown["severity_to"] = data["severity"].get("from"), data["severity"].get("to")
        shown["due_at_from"], shown["due_at_to"] = data["due_at"].get("from"), data["due_at"].get("to")
    for name in ("cause", "prevention"):
        if data.get(name):
            shown[name] = data[name]
    if data.get("attachments"):
        shown["attachments"] = data["attachments"]
    return shown


def history(conn: Connection, finding_id: str, zone: tzinfo) -> list[dict[str, Any]]:
    """The finding's events, oldest first, in interface.md's shape (`findings show --format json`)."""
    return [{key: event[key] for key in EVENT_KEYS} for event in events_of(conn, finding_id, zone)]


# --- the root cause recorded the last time ----------------------------------------------------

def last_cause(conn: Connection, row: RowMapping, zone: tzinfo) -> dict[str, Any] | None:
    """For a recurring finding, the root cause and prevention given with the latest plan submitted
    for an earlier finding of the same rule and entity: `{"finding_id", "at", "cause", "prevention"}`."""
    if not row["recurring"]:
        return None
    earlier = sa.select(findings.c.id).where(
        findings.c.rule_id == row["rule_id"], findings.c.entity_type == row["entity_type"],
        findings.c.entity_id == row["entity_id"], findings.c.found_at < row["found_at"])
    plans = conn.execute(sa.select(finding_events.c.finding_id, finding_events.c.at, finding_events.c.data)
                         .where(finding_events.c.finding_id.in_(earlier), finding_events.c.action == "submit-plan")
                         .order_by(finding_events.c.at.desc(), finding_events.c.id.desc())).all()
    for finding_id, at, data in plans:
        if (data or {}).get("cause"):
            return {"finding_id": finding_id, "at": instant(at, zone), "cause": data["cause"],
                    "prevention": data.get("prevention")}
    return None


# --- what a report lists beside its own findings ----------------------------------------------

@dataclass(frozen=True)
class Withdrawal:
    """A finding the audit team lead withdrew: who, when, and why."""

    finding: RowMapping
    by: str
    at: datetime
    reason: str | None


def withdrawn_in(conn: Connection, *, run_id: str, audit: str, areas: Sequence[str], start: datetime,
                 end: datetime) -> list[Withdrawal]:
    """The findings a report of run `run_id` lists as withdrawn, with their reasons, oldest first:
    its own, and those of its audit and the manual findings of `areas` withdrawn in [start, end)
    (aware instants). One statement."""
    ours = sa.or_(findings.c.audit == audit, sa.and_(findings.c.audit == MANUAL, findings.c.area.in_(areas)))
    rows = conn.execute(
        sa.select(findings, finding_events.c.actor.label("withdrawn_by"), finding_events.c.at.label("withdrawn_at"),
                  finding_events.c.note.label("withdrawn_note"))
        .join(finding_events, finding_events.c.finding_id == findings.c.id)
        .where(findings.c.status == WITHDRAWN, finding_events.c.action == "withdraw",
               sa.or_(of_run(run_id), sa.and_(ours, finding_events.c.at >= to_db(start),
                                              finding_events.c.at < to_db(end))))
        .order_by(finding_events.c.at, findings.c.id)).mappings().all()
    latest = {row["id"]: row for row in rows}  # withdrawn once; the latest event, should history hold more
    return [Withdrawal(row, row["withdrawn_by"], from_db(row["withdrawn_at"], start.tzinfo) or start,
                       row["withdrawn_note"]) for row in latest.values()]


def manual_in(conn: Connection, areas: Sequence[str], start: datetime, end: datetime) -> list[RowMapping]:
    """The manual findings of `areas` found in [start, end) and not withdrawn, most severe first:
    what a periodic report of those areas lists beside the findings of its own run."""
    return list(conn.execute(sa.select(findings).where(
        findings.c.audit == MANUAL, findings.c.area.in_(areas), findings.c.status != WITHDRAWN,
        findings.c.found_at >= to_db(start), findings.c.found_at < to_db(end),
    ).order_by(_SEVERITY_RANK, findings.c.found_at, findings.c.id)).mappings())

"""Manual findings (seed 000 §5.2): a problem an auditor finds on site, in an interview or in
documents, recorded by hand with its evidence.

Rule `manual`, audit `manual`. The manual findings of a month are held by one run of the `manual`
audit for that month (`store.runs.holding_run`): `findings list --audit-run` lists them as a run's,
the circulation counts them among the month's audits and the scores among the month's problems.
An auditor records as many as they found: several problems of one department in one month are
several findings (the store's key binds only the rules' findings, revision 0009).
A manual finding's period is the month it was found in; it is listed in the next report of its
area's periodic audit, the one whose period holds the day it was found (`reports.report_data`).
From then on it is a finding like any other: owned by its department's head, due by its
severity's deadlines, alerted at once when major, through the same lifecycle.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy.engine import Connection

from opsaudit.checks.results import Severity
from opsaudit.config.loader import Config
from opsaudit.config.models import Deadlines
from opsaudit.periods import containing
from opsaudit.reports.alerts import AlertSummary, alert_major_findings
from opsaudit.reports.recipients import Directory
from opsaudit.settings import Settings
from opsaudit.store.finding_views import SEVERITIES, code_of, get_finding
from opsaudit.store.findings import MANUAL, OPEN, deadlines_for, event_row
from opsaudit.store.lifecycle import Refused, evidence_reference, who_may
from opsaudit.store.roles import Role, roles_of
from opsaudit.store.runs import holding_run
from opsaudit.store.schema import finding_events, findings
from opsaudit.store.times import to_db

# The areas of seed 000 §3 an auditor examines by hand.
AREAS = ("customer_service", "execution", "planning", "data_analysis")
# interface.md, "JSON of a finding": what a finding may be about.
ENTITY_TYPES = ("department", "agent", "task", "plan", "plan_target", "adjustment", "report", "deliverable",
                "reported_metric", "ticket", "table_column", "company")


@dataclass(frozen=True)
class ManualFinding:
    """What an auditor records: the problem in their words, where it is, how severe, the evidence
    (paths of files, or URLs). The entity defaults to the department itself."""

    actor: str
    area: str
    department: str
    severity: str
    title: str
    description: str
    entity_type: str | None = None
    entity_id: str | None = None
    evidence: tuple[str, ...] = ()
    channel: str = "cli"  # the door it came through: cli or web
    os_user: str | None = None


def record_manual_finding(conn: Connection, request: ManualFinding, directory: Directory, *, deadlines: Deadlines,
                          config_hash: str, now: datetime, zone: tzinfo, language: str = "zh-CN") -> str:
    """Record the finding, open, owned and due, with its `raised` event by the auditor; its id.
    Refused (one line, nothing written) when the actor is no active auditor of the operations
    department or a value is not one the store knows."""
    _check_auditor(directory, request.actor, request.department, language)
    area = code_of(request.area, AREAS, "area")
    if area is None:
        raise Refused("unknown_area", language, area=request.area, allowed=list(AREAS))
    severity = code_of(request.severity, SEVERITIES, "severity")
    if severity is None:
        raise Refused("unknown_severity", language, severity=request.severity, allowed=list(SEVERITIES))
    department = directory.departments.get(request.department)
    if department is None:
        raise Refused("unknown_department", language, department=request.department)
    entity_type, entity_id = _entity(request, language)
    title, description = _words(request, language)
    attachments = [_attachment(given, language) for given in request.evidence]
    local = now.astimezone(zone)
    period = containing("month", local.replace(tzinfo=None))
    run = holding_run(conn, audit=MANUAL, period=period, config_hash=config_hash)
    due_at, plan_due_at = deadlines_for(Severity(severity), local, deadlines)
    finding_id = str(uuid.uuid4())
    conn.execute(findings.insert().values(
        id=finding_id, audit=MANUAL, audit_run_id=run.id, area=area, rule_id=MANUAL, period=period.label,
        entity_type=entity_type, entity_id=entity_id, department_id=department.department_id, severity=severity,
        status=OPEN, title=title, description=description, observed=None, target=None, population=None,
        evidence={"attachments": attachments, "config_hash": config_hash}, found_at=to_db(local),
        due_at=to_db(due_at), plan_due_at=to_db(plan_due_at) if plan_due_at else None, owner_id=department.head_id,
        recurring=False, updated_at=to_db(local), closed_at=None, facts=None, last_period=period.label))
    event = event_row(finding_id, at=local, actor=request.actor, action="raised", to_status=OPEN, run_id=run.id,
                      data={"severity": severity, "period": period.label, "manual": True,
                            "attachments": attachments})
    conn.execute(finding_events.insert().values(**event, channel=request.channel,
                                                os_user=request.os_user if request.channel == "cli" else None))
    return finding_id


def add_manual_finding(conn: Connection, request: ManualFinding, directory: Directory, settings: Settings,
                       config: Config, *, now: datetime, language: str = "zh-CN") -> tuple[str, AlertSummary]:
    """Record the finding and, when it is major, enqueue its alert to the operations manager and
    the others told of a major problem at once (reports.alerts); the caller delivers the outbox
    after committing (reports.delivery.deliver_pending)."""
    finding_id = record_manual_finding(conn, request, directory, deadlines=config.thresholds.deadlines,
                                       config_hash=config.digest(), now=now, zone=settings.tz, language=language)
    return finding_id, alert_if_major(conn, finding_id, directory, settings, config, now=now)


def alert_if_major(conn: Connection, finding_id: str, directory: Directory, settings: Settings, config: Config, *,
                   now: datetime) -> AlertSummary:
    """Enqueue the immediate alert of a finding that is now major and was never alerted (a manual
    finding, or one the audit lead regraded to major), as an audit alerts its run's."""
    row = get_finding(conn, finding_id)
    if row["severity"] != "major":
        return AlertSummary()
    return alert_major_findings(conn, directory, config.recipients, row["audit_run_id"],
                                deadlines=config.thresholds.deadlines, language=settings.language, zone=settings.tz,
                                now=now, settings=settings)


def _check_auditor(directory: Directory, actor: str, department: str, language: str) -> None:
    person = directory.people.get(actor)
    if person is None:
        raise Refused("unknown_actor", language, action="add", actor=actor)
    if not person.active:
        raise Refused("inactive_actor", language, action="add", actor=person.label(language))
    if Role.AUDITOR not in roles_of(directory, actor, owner_id=None, department_id=department):
        raise Refused("role", language, action="add", actor=person.label(language),
                      who=who_may((Role.AUDITOR,), directory, language, owner_id=None, department_id=department))


def _entity(request: ManualFinding, language: str) -> tuple[str, str]:
    """The entity the problem is about: the department itself unless both are given."""
    entity_type = (request.entity_type or "").strip()
    entity_id = (request.entity_id or "").strip()
    if not entity_type and not entity_id:
        return "department", request.department
    if not entity_type or not entity_id:
        raise Refused("entity_pair", language, options=["--entity-type", "--entity-id"])
    if entity_type not in ENTITY_TYPES:
        raise Refused("unknown_entity_type", language, entity_type=entity_type, allowed=list(ENTITY_TYPES))
    return entity_type, entity_id


def _words(request: ManualFinding, language: str) -> tuple[str, str]:
    title, description = request.title.strip(), request.description.strip()
    for option, value in (("--title", title), ("--description", description)):
        if not value:
            raise Refused("needs_text", language, option=option)
    return title, description


def _attachment(given: str, language: str) -> dict[str, Any]:
    """A file by its absolute path with its size and SHA-256, or a URL as given."""
    kept, facts = evidence_reference(given, language)
    if kept is None:
        raise Refused("needs_text", language, option="--evidence")
    return {"evidence": kept, **(facts or {})}


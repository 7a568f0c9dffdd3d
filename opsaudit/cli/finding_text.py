"""`findings show` as text: one finding laid out for a manager and for the auditor who checks it.

Every label comes from the message catalogue; figures, dates, enumerations and periods are
formatted for the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import typer
from sqlalchemy.engine import RowMapping

from opsaudit.cli.app import console
from opsaudit.i18n import entity_reference, format_value, has_message, text
from opsaudit.i18n.figures import finding_figures as _figures
from opsaudit.i18n.findings import ENUM_OF_COLUMN, labelled

# The contract tables a sample's columns come from, in the order they are looked up.
SAMPLE_TABLES = ("tickets", "qa_reviews", "tasks", "plan_targets", "plans", "analysis_reports")
# Sample columns that hold an enumeration, and which.


def print_finding(values: dict[str, Any], row: RowMapping, events: list[dict[str, Any]], handling: str,
                  language: str, people: Mapping[str, str], previous_cause: Mapping[str, Any] | None = None) -> None:
    """The finding, the root cause recorded the last time it was found (a recurring finding), then
    its history with each person by name (`people`: staff_id → name)."""
    out = console()
    facts = row["facts"] or {}
    out.print(text("cli.show.heading", language, id=values["id"]), style="bold", highlight=False)
    out.print(" · ".join(_state(values, language)), highlight=False)
    out.print()
    _section(text("cli.show.what", language), [values["title"], values["description"],
                                              *_figures(values, facts, language)])
    _fields(values, row, handling, language)
    if previous_cause:
        _section(text("judgment.show.previous_cause", language, id=previous_cause["finding_id"][:8],
                      at=previous_cause["at"]), cause_lines(previous_cause, language))
    _evidence(values, language)
    _history(events, language, people)


def cause_lines(recorded: Mapping[str, Any], language: str) -> list[str]:
    """`根本原因：…` and `预防措施：…`, as a plan recorded them."""
    return [_pair(text(f"judgment.field.{name}", language), recorded[name], language)
            for name in ("cause", "prevention") if recorded.get(name)]


def _section(heading: str, lines: list[str]) -> None:
    out = console()
    out.print(heading, style="bold", highlight=False)
    for line in lines:
        out.print(f"  {line}", highlight=False, markup=False)
    out.print()


def _state(values: dict[str, Any], language: str) -> list[str]:
    state = [values["severity_label"], values["status_label"], format_value(values["period"], "period", language)]
    if values["recurring"]:
        state.append(text("field.recurring", language))
    return state


def _pair(label: str, value: Any, language: str) -> str:
    return f"{label}：{value}" if language == "zh-CN" else f"{label}: {value}"


def _fields(values: dict[str, Any], row: RowMapping, handling: str, language: str) -> None:
    audit_name = format_value(row["audit"], "enum.audit", language)
    audit = text("label.named", language, name=audit_name, id=row["audit"])
    entity = entity_reference(row["entity_type"], row["entity_id"], language)
    fields = [("audit", audit), ("rule", row["rule_id"]), ("entity", entity),
              ("department", labelled(values["department_name"], values["department_id"], language)),
              ("owner", labelled(values["owner_name"], values["owner_id"], language)),
              ("found_at", format_value(values["found_at"], "datetime", language)),
              ("plan_due_at", format_value(values["plan_due_at"], "date", language) if values["plan_due_at"] else None),
              ("due_at", format_value(values["due_at"], "date", language)), ("handling", handling),
              ("audit_run", row["audit_run_id"])]
    out = console()
    for key, value in fields:
        if value:
            out.print(_pair(text(f"field.{key}", language), value, language), highlight=False, markup=False)
    out.print()


def _evidence(values: dict[str, Any], language: str) -> None:
    evidence = values["evidence"] or {}
    out = console()
    out.print(text("field.evidence", language), style="bold", highlight=False)
    queries = [("field.query", evidence.get("query"))]
    if evidence.get("records_query") != evidence.get("query"):
        queries.append(("cli.show.records_query", evidence.get("records_query")))
    for label, sql in queries:
        if sql:
            out.print(f"  {text(label, language)}", highlight=False)
            # The SQL as it is, to copy and rerun: never wrapped or styled.
            typer.echo("    " + sql.replace("\n", "\n    "))
    for attachment in evidence.get("attachments") or []:
        out.print(f"  {attachment_text(attachment, language)}", highlight=False, markup=False)
    samples = evidence.get("samples") or []
    if samples:
        out.print(f"  {text('cli.show.samples', language, count=len(samples))}", highlight=False)
        for sample in samples:
            # The finding's own agent or department says nothing new beside each of its records.
            shown = {key: value for key, value in sample.items() if value != values["entity_id"]}
            out.print(f"    {sample_line(shown, language)}", highlight=False, markup=False)
    elif evidence.get("sample_ids"):
        ids = format_value(evidence["sample_ids"], "list", language)
        out.print("  " + _pair(text("field.samples", language), ids, language), highlight=False, markup=False)
    out.print()


def sample_line(sample: dict[str, Any], language: str) -> str:
    """A failing record with its labelled values: `T0001  渠道：电话；受理时间：2026-10-03 09:00`."""
    separator = "；" if language == "zh-CN" else "; "
    parts = [_pair(_column_label(key, language), _sample_value(key, value, language), language)
             for key, value in sample.items() if key != "sample_id"]
    return f"{sample['sample_id']}  {separator.join(parts)}"


def _column_label(column: str, language: str) -> str:
    for table in SAMPLE_TABLES:
        key = f"contract.column.{table}.{column}"
        if has_message(key, language):
            return text(key, language)
    return column


def _sample_value(column: str, value: Any, language: str) -> str:
    if value is None:
        return format_value(None, "text", language)
    # The column's enumeration in the first sample table that has it, as its label is looked up.
    for enum in (ENUM_OF_COLUMN[(table, column)] for table in SAMPLE_TABLES if (table, column) in ENUM_OF_COLUMN):
        if has_message(f"enum.{enum}.{value}", language):
            return format_value(value, f"enum.{enum}", language)
    if column.endswith("_at"):
        return format_value(value, "datetime", language)
    if isinstance(value, bool):
        return format_value(value, "enum.yes_no", language)
    if isinstance(value, (int, float)):
        return format_value(value, "number", language)
    return str(value)


def _history(events: list[dict[str, Any]], language: str, people: Mapping[str, str]) -> None:
    out = console()
    out.print(text("cli.show.history", language), style="bold", highlight=False)
    separator = "；" if language == "zh-CN" else "; "
    for event in events:
        actor = text("cli.show.system", language) if event["actor"] == "system" else \
            person(event["actor"], language, people)
        action = format_value(event["action"], "enum.action", language)
        change = f" → {format_value(event['to_status'], 'enum.finding_status', language)}" \
            if event["to_status"] and event["to_status"] != event["from_status"] else ""
        parts = [_changes(event, language), *event_details(event, language, people), event["note"] or "",
                 evidence_text(event, language)]
        detail = separator.join(part for part in parts if part)
        when = format_value(event["at"], "datetime", language)
        door = channel_text(event, language)
        out.print(f"  {when}  {actor}  {action}{change}  {detail}  {door}".rstrip(), highlight=False, markup=False)


def person(staff_id: str | None, language: str, people: Mapping[str, str]) -> str:
    """王芳（S007）; the id alone when the staff table does not name it; nobody: 尚未指定."""
    return labelled(people.get(staff_id or ""), staff_id, language) or text("alert.unassigned", language)


def event_details(event: dict[str, Any], language: str, people: Mapping[str, str]) -> list[str]:
    """What an action recorded beyond its note: the old and new owner, the special meeting's day,
    the task force's lead and members."""
    data = event.get("data") or {}
    details = []
    if isinstance(data.get("owner"), dict):
        details.append(text("history.owner", language, old=person(data["owner"].get("from"), language, people),
                            new=person(data["owner"].get("to"), language, people)))
    if data.get("held_on"):
        details.append(text("rectification.major.meeting", language, date=data["held_on"]))
    if data.get("lead"):
        details.append(text("rectification.major.task_force", language, lead=person(data["lead"], language, people),
                            members=[person(member, language, people) for member in data.get("members") or []]))
    if event["action"] == "regrade" and isinstance(data.get("severity"), dict):
        details.append(text("judgment.history.regraded", language, old=data["severity"].get("from"),
                            new=data["severity"].get("to"), due=data["due_at"].get("to")))
    details += cause_lines(data, language)
    if event["action"] == "raised" and data.get("attachments"):
        details.append(text("judgment.history.attachments", language, count=len(data["attachments"])))
    return details


def attachment_text(attachment: Mapping[str, Any], language: str) -> str:
    """A manual finding's evidence: a file with its size and digest, or a URL."""
    if attachment.get("sha256"):
        return text("history.evidence_file", language, evidence=attachment["evidence"], size=attachment.get("bytes"),
                    digest=attachment["sha256"])
    return text("history.evidence", language, evidence=attachment["evidence"])


def evidence_text(event: dict[str, Any], language: str) -> str:
    """The evidence given with the action, with its size and digest when it was a file."""
    if not event["evidence"]:
        return ""
    kept = (event.get("data") or {}).get("evidence_file")
    if isinstance(kept, dict):
        return text("history.evidence_file", language, evidence=event["evidence"], size=kept.get("bytes"),
                    digest=kept.get("sha256"))
    return text("history.evidence", language, evidence=event["evidence"])


def channel_text(event: dict[str, Any], language: str) -> str:
    """`（网页）`, `（命令行，系统用户 ops）`: the door a person's event came through."""
    if event["channel"] == "system":
        return ""
    if event["channel"] == "cli" and event.get("os_user"):
        return text("channel.cli_user", language, user=event["os_user"])
    return text(f"channel.{event['channel']}", language)


def _changes(event: dict[str, Any], language: str) -> str:
    """What a recheck changed, in words: 问题等级由一般问题变为重大问题."""
    data = event.get("data") or {}
    if event["action"] != "rechecked":
        return ""
    separator = "；" if language == "zh-CN" else "; "
    formats = {"severity": "enum.severity", "observed": "number", "population": "count"}
    parts = [text("cli.show.change", language, field=text(f"field.{name}", language),
                  old=format_value(change["from"], formats[name], language),
                  new=format_value(change["to"], formats[name], language))
             for name, change in data.items() if name in formats and isinstance(change, dict)]
    seen = text("cli.show.period_seen", language, period=data["period"]) if data.get("period") else ""
    return text("cli.show.rechecked", language, changes=separator.join(parts)) + seen if parts else ""

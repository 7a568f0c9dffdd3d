"""A finding's title and description rendered from its facts, in the reader's language.

The catalogue holds, per rule id (its dots are the YAML nesting: `rule.cs.satisfaction_rate`):
`title` (the problem, 客户满意度未达标), `recommendation`, and `description.<shape>` where the
shape is `aggregate` (department, agent or whole company, introduced by a subject) or a record
entity type (task, plan, ...). A shape may split into variants chosen from the facts (a reason,
whether the task is still open, ...), with `default` for any other case. A dq.* finding with a
table-level reason (missing table, no rows, ...) reads `dq_reason.<reason>` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opsaudit.i18n.catalogue import CatalogueError, catalogue, check_language, has_message
from opsaudit.i18n.render import format_value, text

AGGREGATE_ENTITIES = ("department", "agent", "company")
_TITLE = ".title"


@dataclass(frozen=True)
class FindingText:
    """What a person reads about a finding."""

    title: str
    description: str


class UnknownRuleError(CatalogueError):
    """A rule id the message catalogue has no text for."""


def rule_ids(language: str = "zh-CN") -> tuple[str, ...]:
    """Every rule id the catalogue has a title for."""
    return tuple(sorted(key[len("rule."):-len(_TITLE)] for key in catalogue(language)
                        if key.startswith("rule.") and key.endswith(_TITLE)))


def render_finding(rule_id: str, entity_type: str, facts: Mapping[str, Any], language: str, *,
                   entity_id: str | None = None) -> FindingText:
    """The title and description of a finding of `rule_id` on an `entity_type`, from its facts.

    `entity_id` defaults to `facts["entity_id"]`. Missing facts render as `—`; an unknown rule id
    raises UnknownRuleError.
    """
    check_language(language)
    _require_rule(rule_id, language)
    values = derived_values(entity_type, {**facts, "entity_id": entity_id or facts.get("entity_id")}, language)
    reason = _dq_reason(rule_id, values, language)
    if reason is not None:
        return FindingText(text(f"{reason}.title", language, **values),
                           text(f"{reason}.description", language, **values))
    key = description_key(rule_id, entity_type, values, language)
    return FindingText(text(f"rule.{rule_id}.title", language, **values), text(key, language, **values))


def recommendation(rule_id: str, language: str) -> str:
    """The rectification recommendation for problems of `rule_id`, for reports."""
    check_language(language)
    _require_rule(rule_id, language)
    return text(f"rule.{rule_id}.recommendation", language)


def _require_rule(rule_id: str, language: str) -> None:
    if not has_message(f"rule.{rule_id}.title", language):
        raise UnknownRuleError(f"unknown rule {rule_id!r}: the {language} message catalogue has no text for it")


def description_key(rule_id: str, entity_type: str, facts: Mapping[str, Any], language: str = "zh-CN") -> str:
    """The catalogue key of the description this finding reads, the variant chosen from its facts."""
    shapes = [f"rule.{rule_id}.description.{entity_type}"]
    if entity_type in AGGREGATE_ENTITIES:
        shapes.append(f"rule.{rule_id}.description.aggregate")
    variant = VARIANTS.get(rule_id, _no_variant)(facts)
    messages = catalogue(language)
    for shape in shapes:
        for key in (f"{shape}.{variant}", f"{shape}.default", shape):
            if key in messages:
                return key
    raise UnknownRuleError(f"rule {rule_id!r} has no description for a {entity_type} in the {language} catalogue")


def _dq_reason(rule_id: str, values: Mapping[str, Any], language: str) -> str | None:
    """`dq_reason.<reason>` when a dq finding says why the data could not be checked at all."""
    reason = _reason(values)
    if not rule_id.startswith("dq.") or reason is None:
        return None
    key = f"dq_reason.{reason}"
    return key if has_message(f"{key}.title", language) else None


# --- values the templates use beyond the facts ----------------------------------------------

# The catalogue's enumeration (enum.NAME.value) of each enumerated contract column (contract.ENUMS).
ENUM_OF_COLUMN: dict[tuple[str, str], str] = {
    ("staff", "role"): "role", ("tickets", "kind"): "ticket_kind", ("tickets", "channel"): "channel",
    ("tickets", "status"): "ticket_status", ("plans", "level"): "plan_level", ("plans", "status"): "plan_status",
    ("tasks", "priority"): "priority", ("tasks", "status"): "task_status", ("analysis_reports", "kind"): "report_kind",
    ("reported_metrics", "metric"): "reported_metric",
}

def labelled(name: Any, identifier: Any, language: str) -> str | None:
    """客服三部（D03）: a name with its id; either alone when the other is missing."""
    if name and identifier and str(name) != str(identifier):
        return text("label.named", language, name=name, id=identifier)
    return str(name or identifier) if (name or identifier) else None


def derived_values(entity_type: str, facts: Mapping[str, Any], language: str) -> dict[str, Any]:
    """The facts plus the labels and magnitudes the templates name (subject, shortfall, ...)."""
    values = dict(facts)
    values["department"] = labelled(facts.get("department_name"), facts.get("department_id"), language)
    values["agent"] = labelled(facts.get("agent_name"), facts.get("agent_id"), language)
    values["reviewer"] = labelled(facts.get("reviewer_name"), facts.get("reviewer_id"), language)
    values["collaborator_department"] = labelled(facts.get("collaborator_name"), facts.get("collaborator"),
                                                 language)
    values["shortfall"] = _magnitude(facts.get("gap"), facts.get("observed"), facts.get("target"))
    if facts.get("change") is not None:
        values["change_size"] = _magnitude(facts["change"], None, None)
    if entity_type in AGGREGATE_ENTITIES:
        values["subject"] = text(f"finding.subject.{entity_type}", language, **values)
    values["scope_label"] = _scope(facts, language)
    values.update(_data_quality_labels(facts, language))
    return values


def _magnitude(gap: Any, observed: Any, target: Any) -> float | None:
    """How far the observed value is from the target, whatever the direction."""
    try:
        if gap is not None:
            return abs(float(gap))
        if observed is not None and target is not None:
            return abs(float(observed) - float(target))
    except (TypeError, ValueError):
        return None
    return None


def _scope(facts: Mapping[str, Any], language: str) -> str | None:
    """What a reported figure covers: a department, or the whole company when its scope is null."""
    if "scope" not in facts:
        return None
    scope = facts.get("scope")
    if not scope:
        return text("finding.scope.company", language)
    name = facts.get("department_name") if facts.get("department_id") == scope else None
    return labelled(name, scope, language)


def _data_quality_labels(facts: Mapping[str, Any], language: str) -> dict[str, Any]:
    """Readable names of the table and columns a dq finding is about (工单表 “首次响应时间”), and
    the values a column allows in words, each with the code the data must hold (未开始（not_started）)."""
    table = facts.get("table")
    if not table:
        return {}
    columns = [column_label(table, c, language) for c in str(facts.get("column") or "").split("+") if c and c != "*"]
    labels = {
        "table_label": table_label(table, language),
        "column_label": format_value(columns, "list", language) if columns else None,
        "references_label": qualified_label(facts.get("references"), language),
        "not_before_label": qualified_label(facts.get("not_before"), language),
    }
    enum = ENUM_OF_COLUMN.get((table, str(facts.get("column"))))
    if enum is not None and facts.get("value_set"):
        labels["value_set"] = [labelled(format_value(value, f"enum.{enum}", language), value, language)
                               for value in facts["value_set"]]
    return labels


def entity_label(finding: Mapping[str, Any], language: str) -> str:
    """What a finding is about, as its title names it: 全公司 / the whole company, a department by
    its name (客服一部), an agent as a person (王芳（S007）), anything else by its id (TSK-00898)."""
    entity_type, entity_id = finding["entity_type"], str(finding["entity_id"])
    facts = finding.get("facts") or {}
    if entity_type == "company":
        return text("finding.scope.company", language)
    if entity_type == "department":
        return str(facts.get("department_name") or entity_id)
    if entity_type == "agent":
        return labelled(facts.get("agent_name"), entity_id, language) or entity_id
    return entity_id


def entity_reference(entity_type: str, entity_id: str, language: str) -> str:
    """An entity by its kind and id, as tables and exports list it (数据字段 tickets.closed_at); a
    check of a table as a whole (qa_reviews.*) names the table (数据表 qa_reviews); the company is
    the whole company, without the id it is stored under."""
    if entity_type == "company":
        return text("finding.scope.company", language)
    if entity_type == "deliverable":
        return deliverable_label(entity_id, language)
    table, _, column = entity_id.partition(".")
    if entity_type == "table_column" and column == "*":
        return text("contract.table_reference", language, table=table)
    return f"{format_value(entity_type, 'enum.entity_type', language)} {entity_id}"


def deliverable_label(entity_id: str, language: str, department: str | None = None) -> str:
    """`D03/monthly/2026-10` in words: D03：2026年10月的应交计划或报告; the period says the kind."""
    department_id, _kind, period = entity_id.split("/", 2)
    return text("report.entity.deliverable", language, department=department or department_id, period=period)


def table_label(table: str, language: str) -> str:
    key = f"contract.table.{table}"
    return text(key, language) if has_message(key, language) else table


def column_label(table: str, column: str, language: str) -> str:
    key = f"contract.column.{table}.{column}"
    return text(key, language) if has_message(key, language) else column


def qualified_label(qualified: Any, language: str) -> str | None:
    """`staff.staff_id` as 员工表“员工编号” / the staff table's “staff ID”."""
    if not qualified:
        return None
    table, _, column = str(qualified).partition(".")
    return text("contract.qualified", language, table=table_label(table, language),
                column=column_label(table, column, language))


# --- variants ---------------------------------------------------------------------------------

def _no_variant(_facts: Mapping[str, Any]) -> str | None:
    return None


def _reason(facts: Mapping[str, Any]) -> str | None:
    reason = facts.get("reason")
    return str(reason) if reason else None


def _submitted(facts: Mapping[str, Any]) -> str:
    return "submitted" if facts.get("submitted_at") else "not_submitted"


def _overdue(facts: Mapping[str, Any]) -> str:
    if not facts.get("still_open"):
        return "done_late"
    status = facts.get("status")
    return f"still_open_{status}" if status in ("not_started", "in_progress") else "still_open"


def _target_change(facts: Mapping[str, Any]) -> str | None:
    if _reason(facts) != "out_of_range" or facts.get("change") is None:
        return _reason(facts)
    return "too_high" if float(facts["change"]) > 0 else "too_low"


def _range(facts: Mapping[str, Any]) -> str | None:
    if facts.get("earliest"):
        return "implausible" if facts.get("not_after") else "before"
    if facts.get("not_after"):
        return "future"
    low, high = facts.get("min"), facts.get("max")
    if low is not None and high is not None:
        return "between"
    if low is not None:
        return "at_least"
    return "at_most" if high is not None else None


VARIANTS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "cs.qa_attitude": lambda facts: "with_notes" if facts.get("notes") else None,
    "cs.qa_resolution": lambda facts: "with_notes" if facts.get("notes") else None,
    "exec.overdue_task": _overdue,
    "exec.process_violation": _reason,
    "plan.late_submission": _submitted,
    "plan.unapproved": _reason,
    "plan.not_decomposed": lambda facts: "ownerless" if facts.get("tasks") else "no_tasks",
    "plan.target_unreasonable": _target_change,
    "plan.missing_signoff": lambda facts: "signed_late" if facts.get("signed_at") else "not_signed",
    "plan.adjustment_unapproved": _reason,
    "data.report_late": _submitted,
    "data.report_incomplete": _reason,
    "data.metric_mismatch": lambda facts: "rate" if facts.get("is_rate") else "count",
    "dq.range": _range,
}

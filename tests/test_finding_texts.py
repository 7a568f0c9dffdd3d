"""Every rule's title, description and recommendation, in both languages, from the facts its findings carry."""

from __future__ import annotations

import re
from typing import Any

import pytest

from opsaudit.checks.quality_config import RULE_IDS as DQ_RULE_IDS
from opsaudit.checks.spec import AREA_FILES, load_area
from opsaudit.i18n import FindingText, UnknownRuleError, catalogue, recommendation, render_finding, rule_ids
from opsaudit.i18n.findings import deliverable_label, description_key, entity_reference

ZH, EN = "zh-CN", "en"
LATIN = re.compile(r"[A-Za-z]+")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
# Facts that are data (ids, names, titles, notes, table and column names): they pass through.
DATA = ("entity_id", "department_id", "department_name", "agent_id", "agent_name", "reviewer_id", "reviewer_name",
        "task_title", "plan_title", "plan_id", "report_id", "review_id", "collaborator", "collaborator_name", "notes",
        "scope", "table", "column", "references", "not_before", "value_set")

EVERY = {"period": "2026-10", "department_id": "CS3", "department_name": "客服三部"}
RATE = {**EVERY, "observed": 0.82, "target": 0.9, "population": 412, "numerator": 338, "denominator": 412,
        "failures": 74, "gap": -0.08, "unit": "rate", "op": "at_least"}
SCORE = {**RATE, "observed": 72.5, "target": 80, "population": 14, "numerator": 1015, "denominator": 14,
         "failures": 6, "gap": -7.5, "unit": "score"}
COST = {**EVERY, "observed": 1.18, "target": 1.1, "population": 40, "numerator": 1_180_000.0,
        "denominator": 1_000_000.0, "failures": 12, "gap": 0.08, "unit": "ratio", "op": "at_most"}
IDLE = {**COST, "observed": 0.42, "target": 0.5, "gap": -0.08, "numerator": 420.0, "denominator": 1000.0,
        "op": "at_least"}
AGENT = {"agent_id": "S035", "agent_name": "王伟"}
TASK = {**EVERY, "department_id": "RND", "department_name": "研发部", "entity_id": "TSK-00898",
        "task_title": "升级核心数据库版本"}
OVERDUE = {**TASK, "priority": "critical", "status": "in_progress", "due_at": "2026-09-15T00:00:00",
           "completed_at": None, "days_late": 46, "still_open": True, "as_of": "2026-10-31"}
PLAN = {**EVERY, "period": "2026Q3", "department_id": "OPS", "department_name": "运营部", "entity_id": "PLN-OPS-2026Q4",
        "plan_title": "运营部2026年第四季度工作计划", "level": "quarterly", "plan_period": "2026Q4"}
REPORT = {**EVERY, "period": "2026Q3", "department_id": "OPS", "department_name": "运营部",
          "entity_id": "RPT-FIN-2026-07", "kind": "monthly", "report_period": "2026-07"}
MISMATCH = {**REPORT, "entity_id": "RPT-OPS-2026-08/satisfaction_rate/CS1", "report_id": "RPT-OPS-2026-08",
            "metric": "satisfaction_rate", "scope": "CS1", "department_id": "CS1", "department_name": "客服一部",
            "metric_period": "2026-08", "reported": 0.9445, "actual": 0.974493, "deviation": 0.029993, "is_rate": True}
DQ = {**EVERY, "period": "2026Q3", "table": "tickets", "column": "first_response_at",
      "entity_id": "tickets.first_response_at", "population": 60132, "unexpected_count": 3957, "share": 0.0658}
QA_TICKET = {**EVERY, "entity_id": "T-2026-118233", "review_id": "QA-2026-W46-0007", "score": 55, **AGENT,
             "reviewer_id": "S012", "reviewer_name": "李静"}

# (rule, entity type, facts): every entity type of every rule, and every variant of its description.
SAMPLES: list[tuple[str, str, dict[str, Any]]] = [
    *[(rule, entity, {**RATE, **(AGENT if entity == "agent" else {})})
      for rule, entities in {"cs.satisfaction_rate": ("department", "agent", "company"),
                             "cs.complaint_satisfaction_rate": ("department", "company"),
                             "cs.handling_rate": ("department", "company"),
                             "cs.revisit_rate": ("department", "company"),
                             "cs.first_response_rate": ("department", "agent", "company"),
                             "cs.qa_compliance": ("department", "company"),
                             "exec.on_time_rate": ("department", "company"),
                             "exec.outcome_shortfall": ("department", "company"),
                             "plan.completion_rate": ("department", "company")}.items()
      for entity in entities],
    ("cs.qa_attitude", "agent", {**SCORE, **AGENT}),
    ("cs.qa_attitude", "ticket", QA_TICKET),
    ("cs.qa_attitude", "ticket", {**QA_TICKET, "notes": "客户两次询问进度，客服语气生硬"}),
    ("cs.qa_resolution", "agent", {**SCORE, **AGENT}),
    ("cs.qa_resolution", "ticket", QA_TICKET),
    ("cs.qa_resolution", "ticket", {**QA_TICKET, "notes": "未查明故障原因即结单"}),
    *[("cs.reopen_rate", entity, {**RATE, "observed": 0.08, "target": 0.05, "gap": 0.03, "numerator": 33,
                                  "op": "at_most"}) for entity in ("department", "company")],
    ("plan.missing", "deliverable", {**PLAN, "entity_id": "CS3/annual/2027", "kind": "annual",
                                     "deliverable_period": "2027", "due_on": "2026-12-31"}),
    ("data.report_missing", "deliverable", {**REPORT, "entity_id": "OPS/quarterly/2026Q2", "kind": "quarterly",
                                            "deliverable_period": "2026Q2", "due_on": "2026-07-10"}),
    ("exec.overdue_task", "task", OVERDUE),
    ("exec.overdue_task", "task", {**OVERDUE, "status": "not_started", "priority": "high"}),
    ("exec.overdue_task", "task", {**OVERDUE, "status": "done", "completed_at": "2026-11-03 10:00:00"}),
    ("exec.overdue_task", "task", {**OVERDUE, "still_open": False, "status": "done", "priority": "normal",
                                   "completed_at": "2026-09-20 17:00:00", "days_late": 5.5}),
    ("exec.cost_overrun", "department", COST),
    ("exec.cost_overrun", "company", COST),
    ("exec.cost_overrun", "task", {**TASK, "actual": 48_000.0, "budget": 30_000.0, "ratio": 1.6}),
    ("exec.hours_overrun", "department", COST),
    ("exec.hours_overrun", "company", COST),
    ("exec.hours_overrun", "task", {**TASK, "actual": 96.5, "budget": 60.0, "ratio": 1.608}),
    ("exec.idle_resources", "department", IDLE),
    ("exec.idle_resources", "company", IDLE),
    *[("exec.process_violation", "task", {**TASK, "reason": reason})
      for reason in ("not_started", "completed_before_started", "no_owner", "something_else")],
    ("plan.late_submission", "plan", {**PLAN, "due_at": "2026-09-30T00:00:00", "submitted_at": "2026-10-20 09:00:00",
                                      "days_late": 20}),
    ("plan.late_submission", "plan", {**PLAN, "level": "annual", "due_at": "2026-09-30T00:00:00",
                                      "submitted_at": None, "days_late": 1}),
    ("plan.unapproved", "plan", {**PLAN, "reason": "not_approved", "approver_role": None}),
    ("plan.unapproved", "plan", {**PLAN, "reason": "approver_not_allowed", "approver_role": "deputy_manager"}),
    ("plan.unapproved", "plan", {**PLAN, "reason": "other"}),
    ("plan.not_decomposed", "plan", {**PLAN, "level": "monthly", "plan_period": "2026-10", "tasks": 0,
                                     "tasks_without_owner": 0}),
    ("plan.not_decomposed", "plan", {**PLAN, "level": "monthly", "plan_period": "2026-10", "tasks": 8,
                                     "tasks_without_owner": 3}),
    *[("plan.target_unreasonable", "plan_target",
       {**PLAN, "entity_id": "PLN-OPS-2026Q4/audits_completed", "plan_id": "PLN-OPS-2026Q4",
        "metric": "audits_completed", **values})
      for values in ({"reason": "no_baseline", "baseline": None, "target_value": 5.0, "change": None},
                     {"reason": "zero_baseline", "baseline": 0.0, "target_value": 5.0, "change": None},
                     {"reason": "out_of_range", "baseline": 12.0, "target_value": 20.0, "change": 0.6667},
                     {"reason": "out_of_range", "baseline": 12.0, "target_value": 8.0, "change": -0.3333},
                     {"reason": "unknown", "baseline": 12.0, "target_value": 8.0})],
    ("plan.missing_market_research", "plan", PLAN),
    ("plan.missing_signoff", "plan", {**PLAN, "collaborator": "FIN", "collaborator_name": "财务部",
                                      "signed_at": None, "approved_at": "2026-09-28 15:00:00"}),
    ("plan.missing_signoff", "plan", {**PLAN, "collaborator": "FIN", "collaborator_name": "财务部",
                                      "signed_at": "2026-10-02 11:00:00", "approved_at": "2026-09-28 15:00:00"}),
    *[("plan.adjustment_unapproved", "adjustment",
       {**PLAN, "entity_id": "ADJ-0042", "plan_id": "PLN-OPS-2026Q4", "reason": reason,
        "requested_at": "2026-08-03 10:00:00", "approved_at": approved, "effective_at": "2026-08-10 09:00:00"})
      for reason, approved in (("no_reason", None), ("not_approved", None),
                               ("approved_after_effective", "2026-08-12 16:30:00"), ("other", None))],
    ("data.report_late", "report", {**REPORT, "due_at": "2026-08-04T18:00:00", "submitted_at": "2026-08-25 09:00:00",
                                    "days_late": 20.6}),
    ("data.report_late", "report", {**REPORT, "due_at": "2026-09-20T18:00:00", "submitted_at": None,
                                    "days_late": 10.3}),
    *[("data.report_incomplete", "report", {**REPORT, "reason": reason})
      for reason in ("no_methods", "no_recommendations", "other")],
    ("data.report_unreviewed", "report", REPORT),
    ("data.metric_mismatch", "reported_metric", MISMATCH),
    ("data.metric_mismatch", "reported_metric",
     {**MISMATCH, "entity_id": "RPT-OPS-2026-08/ticket_count/company", "metric": "ticket_count", "scope": None,
      "department_id": "OPS", "department_name": "运营部", "reported": 8301.0, "actual": 8652.0,
      "deviation": 0.04057, "is_rate": False}),
    ("dq.not_null", "table_column", DQ),
    ("dq.in_set", "table_column", {**DQ, "column": "channel", "entity_id": "tickets.channel",
                                   "value_set": ["phone", "chat", "email", "web", "onsite", "other"]}),
    ("dq.range", "table_column", {**DQ, "not_after": "2026-10-01 09:00:00"}),
    ("dq.range", "table_column", {**DQ, "earliest": "2000-01-01", "not_after": "2026-10-01 09:00:00"}),
    ("dq.range", "table_column", {**DQ, "table": "tasks", "column": "due_at", "entity_id": "tasks.due_at",
                                  "earliest": "2000-01-01"}),
    ("dq.range", "table_column", {**DQ, "column": "satisfaction", "entity_id": "tickets.satisfaction",
                                  "min": 1, "max": 5}),
    ("dq.range", "table_column", {**DQ, "table": "tasks", "column": "actual_cost", "entity_id": "tasks.actual_cost",
                                  "min": 0}),
    ("dq.range", "table_column", {**DQ, "max": 100}),
    ("dq.range", "table_column", DQ),
    ("dq.type", "table_column", {**DQ, "expected": "ts"}),
    ("dq.unique", "table_column", {**DQ, "table": "reported_metrics", "column": "report_id+metric+department_id",
                                   "entity_id": "reported_metrics.report_id+metric+department_id"}),
    ("dq.reference", "table_column", {**DQ, "column": "agent_id", "entity_id": "tickets.agent_id",
                                      "references": "staff.staff_id"}),
    ("dq.time_order", "table_column", {**DQ, "not_before": "tickets.opened_at"}),
    ("dq.freshness", "table_column", {**DQ, "column": "opened_at", "entity_id": "tickets.opened_at",
                                      "newest": "2026-09-12 18:40:00", "newest_not_before": "2026-09-28 00:00:00",
                                      "freshness_days": 2}),
    *[("dq.freshness", "table_column", {**EVERY, "table": "plans", "entity_id": "plans.*", "reason": reason})
      for reason in ("missing_table", "no_rows")],
    ("dq.not_null", "table_column", {**DQ, "reason": "missing_column"}),
    ("dq.reference", "table_column", {**DQ, "column": "agent_id", "entity_id": "tickets.agent_id",
                                      "references": "staff.staff_id", "reason": "missing_referenced_table"}),
]


def _entity_types() -> set[tuple[str, str]]:
    """Every (rule, entity type) the checks define; department aggregates also judge the whole company."""
    pairs = {(rule_id, "table_column") for rule_id in DQ_RULE_IDS}
    for area in AREA_FILES:
        for rule_id, spec in load_area(area).rules.items():
            for entity_type, entity in spec.entities.items():
                pairs.add((rule_id, entity_type))
                if entity_type == "department" and (entity.kind or spec.kind) != "record":
                    pairs.add((rule_id, "company"))
    return pairs


def _without_data(rendered: str, facts: dict[str, Any], rule_id: str) -> str:
    data = [facts[key] for key in DATA if facts.get(key)]
    if rule_id == "plan.target_unreasonable":
        data.append(facts["metric"])  # a plan target's metric is the company's own name for it
    strings = sorted({str(item) for value in data for item in (value if isinstance(value, list) else [value])},
                     key=len, reverse=True)
    for value in strings:
        rendered = rendered.replace(value, " ")
    return rendered


def test_the_catalogue_has_text_for_every_rule_of_the_checks():
    defined = {rule_id for rule_id, _ in _entity_types()}
    assert set(rule_ids(ZH)) == defined == set(rule_ids(EN))


def test_the_samples_cover_every_entity_type_and_every_description_variant():
    assert {(rule_id, entity) for rule_id, entity, _ in SAMPLES} == _entity_types()
    used = {description_key(rule_id, entity, facts) for rule_id, entity, facts in SAMPLES}
    used |= {f"dq_reason.{facts['reason']}.description" for rule_id, _, facts in SAMPLES
             if rule_id.startswith("dq.") and facts.get("reason")}
    written = {key for key in catalogue(ZH) if ".description" in key and key.startswith(("rule.", "dq_reason."))}
    assert sorted(written - used) == []


@pytest.mark.parametrize(("rule_id", "entity_type", "facts"), SAMPLES,
                         ids=[f"{r}-{e}-{i}" for i, (r, e, _) in enumerate(SAMPLES)])
def test_every_rule_reads_in_chinese_without_english_and_in_english_without_chinese(rule_id, entity_type, facts):
    chinese = render_finding(rule_id, entity_type, facts, ZH)
    english = render_finding(rule_id, entity_type, facts, EN)
    for text in (chinese, english):
        assert text.title and text.description
        assert "{" not in text.description and "—" not in text.description, text.description
    for text in (chinese.title, chinese.description):
        assert LATIN.findall(_without_data(text, facts, rule_id)) == [], text
    for text in (english.title, english.description):
        assert CJK.findall(_without_data(text, facts, rule_id)) == [], text


def test_the_issues_examples_read_as_a_manager_expects():
    overdue = {**OVERDUE, "task_title": None}
    assert render_finding("exec.overdue_task", "task", overdue, ZH).description == (
        "任务TSK-00898“—”（紧急）应于2026-09-15完成，截至2026-10-31仍在进行中，逾期46天。")
    assert render_finding("exec.overdue_task", "task", OVERDUE, EN) == FindingText(
        "Task overdue", "Task TSK-00898 “升级核心数据库版本” (critical) was due on Sep 15, 2026 and was still in "
        "progress on Oct 31, 2026, 46 days overdue.")
    satisfaction = {**RATE, "department_id": "D03"}
    assert render_finding("cs.satisfaction_rate", "department", satisfaction, ZH) == FindingText(
        "客户满意度未达标",
        "2026年10月，客服三部（D03）已评价工单412张，满意度82.0%，低于目标90.0%（差8.0个百分点），不满意74张。")
    assert render_finding("cs.satisfaction_rate", "department", satisfaction, EN).title == \
        "Customer satisfaction below target"


def test_figures_are_formatted_not_raw():
    assert render_finding("data.metric_mismatch", "reported_metric", MISMATCH, ZH).description == (
        "分析报告RPT-OPS-2026-08中客服一部（CS1）2026年8月的客户满意度为94.5%，按实际数据重算为97.4%，相差3.0个百分点。")
    company = SAMPLES[[i for i, s in enumerate(SAMPLES) if s[2].get("metric") == "ticket_count"][0]][2]
    assert render_finding("data.metric_mismatch", "reported_metric", company, ZH).description == (
        "分析报告RPT-OPS-2026-08中全公司2026年8月的工单量为8,301，按实际数据重算为8,652，偏差4.1%。")
    assert render_finding("dq.time_order", "table_column", {**DQ, "not_before": "tickets.opened_at"}, ZH).description \
        == ("工单表有3,957行的“首次响应时间”早于工单表的“受理时间”（tickets.first_response_at），"
            "占本期60,132行的6.6%。")


def test_a_plan_approved_by_the_wrong_role_names_the_role_in_words():
    facts = {**PLAN, "reason": "approver_not_allowed", "approver_role": "deputy_manager"}
    assert render_finding("plan.unapproved", "plan", facts, ZH).description == (
        "季度计划“运营部2026年第四季度工作计划”（PLN-OPS-2026Q4）由副经理审批，该角色无权审批季度计划。")


def test_facts_may_arrive_as_datetimes_and_the_entity_id_as_an_argument():
    from datetime import datetime

    facts = {**OVERDUE, "due_at": datetime(2026, 9, 15), "as_of": datetime(2026, 10, 31, 23, 59)}
    del facts["entity_id"]
    text = render_finding("exec.overdue_task", "task", facts, ZH, entity_id="TSK-00898")
    assert text.description.startswith("任务TSK-00898“升级核心数据库版本”（紧急）应于2026-09-15完成，截至2026-10-31")


@pytest.mark.parametrize(("rule_id", "entity_type"), sorted(_entity_types()))
def test_missing_facts_render_as_dashes_and_never_raise(rule_id, entity_type):
    for language in (ZH, EN):
        text = render_finding(rule_id, entity_type, {}, language)
        assert text.title and "—" in text.description


def test_each_rule_has_its_own_recommendation():
    for language in (ZH, EN):
        advice = {rule_id: recommendation(rule_id, language) for rule_id in rule_ids(language)}
        assert len(set(advice.values())) == len(advice)
        assert all(len(text) > 20 for text in advice.values())


def test_an_unknown_rule_is_a_clear_error():
    with pytest.raises(UnknownRuleError, match=r"unknown rule 'cs\.bogus': the en message catalogue has no text"):
        render_finding("cs.bogus", "department", RATE, EN)
    with pytest.raises(UnknownRuleError, match="unknown rule 'x'"):
        recommendation("x", ZH)
    with pytest.raises(UnknownRuleError, match="no description for a ticket"):
        render_finding("cs.satisfaction_rate", "ticket", RATE, ZH)



def test_a_missing_plan_or_report_is_named_by_its_department_and_period_not_its_id():
    """`CS1/quarterly/2026Q4` holds an English word; people read whose it is and for which period."""
    assert entity_reference("deliverable", "CS1/quarterly/2026Q4", "zh-CN") == "CS1：2026年第四季度的应交计划或报告"
    assert entity_reference("deliverable", "DA/monthly/2026-10", "en") == "DA: the plan or report due for October 2026"
    assert deliverable_label("D03/annual/2027", "zh-CN", "客服三部（D03）") == "客服三部（D03）：2027年的应交计划或报告"

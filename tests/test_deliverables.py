"""Absence is a finding (audit-rules.md section 4, "What must exist"): plan.missing and
data.report_missing over the calendar of config/deliverables.yaml, on SQLite and PostgreSQL, at
their edges, through the audit flows (rerun after the lead withdrew one too), the report, the
circulation and the scores, and on the real clock."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from builders import Dataset, by_entity, company_results, run_rule

from opsaudit import periods
from opsaudit.checks.deliverables import Owed, owed_in
from opsaudit.checks.results import Outcome, Severity
from opsaudit.checks.scope import Scope
from opsaudit.config.loader import load_config
from opsaudit.config.models import Scoring
from opsaudit.i18n.findings import render_finding
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import findings

Q3, Q3_NOW = "2026Q3", datetime(2026, 10, 2)
Q4, Q4_NOW = "2026Q4", datetime(2027, 1, 2)
REASON = "八月计划已线下审批，系统漏录"   # why the audit team lead withdraws a missing plan
ZONE = ZoneInfo("Asia/Shanghai")


def company(data: Dataset) -> Dataset:
    """The operations department OPS with its manager; D03 and DA directly below it; D03-1 below
    D03 and SAL beside OPS, which owe no plans."""
    data.department("OPS", name="运营部", head_id="M1")
    data.department("D03", name="客服三部", parent_id="OPS", head_id="H3")
    data.department("DA", name="数据分析组", parent_id="OPS", head_id="HA")
    data.department("D03-1", name="客服三部一组", parent_id="D03", head_id="H31")
    data.department("SAL", name="销售部", parent_id=None, head_id="HS")
    data.staff("M1", "OPS", "manager", name="运营经理")
    for head, department in (("H3", "D03"), ("HA", "DA"), ("H31", "D03-1"), ("HS", "SAL")):
        data.staff(head, department, "manager")
    return data


def plan(data: Dataset, department: str, level: str, label: str, **overrides) -> None:
    """A plan made on time: submitted the day before it was due."""
    period = periods.parse_period(label)
    due = period.start - timedelta(seconds=1)
    data.plan(f"P-{department}-{label}", department, **{
        "level": level, "period": label, "due_at": due, "submitted_at": due - timedelta(days=1),
        "approved_at": due, **overrides})


def report(data: Dataset, department: str, kind: str, label: str) -> None:
    period = periods.parse_period(label)
    due = period.end + timedelta(days=4)
    data.report(f"R-{department}-{kind}-{label}", department, kind=kind, period=label, due_at=due,
                submitted_at=due - timedelta(days=1))


def missing(engine: sa.Engine, rule_id: str, period: str, now: datetime, **kwargs) -> dict[str, Severity | None]:
    return {entity: r.severity for entity, r in by_entity(run_rule(engine, rule_id, period=period, now=now,
                                                                   **kwargs)).items()}


# --- the calendar -------------------------------------------------------------------------------

def test_the_default_calendar_of_a_quarter():
    config = load_config(None).deliverables
    assert owed_in(periods.parse_period(Q4), config.plans.due) == [
        Owed("monthly", "2026-11", date(2026, 10, 31)), Owed("monthly", "2026-12", date(2026, 11, 30)),
        Owed("annual", "2027", date(2026, 12, 31)), Owed("monthly", "2027-01", date(2026, 12, 31)),
        Owed("quarterly", "2027Q1", date(2026, 12, 31))]
    assert owed_in(periods.parse_period(Q4), config.reports.due) == [
        Owed("monthly", "2026-09", date(2026, 10, 5)), Owed("quarterly", "2026Q3", date(2026, 10, 10)),
        Owed("monthly", "2026-10", date(2026, 11, 5)), Owed("monthly", "2026-11", date(2026, 12, 5))]
    # The year's report is due on 10 January: the first quarter of the next year judges it.
    assert Owed("annual", "2026", date(2027, 1, 10)) in owed_in(periods.parse_period("2027Q1"), config.reports.due)


# --- plan.missing ---------------------------------------------------------------------------------

def test_a_plan_due_on_the_last_day_of_the_quarter_is_judged_in_that_quarter_not_the_next(engine):
    company(Dataset()).insert(engine)

    q4 = missing(engine, "plan.missing", Q4, Q4_NOW)
    q1 = missing(engine, "plan.missing", "2027Q1", datetime(2027, 4, 2))

    due_31_december = {"DA/annual/2027", "DA/quarterly/2027Q1", "DA/monthly/2027-01"}
    assert due_31_december <= set(q4) and not due_31_december & set(q1)
    assert {"DA/monthly/2027-02", "DA/quarterly/2027Q2"} <= set(q1)


def test_a_department_that_never_planned_owes_every_plan_and_the_annual_one_is_major(engine):
    data = company(Dataset())
    for level, label in (("monthly", "2026-11"), ("monthly", "2026-12"), ("monthly", "2027-01"),
                         ("quarterly", "2027Q1"), ("annual", "2027")):
        plan(data, "D03", level, label)
    data.insert(engine)

    results = run_rule(engine, "plan.missing", period=Q4, now=Q4_NOW)

    assert {entity: r.severity for entity, r in by_entity(results).items()} == {
        "DA/monthly/2026-11": Severity.IMPORTANT, "DA/monthly/2026-12": Severity.IMPORTANT,
        "DA/monthly/2027-01": Severity.IMPORTANT, "DA/quarterly/2027Q1": Severity.IMPORTANT,
        "DA/annual/2027": Severity.MAJOR}
    annual = by_entity(results)["DA/annual/2027"]
    assert (annual.department_id, annual.owner_id) == ("DA", "HA")
    assert annual.facts | {"department_name": "数据分析组"} == annual.facts
    assert (annual.facts["kind"], annual.facts["deliverable_period"], annual.facts["due_on"]) == \
        ("annual", "2027", "2026-12-31")
    assert annual.evidence["sample_ids"] == ["DA/annual/2027"]
    assert "DA/annual/2027" in annual.evidence["records_query"]
    [rollup] = company_results(results)
    assert (rollup.population, rollup.facts["violations"]) == (10, 5)   # two departments x five plans


def test_a_plan_made_in_any_state_is_not_missing_and_other_plans_do_not_stand_in_for_it(engine):
    data = company(Dataset())
    plan(data, "D03", "monthly", "2026-08", status="draft", submitted_at=None, approved_at=None, approved_by=None)
    plan(data, "D03", "monthly", "2026-09")
    plan(data, "D03", "quarterly", "2026Q4")
    plan(data, "D03", "quarterly", "2026-10")       # the right period with the wrong level
    plan(data, "DA", "monthly", "2026-10")          # another department's plan
    data.insert(engine)

    got = missing(engine, "plan.missing", Q3, Q3_NOW)

    assert {entity for entity in got if entity.startswith("D03/")} == {"D03/monthly/2026-10"}
    assert not any(entity.startswith(("D03-1/", "SAL/", "OPS/")) for entity in got)


def test_a_department_that_made_every_plan_on_time_has_no_finding(engine):
    data = company(Dataset())
    for department in ("D03", "DA"):
        for level, label in (("monthly", "2026-08"), ("monthly", "2026-09"), ("monthly", "2026-10"),
                             ("quarterly", "2026Q4")):
            plan(data, department, level, label)
    data.insert(engine)

    results = run_rule(engine, "plan.missing", period=Q3, now=Q3_NOW)

    assert by_entity(results) == {}
    [rollup] = company_results(results)
    assert (rollup.outcome, rollup.population) == (Outcome.PASSED, 8)


def test_the_operations_department_setting_says_who_must_plan(engine, monkeypatch):
    company(Dataset()).insert(engine)
    monkeypatch.setenv("OPSAUDIT_OPERATIONS_DEPARTMENT", "D03")

    got = missing(engine, "plan.missing", Q3, Q3_NOW)

    assert {entity.split("/")[0] for entity in got} == {"D03-1"}


def test_deliverables_yaml_overrides_who_owes_what_and_by_when(engine, tmp_path):
    data = company(Dataset())
    report(data, "SAL", "monthly", "2026-05")
    data.insert(engine)
    (tmp_path / "config" / "deliverables.yaml").write_text(
        "plans:\n  departments: [SAL]\n  due:\n    monthly: null\n    quarterly: {days_before: 10}\n"
        "reports:\n  due:\n    monthly: {days_after: 40}\n", encoding="utf-8")

    plans = missing(engine, "plan.missing", Q3, Q3_NOW)
    reports = missing(engine, "data.report_missing", Q3, Q3_NOW)

    # The fourth quarter's plan is now due ten days before it starts (21 September); no monthly plans.
    assert set(plans) == {"SAL/quarterly/2026Q4"}
    # A month's report is due 40 days after the month: May's on 9 July, June's on 9 August, July's
    # on 9 September; May's was registered, and only later months are owed.
    assert set(reports) == {"SAL/monthly/2026-06", "SAL/monthly/2026-07"}


def test_an_audit_of_some_departments_judges_theirs_and_a_sample_of_records_judges_none(engine):
    company(Dataset()).insert(engine)

    d03 = missing(engine, "plan.missing", Q3, Q3_NOW, scope=Scope(departments=("D03",)))
    sampled = run_rule(engine, "plan.missing", period=Q3, now=Q3_NOW,
                       scope=Scope(departments=("D03",), sample_table="plans", sample_ids=("P1",)))

    assert set(d03) == {"D03/monthly/2026-08", "D03/monthly/2026-09", "D03/monthly/2026-10", "D03/quarterly/2026Q4"}
    assert by_entity(sampled) == {} and company_results(sampled)[0].population == 0


# --- data.report_missing --------------------------------------------------------------------------

def test_a_report_is_owed_for_every_period_after_the_first_one_registered_and_none_before(engine):
    data = company(Dataset())
    report(data, "DA", "monthly", "2026-06")         # DA's first monthly report
    report(data, "D03", "monthly", "2026-08")        # D03's first, due in the third quarter itself
    report(data, "D03", "quarterly", "2026Q2")       # D03's first quarterly report
    data.insert(engine)

    q3 = missing(engine, "data.report_missing", Q3, Q3_NOW)
    q4 = missing(engine, "data.report_missing", Q4, Q4_NOW)

    # Due in Q3: June's report on 5 July, July's on 5 August, August's on 5 September, Q2's on 10 July.
    assert q3 == {"DA/monthly/2026-07": Severity.IMPORTANT, "DA/monthly/2026-08": Severity.IMPORTANT}
    assert set(q4) == {"DA/monthly/2026-09", "DA/monthly/2026-10", "DA/monthly/2026-11",
                       "D03/monthly/2026-09", "D03/monthly/2026-10", "D03/monthly/2026-11",
                       "D03/quarterly/2026Q3"}


def test_a_report_of_another_kind_or_shape_does_not_count(engine):
    data = company(Dataset())
    report(data, "DA", "monthly", "2026-05")
    report(data, "DA", "quarterly", "2026-07")     # a month's label on a quarterly report: dq's problem
    report(data, "DA", "adhoc", "2026-08")
    data.insert(engine)

    assert set(missing(engine, "data.report_missing", Q3, Q3_NOW)) == \
        {"DA/monthly/2026-06", "DA/monthly/2026-07", "DA/monthly/2026-08"}


# --- through the audits, the report and the scores ------------------------------------------------

@pytest.fixture
def audited_company(db_url, engine, monkeypatch, tmp_path):
    """D03 planned everything on time for the third quarter; DA never planned; an English reader
    receives the planning report."""
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    data = company(Dataset())
    for level, label in (("monthly", "2026-08"), ("monthly", "2026-09"), ("monthly", "2026-10"),
                         ("quarterly", "2026Q4")):
        plan(data, "D03", level, label)
    report(data, "DA", "monthly", "2026-07")
    data.insert(engine)
    upgrade(engine)
    (tmp_path / "config" / "recipients.yaml").write_text(
        "reports:\n  planning-quarterly:\n    - {email: board@example.com, language: en}\n", encoding="utf-8")
    return engine


def deliverable_findings(engine: sa.Engine, rule_id: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            sa.select(findings.c.id, findings.c.entity_id, findings.c.severity, findings.c.period,
                      findings.c.department_id, findings.c.owner_id)
            .where(findings.c.rule_id == rule_id, findings.c.entity_type == "deliverable")
            .order_by(findings.c.entity_id))]


@pytest.mark.usefixtures("prefect_harness")
def test_the_planning_audit_records_missing_plans_once_reports_and_scores_them(audited_company, tmp_path):
    from opsaudit.flows.audits import planning_quarterly
    from opsaudit.scores import scores_for

    planning_quarterly(period=Q3, now=Q3_NOW)
    first = deliverable_findings(audited_company, "plan.missing")
    planning_quarterly(period=Q3, now=Q3_NOW)   # a rerun of the same period

    assert deliverable_findings(audited_company, "plan.missing") == first
    assert [row[1:] for row in first] == [
        (f"DA/{kind}", "important", Q3, "DA", "HA")
        for kind in ("monthly/2026-08", "monthly/2026-09", "monthly/2026-10", "quarterly/2026Q4")]
    folder = tmp_path / "out" / "planning-quarterly" / Q3
    chinese = (folder / "report.zh-CN.html").read_text(encoding="utf-8")
    english = (folder / "report.en.html").read_text(encoding="utf-8")
    assert "应制定的计划未制定" in chinese and "应交计划或报告" in chinese
    assert "数据分析组（DA）应于2026-09-30前制定2026年10月的月度计划，截至本次稽查仍无该计划。" in chinese
    assert "Required plan not made" in english
    assert "should have made its quarterly plan for Q4 2026 by Sep 30, 2026" in english
    with audited_company.connect() as conn:
        scores = {(s.entity_type, s.entity_id): s.score for s in
                  scores_for(conn, "2026-09", scoring=Scoring(), zone=ZONE, now=datetime(2026, 10, 3, tzinfo=ZONE))}
    # DA's only findings are its four missing plans, important each, on the department and its head.
    assert scores[("department", "DA")] == scores[("staff", "HA")] == 100 - 4 * 3
    # The quarter ends in September: that month's circulation counts them like any finding.
    assert circulated(audited_company) == {"major": 0, "important": 4, "general": 0}


def circulated(engine: sa.Engine) -> dict[str, int]:
    """DA's problems by severity in September's circulation, which must list the planning audit's
    third quarter (its only other findings are the data-quality ones, owned by no department)."""
    from opsaudit.reports.circulation import figures

    with engine.connect() as conn:
        written = figures(conn, periods.parse_period("2026-09"), now=datetime(2026, 10, 3, tzinfo=ZONE), zone=ZONE)
    assert [(run["audit"], run["period"]) for run in written.runs] == [("planning-quarterly", Q3)]
    return written.problems["DA"]


@pytest.mark.usefixtures("prefect_harness")
def test_a_rerun_after_the_lead_withdrew_a_missing_plan_neither_raises_nor_counts_it_again(audited_company,
                                                                                         tmp_path):
    from opsaudit.config.models import Deadlines
    from opsaudit.flows.audits import planning_quarterly
    from opsaudit.reports.recipients import Directory
    from opsaudit.reports.report_data import load_report_data
    from opsaudit.scores import scores_for
    from opsaudit.settings import load_settings
    from opsaudit.source import Source
    from opsaudit.store.lifecycle import Request, perform

    lead = Dataset()
    lead.staff("A1", "OPS", "auditor")   # the audit team lead: the first auditor of OPS
    lead.insert(audited_company, {"staff"})
    raised = planning_quarterly(period=Q3, now=Q3_NOW)["findings"]["raised"]
    first = deliverable_findings(audited_company, "plan.missing")
    withdrawn = first[0][0]   # DA's plan for August
    settings = load_settings()
    with audited_company.begin() as conn:   # two hours after the audit, the lead withdraws it ...
        perform(conn, withdrawn, Request("withdraw", "A1", note=REASON), Directory.load(Source(audited_company),
                settings), now=Q3_NOW.replace(tzinfo=ZONE) + timedelta(hours=2), deadlines=Deadlines())
    before = deliverable_findings(audited_company, "plan.missing")

    summary = planning_quarterly(period=Q3, now=Q3_NOW + timedelta(hours=8))   # ... and the quarter is audited again

    assert deliverable_findings(audited_company, "plan.missing") == before == first
    assert (summary["findings"]["raised"], summary["findings"]["unchanged"]) == (0, raised)
    with audited_company.connect() as conn:
        status = conn.execute(sa.select(findings.c.status).where(findings.c.id == withdrawn)).scalar_one()
        data = load_report_data(conn, settings, settings.load_config(), summary["audit_run_id"], "zh-CN",
                                staff_names={}, department_names={})
        scores = {(s.entity_type, s.entity_id): s.score for s in
                  scores_for(conn, "2026-09", scoring=Scoring(), zone=ZONE, now=datetime(2026, 10, 3, tzinfo=ZONE))}
    assert status == "withdrawn"
    assert data.total_findings == raised - 1
    assert sum(problem.rule_id == "plan.missing" for problem in data.details["important"]) == 3
    assert [(line.id, line.by, line.reason) for line in data.withdrawn] == [(withdrawn, "A1", REASON)]
    assert scores[("department", "DA")] == scores[("staff", "HA")] == 100 - 3 * 3
    assert circulated(audited_company) == {"major": 0, "important": 3, "general": 0}
    report = (tmp_path / "out" / "planning-quarterly" / Q3 / "report.zh-CN.html").read_text(encoding="utf-8")
    assert "稽查小组组长撤销的问题" in report and REASON in report


@pytest.mark.usefixtures("prefect_harness")
def test_the_data_audit_on_the_real_clock_finds_the_reports_due_in_the_last_quarter(db_url, engine, monkeypatch):
    """No --now: the audit judges the quarter before today's, and so does the expectation."""
    from opsaudit.flows.audits import data_quarterly

    quarter = periods.previous("quarter", datetime.now(ZONE).replace(tzinfo=None))
    first_month = periods.containing("month", quarter.start)
    monthly = [periods.shift(first_month, step) for step in (-2, -1, 0, 1)]
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    data = company(Dataset())
    report(data, "DA", "monthly", monthly[0].label)   # the first report, two months before the quarter
    data.insert(engine)
    upgrade(engine)

    summary = data_quarterly()

    assert summary["period"] == quarter.label
    # Due in the quarter: the reports of the month before it and of its first two months.
    assert [row[1:4] for row in deliverable_findings(engine, "data.report_missing")] == [
        (f"DA/monthly/{month.label}", "important", quarter.label) for month in monthly[1:]]


def test_a_deliverable_finding_reads_in_both_languages():
    facts = {"department_id": "D03", "department_name": "客服三部", "kind": "quarterly",
             "deliverable_period": "2026Q3", "due_on": "2026-10-10"}
    zh = render_finding("data.report_missing", "deliverable", facts, "zh-CN", entity_id="D03/quarterly/2026Q3")
    en = render_finding("data.report_missing", "deliverable", facts, "en", entity_id="D03/quarterly/2026Q3")
    assert zh.title == "应提交的分析报告未提交"
    assert zh.description == "客服三部（D03）应于2026-10-10前提交2026年第三季度的季度分析报告，截至本次稽查仍无该报告。"
    assert en.description == ("客服三部 (D03) should have submitted its quarterly analysis report for Q3 2026 by "
                              "Oct 10, 2026; as of this audit there is no such report.")


def test_the_shipped_deliverables_file_is_read_from_the_package():
    assert Path(load_config(None).files["deliverables"][0]).name == "deliverables.yaml"


def test_a_company_that_requires_no_reports_owes_none(engine, tmp_path):
    data = company(Dataset())
    report(data, "DA", "monthly", "2026-05")
    data.insert(engine)
    (tmp_path / "config" / "deliverables.yaml").write_text(
        "reports:\n  due: {monthly: null, quarterly: null, annual: null}\n", encoding="utf-8")

    results = run_rule(engine, "data.report_missing", period=Q3, now=Q3_NOW)

    assert by_entity(results) == {}
    assert [(r.outcome, r.population) for r in company_results(results)] == [(Outcome.PASSED, 0)]

"""Problem-solving ability (seed 000 §3.4.2): cs.qa_resolution and cs.reopen_rate at their edges,
on SQLite and PostgreSQL. The full grading tables are in test_rules.py; here, what each edge means."""

from __future__ import annotations

from datetime import datetime, timedelta

from builders import MID_MONTH, MONTH, Dataset, by_entity, company_results, default_rules, run_rule

from opsaudit.checks.results import Outcome, Severity
from opsaudit.i18n.findings import render_finding

OCT_1 = datetime(2026, 10, 1)


def reopened_tickets(data: Dataset, department: str, handled: int, reopened: int) -> None:
    """`handled` tickets of `department` resolved in October, the first `reopened` of them reopened."""
    for i in range(handled):
        data.ticket(f"{department}-{i:03d}", department, reopened_count=1 if i < reopened else 0)


def test_a_reopen_rate_exactly_at_the_limit_is_a_warning_and_just_above_it_a_problem(engine):
    data = Dataset()
    reopened_tickets(data, "AT", 400, 20)      # 5.00%: at the limit
    reopened_tickets(data, "ABOVE", 400, 21)   # 5.25%: a quarter of a point above it
    reopened_tickets(data, "BELOW", 400, 11)   # 2.75%: more than 2 points below, no warning
    data.insert(engine)

    got = by_entity(run_rule(engine, "cs.reopen_rate", "department"))

    assert (got["AT"].outcome, got["AT"].severity, got["AT"].observed) == (Outcome.WARNING, None, 0.05)
    assert (got["ABOVE"].outcome, got["ABOVE"].severity, got["ABOVE"].observed) == \
        (Outcome.FAILED, Severity.GENERAL, 0.0525)
    assert got["BELOW"].outcome is Outcome.PASSED
    assert got["ABOVE"].facts["op"] == "at_most" and got["ABOVE"].facts["numerator"] == 21
    assert len(got["ABOVE"].evidence["sample_ids"]) == 20   # the reopened tickets, not the others
    assert all(int(i.split("-")[1]) < 21 for i in got["ABOVE"].evidence["sample_ids"])


def test_the_company_reopen_rate_is_judged_on_all_departments_tickets(engine):
    data = Dataset()
    reopened_tickets(data, "D1", 100, 21)   # 21%: 16 points over the limit, major
    reopened_tickets(data, "D2", 300, 0)
    data.insert(engine)

    results = run_rule(engine, "cs.reopen_rate", "department")

    assert by_entity(results)["D1"].severity is Severity.MAJOR
    assert by_entity(results)["D2"].outcome is Outcome.PASSED
    [company] = company_results(results)   # 21 of 400: a finding of its own, owned by the operations manager
    assert (company.outcome, company.severity, company.observed) == (Outcome.FAILED, Severity.GENERAL, 0.0525)


def test_the_reopen_rate_counts_tickets_by_when_they_were_resolved_or_closed(engine):
    """A ticket opened in September and resolved in October is October's; one opened in October and
    resolved in November is not; a ticket closed without a resolution time counts by its closing."""
    data = Dataset()
    reopened_tickets(data, "D1", 18, 0)
    data.ticket("sept-open", "D1", opened_at=OCT_1 - timedelta(hours=5), resolved_at=OCT_1 + timedelta(hours=1),
                reopened_count=1)
    data.ticket("closed-only", "D1", status="closed", resolved_at=None, closed_at=MID_MONTH, reopened_count=2)
    data.ticket("nov", "D1", resolved_at=datetime(2026, 11, 1), reopened_count=1)
    data.insert(engine)

    [d1] = by_entity(run_rule(engine, "cs.reopen_rate", "department")).values()

    assert (d1.population, d1.facts["numerator"]) == (20, 2)
    assert sorted(d1.evidence["sample_ids"]) == ["closed-only", "sept-open"]


def test_one_review_below_60_is_a_general_problem_on_its_ticket_and_60_is_not(engine):
    data = Dataset()
    data.staff("A1", "CS", name="王芳")
    data.staff("QA1", "OPS", "auditor", name="李静")
    for ticket_id, score in (("T-low", 59.5), ("T-60", 60.0), ("T-good", 95.0)):
        data.ticket(ticket_id, "CS", "A1")
        data.review(f"R-{ticket_id}", ticket_id, resolution_score=score, attitude_score=95.0,
                    notes="未查明故障原因即结单" if score < 60 else None)
    data.insert(engine)

    got = by_entity(run_rule(engine, "cs.qa_resolution", "ticket"))
    agent = by_entity(run_rule(engine, "cs.qa_resolution", "agent"))["A1"]

    assert list(got) == ["T-low"]
    assert (got["T-low"].severity, got["T-low"].facts["score"]) == (Severity.GENERAL, 59.5)
    assert got["T-low"].owner_id is None   # the department head's, given by the audit
    assert by_entity(run_rule(engine, "cs.qa_attitude", "ticket")) == {}   # attitude is fine
    # The agent's mean (71.5) misses 80 by 8.5 points: important, the most one agent's result may be.
    assert (agent.outcome, agent.severity, agent.observed) == (Outcome.FAILED, Severity.IMPORTANT, 71.5)
    zh = render_finding("cs.qa_resolution", "ticket", got["T-low"].facts, "zh-CN")
    en = render_finding("cs.qa_resolution", "ticket", got["T-low"].facts, "en")
    assert "问题解决得分为59.5分" in zh.description and "未查明故障原因即结单" in zh.description
    assert "王芳（A1）" in zh.description and "李静（QA1）" in zh.description
    assert "59.5 points for solving the customer's problem" in en.description


def test_the_new_rules_run_in_the_audits_the_catalogue_says():
    audits = {(r.rule_id, r.entity_type): r.audits for r in default_rules()
              if r.rule_id in ("cs.qa_resolution", "cs.reopen_rate")}
    assert audits == {("cs.qa_resolution", "agent"): ("cs-monthly",), ("cs.qa_resolution", "ticket"): ("cs-monthly",),
                      ("cs.reopen_rate", "department"): ("cs-weekly", "cs-monthly")}
    rules = {(r.rule_id, r.entity_type): r for r in default_rules()}
    reopen = rules[("cs.reopen_rate", "department")]
    assert (reopen.op, reopen.target, reopen.warning_band, reopen.bands) == ("at_most", 0.05, 0.02, (0.05, 0.15))
    resolution = rules[("cs.qa_resolution", "agent")]
    assert (resolution.unit, resolution.target, resolution.min_population, resolution.max_severity) == \
        ("score", 80, 3, "important")


def test_a_reopen_finding_reads_in_both_languages(engine):
    data = Dataset()
    data.department("CS2", name="客服二部")
    reopened_tickets(data, "CS2", 40, 4)
    data.insert(engine)

    [result] = [r for r in run_rule(engine, "cs.reopen_rate", "department", period=MONTH)
                if r.entity_type == "department"]

    zh = render_finding(result.rule_id, result.entity_type, result.facts, "zh-CN")
    en = render_finding(result.rule_id, result.entity_type, result.facts, "en")
    assert zh.title == "工单重开率超过上限"
    assert zh.description == ("2026年10月，客服二部（CS2）已解决或关闭的工单40张，其中被重新打开过的4张，"
                              "重开率10.0%，超过上限5.0%（超出5.0个百分点）。")
    assert en.description.startswith("客服二部 (CS2): in October 2026, 4 of the 40 tickets resolved or closed "
                                     "had been reopened, a reopen rate of 10.0%, above the limit of 5.0% by 5.0")

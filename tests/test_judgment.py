"""The audit team lead's judgment (seed 000 §6.1) and the root cause of a plan (§6.3), on SQLite and
PostgreSQL: regrade and withdraw by the lead alone, refusals that change nothing, deadlines
recomputed from when the finding was found, a withdrawn finding out of the counts, the scores, the
follow-up and the reruns, and the cause and prevention kept with each plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from opsaudit.config.models import Deadlines, RectificationTracking, Scoring
from opsaudit.periods import parse_period
from opsaudit.progress import progress
from opsaudit.reports.circulation import figures
from opsaudit.scores import scores_for
from opsaudit.settings import load_settings
from opsaudit.store import runs
from opsaudit.store.finding_views import FindingFilter, get_finding, last_cause, list_findings
from opsaudit.store.findings import record_findings
from opsaudit.store.lifecycle import Refused, Request, perform
from opsaudit.store.schema import finding_events, findings
from opsaudit.store.times import from_db
from opsaudit.tracking import track
from tests.rectification import CAUSE, FOUND, ZONE, company, directory, problem, raise_findings, set_status, snapshot

EVERYONE = ("E1", "M1", "M2", "A1", "A2", "H1", "O1", "O2", "H2", "O3")
STATES = ("open", "plan_submitted", "plan_approved", "in_progress", "submitted", "verified")
LEAD = "A1"   # the first auditor of the operations department, OPSAUDIT_AUDIT_LEAD being unset
INPUTS = {"regrade": {"severity": "major", "note": "影响全部夜班客户"}, "withdraw": {"note": "数据口径错误，误报"}}


@pytest.fixture
def people(engine):
    """Who is who in the company of tests/rectification.py, which `engine` holds beside its store."""
    company(engine)
    return directory(engine)


def act(engine, people, finding_id: str, action: str, actor: str, at: datetime = FOUND, **inputs):
    with engine.begin() as conn:
        return perform(conn, finding_id, Request(action, actor, **inputs), people, now=at, deadlines=Deadlines())


def refused(engine, people, finding_id: str, action: str, actor: str, **inputs) -> Refused:
    """The refusal of the action, after checking that it changed nothing."""
    before = snapshot(engine, finding_id)
    with pytest.raises(Refused) as refusal:
        act(engine, people, finding_id, action, actor, **inputs)
    assert snapshot(engine, finding_id) == before
    assert "\n" not in str(refusal.value)
    return refusal.value


def dates(engine, finding_id: str) -> tuple[str, datetime, datetime | None]:
    with engine.connect() as conn:
        row = get_finding(conn, finding_id)
    return row["severity"], from_db(row["due_at"], ZONE), from_db(row["plan_due_at"], ZONE)


# --- who may, and from which state ---------------------------------------------------------------

@pytest.mark.parametrize("action", ["regrade", "withdraw"])
def test_only_the_audit_team_lead_regrades_and_withdraws(engine, people, action):
    [finding] = raise_findings(engine, [problem(severity="general")])
    for actor in EVERYONE:
        if actor == LEAD:
            continue
        assert refused(engine, people, finding, action, actor, **INPUTS[action]).key == "role", actor
    assert "只有稽查小组组长员工A1（A1）可以" in str(refused(engine, people, finding, action, "A2", **INPUTS[action]))
    act(engine, people, finding, action, LEAD, **INPUTS[action])


def test_the_lead_named_by_the_setting_is_the_one_who_judges(engine, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_AUDIT_LEAD", "A2")
    company(engine)
    people = directory(engine)
    [finding] = raise_findings(engine, [problem(severity="general")])
    assert refused(engine, people, finding, "withdraw", "A1", note="误报").key == "role"
    act(engine, people, finding, "withdraw", "A2", note="误报")


def test_regrade_and_withdraw_start_from_any_state_but_closed(engine, people):
    [finding] = raise_findings(engine, [problem(severity="general")])
    for state in STATES:
        for action in ("regrade", "withdraw"):
            set_status(engine, finding, state)
            with engine.connect() as conn, conn.begin() as transaction:
                perform(conn, finding, Request(action, LEAD, **INPUTS[action]), people, now=FOUND,
                        deadlines=Deadlines())
                transaction.rollback()
    for state, actions in (("closed", ("regrade", "withdraw")), ("withdrawn", ("regrade", "withdraw"))):
        set_status(engine, finding, state)
        for action in actions:
            assert refused(engine, people, finding, action, LEAD, **INPUTS[action]).key == "state"


# --- regrade -------------------------------------------------------------------------------------

def test_a_regrade_recomputes_the_deadlines_from_when_the_finding_was_found(engine, people):
    [finding] = raise_findings(engine, [problem(severity="general")])
    assert dates(engine, finding) == ("general", FOUND + timedelta(days=15), None)
    later = FOUND + timedelta(days=10)
    done = act(engine, people, finding, "regrade", LEAD, later, severity="重大问题", note="影响全部夜班客户")
    assert dates(engine, finding) == ("major", FOUND + timedelta(days=30), FOUND + timedelta(days=7))
    assert (done.from_status, done.to_status) == ("open", "open")
    act(engine, people, finding, "regrade", LEAD, later, severity="important", note="影响有限")
    assert dates(engine, finding) == ("important", FOUND + timedelta(days=30), None)
    with engine.connect() as conn:
        event = conn.execute(sa.select(finding_events).where(finding_events.c.action == "regrade")
                             .order_by(finding_events.c.id)).mappings().first()
    assert event["data"]["severity"] == {"from": "general", "to": "major"}
    assert event["data"]["due_at"] == {"from": (FOUND + timedelta(days=15)).isoformat(),
                                       "to": (FOUND + timedelta(days=30)).isoformat()}
    assert (event["note"], event["actor"], event["channel"]) == ("影响全部夜班客户", LEAD, "cli")


def test_a_regrade_without_a_known_new_severity_is_refused(engine, people):
    [finding] = raise_findings(engine, [problem(severity="important")])
    assert refused(engine, people, finding, "regrade", LEAD, note="x").key == "needs_severity"
    unknown = refused(engine, people, finding, "regrade", LEAD, severity="critical", note="x")
    assert unknown.key == "unknown_severity" and "critical" in str(unknown)
    assert refused(engine, people, finding, "regrade", LEAD, severity="重要", note="x").key == "same_severity"


def test_a_rerun_keeps_the_leads_severity_and_refreshes_the_figures(engine, people):
    [finding] = raise_findings(engine, [problem(severity="general")])
    act(engine, people, finding, "regrade", LEAD, severity="major", note="影响全部夜班客户")
    raise_findings(engine, [replace(problem(severity="important"), observed=0.7)], found_at=FOUND + timedelta(days=1))
    with engine.connect() as conn:
        row = get_finding(conn, finding)
    assert (row["severity"], row["observed"]) == ("major", 0.7)
    assert from_db(row["due_at"], ZONE) == FOUND + timedelta(days=30)


# --- withdraw ------------------------------------------------------------------------------------

def test_a_withdrawn_finding_leaves_the_counts_the_overdue_list_and_the_follow_up(engine, people):
    kept, withdrawn = raise_findings(engine, [problem("CS1", "important"), problem("CS2", "important", owner="O3")])
    late = FOUND + timedelta(days=40)

    def counts() -> tuple[int, int, int]:
        with engine.connect() as conn:
            state = progress(conn, late, ZONE)
            overdue = list_findings(conn, FindingFilter(overdue_at=late))
        return sum(state.counts["open"].values()), sum(state.counts["overdue"].values()), len(overdue)

    assert counts() == (2, 2, 2)
    act(engine, people, withdrawn, "withdraw", LEAD, note="数据口径错误，误报")
    assert counts() == (1, 1, 1)
    with engine.connect() as conn:
        assert [row["id"] for row in list_findings(conn, FindingFilter(status="withdrawn"))] == [withdrawn]
    with engine.begin() as conn:
        summary = track(conn, people, RectificationTracking(), now=late, zone=ZONE, language="zh-CN",
                        settings=load_settings())
        told = conn.execute(sa.select(finding_events.c.finding_id).where(
            finding_events.c.action.in_(("reminded", "escalated")))).scalars().all()
    assert summary.escalated and set(told) == {kept}


def test_a_withdrawn_finding_costs_no_score(engine, people):
    major, general = raise_findings(engine, [problem("CS1", "major", owner="O1"),
                                            problem("CS2", "general", owner="O3")])

    def scores() -> dict[str, int]:
        with engine.connect() as conn:
            return {s.entity_id: s.score for s in scores_for(conn, "2026-10", scoring=Scoring(), zone=ZONE,
                                                             now=FOUND, directory=people)}

    assert {k: v for k, v in scores().items() if k in ("CS1", "CS2", "O1", "O3")} == {
        "CS1": 90, "CS2": 99, "O1": 90, "O3": 99}
    act(engine, people, major, "withdraw", LEAD, note="误报")
    act(engine, people, general, "regrade", LEAD, severity="important", note="影响大于测得的")
    after = scores()
    assert (after["CS1"], after["CS2"], after["O3"]) == (100, 97, 97) and "O1" not in after


def test_a_rerun_after_a_withdrawal_neither_raises_it_again_nor_revives_it(engine, people):
    record = problem("CS1", "general")
    task = replace(record, rule_id="exec.overdue_tasks", area="execution", entity_type="task", entity_id="TSK-1",
                   observed=None, target=None)
    rate, overdue_task = raise_findings(engine, [record, task])
    for finding in (rate, overdue_task):
        act(engine, people, finding, "withdraw", LEAD, note="误报")
    before = [snapshot(engine, finding) for finding in (rate, overdue_task)]
    with engine.begin() as conn:
        run = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period("2026-10"),
                             parameters={}, config_hash="test")
        summary = record_findings(conn, run, [replace(record, severity=record.severity.raised()), task],
                                  found_at=FOUND + timedelta(days=3), deadlines=Deadlines(), recurrence_periods=2,
                                  config_hash="test", zone=ZONE)
    assert (summary.raised, summary.updated, summary.unchanged) == (0, 0, 2)
    assert [snapshot(engine, finding) for finding in (rate, overdue_task)] == before
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(findings)).scalar_one() == 2
    # A later period is another question: the task still late in November is a new finding of it.
    raise_findings(engine, [task], period="2026-11", found_at=FOUND + timedelta(days=30))
    with engine.connect() as conn:
        november = list_findings(conn, FindingFilter(period="2026-11"))
    assert [(row["entity_id"], row["status"]) for row in november] == [("TSK-1", "open")]


def test_the_circulation_and_the_report_leave_a_withdrawn_finding_out_and_list_it_with_its_reason(
        engine, people, db_url, monkeypatch):
    from opsaudit.reports.report_data import load_report_data

    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    kept, withdrawn = raise_findings(engine, [problem("CS1", "major"), problem("CS2", "general", owner="O3")])
    act(engine, people, withdrawn, "withdraw", LEAD, FOUND + timedelta(hours=2), note="数据口径错误，误报")
    settings = load_settings()
    with engine.connect() as conn:
        month = figures(conn, parse_period("2026-10"), now=FOUND + timedelta(days=1), zone=ZONE)
        run_id = get_finding(conn, kept)["audit_run_id"]
        data = load_report_data(conn, settings, settings.load_config(), run_id, "zh-CN", staff_names={},
                                department_names={})
    assert [run["problems"] for run in month.runs] == [1] and set(month.problems) == {"CS1"}
    assert data.total_findings == 1 and dict(data.severity_counts) == {"major": 1}
    [line] = data.withdrawn
    assert (line.id, line.by, line.reason) == (withdrawn, LEAD, "数据口径错误，误报")


def audit_run(engine, period: str, clock: datetime, results=()) -> tuple[str, list[str]]:
    """A succeeded cs-monthly run of `period` at the audit's `clock`, recorded as the flows record
    it (a naive local --now), with `results` raised as findings: the run's id and theirs."""
    with engine.begin() as conn:
        run = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period(period),
                             parameters={"now": clock.replace(tzinfo=None).isoformat()}, config_hash="test")
        record_findings(conn, run, list(results), found_at=clock, deadlines=Deadlines(), recurrence_periods=2,
                        config_hash="test", zone=ZONE)
        runs.finish_run(conn, run.id, status="succeeded")
        raised = dict(conn.execute(sa.select(findings.c.entity_id, findings.c.id)
                                   .where(findings.c.audit_run_id == run.id)).all())
    return run.id, [raised[result.entity_id] for result in results]


def test_the_next_report_of_the_audit_lists_the_findings_withdrawn_since_the_last_one(engine, people, db_url,
                                                                                      monkeypatch):
    from opsaudit.reports.report_data import load_report_data

    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    settings = load_settings()
    december = datetime(2026, 12, 1, 2, tzinfo=ZONE)   # when November is audited
    _, (in_november, on_audit_day, afterwards) = audit_run(engine, "2026-10", FOUND, [
        problem("CS1", "general"), problem("CS2", "general", owner="O3"), problem("HQ", "general", owner="E1")])
    # Withdrawn after October's report: during November, after November ended but before it was
    # audited, and after November's report.
    for finding, at, reason in ((in_november, FOUND + timedelta(days=3), "数据口径错误，误报"),
                                (on_audit_day, december - timedelta(hours=1), "已在九月整改完毕"),
                                (afterwards, december + timedelta(days=1), "重复登记")):
        act(engine, people, finding, "withdraw", LEAD, at, note=reason)

    def withdrawn(run_id: str) -> list[tuple[str, str, str, datetime]]:
        with engine.connect() as conn:
            data = load_report_data(conn, settings, settings.load_config(), run_id, "zh-CN", staff_names={},
                                    department_names={})
        return [(line.id, line.by, line.reason, line.at) for line in data.withdrawn]

    november, _ = audit_run(engine, "2026-11", december)
    listed = withdrawn(november)
    assert listed == [(in_november, LEAD, "数据口径错误，误报", FOUND + timedelta(days=3)),
                      (on_audit_day, LEAD, "已在九月整改完毕", december - timedelta(hours=1))]
    assert withdrawn(audit_run(engine, "2026-12", datetime(2027, 1, 1, 2, tzinfo=ZONE))[0]) == [
        (afterwards, LEAD, "重复登记", december + timedelta(days=1))]
    # A later rerun of October is a report of its own: November's, rendered again, stays as it was.
    audit_run(engine, "2026-10", december + timedelta(days=2))
    assert withdrawn(november) == listed


# --- root cause and prevention -------------------------------------------------------------------

@pytest.mark.parametrize("severity", ["important", "major"])
def test_the_plan_of_an_important_or_major_finding_states_its_cause_and_prevention(engine, people, severity):
    [finding] = raise_findings(engine, [problem(severity=severity)])
    for given in ({}, {"cause": "夜班人手不足"}, {"prevention": "按话务量排班"}, {"cause": " ", "prevention": "x"}):
        refusal = refused(engine, people, finding, "submit-plan", "O1", note="方案", **given)
        assert refusal.key == "needs_cause" and "根本原因" in str(refusal)
    act(engine, people, finding, "submit-plan", "O1", note="方案", **CAUSE)
    with engine.connect() as conn:
        data = conn.execute(sa.select(finding_events.c.data).where(finding_events.c.action == "submit-plan")
                            ).scalar_one()
    assert data == CAUSE


def test_a_general_findings_plan_needs_no_cause(engine, people):
    [finding] = raise_findings(engine, [problem(severity="general")])
    act(engine, people, finding, "submit-plan", "O1")
    with engine.connect() as conn:
        assert get_finding(conn, finding)["status"] == "plan_submitted"


def test_the_circulation_summarises_the_causes_of_the_months_plans(engine, people):
    first, second, late = raise_findings(engine, [problem("CS1", "important"), problem("CS2", "major", owner="O3"),
                                                 problem("HQ", "important", owner="E1")])
    november = datetime(2026, 11, 3, 10, tzinfo=ZONE)
    act(engine, people, first, "submit-plan", "O1", november, cause="排班不合理", prevention="按话务量排班")
    act(engine, people, first, "reject-plan", "M1", november + timedelta(hours=1), note="缺少时间表")
    act(engine, people, first, "submit-plan", "O1", november + timedelta(hours=2), cause="夜班人手不足",
        prevention="增设夜班")
    act(engine, people, second, "submit-plan", "O3", november + timedelta(hours=3), **CAUSE)
    act(engine, people, late, "submit-plan", "E1", datetime(2026, 12, 1, 0, 5, tzinfo=ZONE), **CAUSE)
    with engine.connect() as conn:
        month = figures(conn, parse_period("2026-11"), now=datetime(2026, 12, 1, 12, tzinfo=ZONE), zone=ZONE)
    assert [(row["id"], row["plan_data"]["cause"], row["plan_data"]["prevention"]) for row in month.causes] == [
        (first, "夜班人手不足", "增设夜班"), (second, CAUSE["cause"], CAUSE["prevention"])]
    from opsaudit.reports.circulation import body

    written = body(month, "zh-CN", ZONE, people).text()
    assert "本月提交的整改方案：根本原因与预防措施" in written and "夜班人手不足" in written
    assert "排班不合理" not in written


def test_a_recurring_finding_shows_the_cause_recorded_the_last_time(engine, people):
    september = datetime(2026, 10, 1, 9, tzinfo=ZONE)
    [old] = raise_findings(engine, [problem("CS1", "important")], period="2026-09", found_at=september)
    steps = [("submit-plan", "O1", CAUSE), ("approve-plan", "M1", {}), ("start", "O1", {}),
             ("submit", "O1", {"evidence": "https://x/1"}), ("verify", "A2", {}), ("close", "A2", {})]
    for day, (action, actor, inputs) in enumerate(steps, start=2):
        act(engine, people, old, action, actor, september + timedelta(days=day), **inputs)
    [recurring] = raise_findings(engine, [problem("CS1", "important")])
    with engine.connect() as conn:
        row = get_finding(conn, recurring)
        previous = last_cause(conn, row, ZONE)
        assert last_cause(conn, get_finding(conn, old), ZONE) is None
    assert row["recurring"] and row["severity"] == "major"
    assert previous == {"finding_id": old, "at": (september + timedelta(days=2)).isoformat(timespec="seconds"),
                        **CAUSE}


# --- the command line ----------------------------------------------------------------------------

def opsaudit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_the_command_line_regrades_withdraws_and_shows_the_judgment(engine, people, db_url):
    important, general = raise_findings(engine, [problem("CS1", "important"), problem("CS2", "general", owner="O3")])
    env = {**os.environ, "OPSAUDIT_DATABASE_URL": db_url, "COLUMNS": "400"}
    before = snapshot(engine, important)
    for args, code, words in (
            (("submit-plan", important, "--actor", "O1", "--cause", "人手不足"), 1, "须附--prevention"),
            (("regrade", important, "--actor", "A2", "--severity", "major", "--note", "x"), 1, "只有稽查小组组长"),
            (("regrade", important, "--actor", LEAD, "--severity", "critical", "--note", "x"), 1,
             "问题等级critical无效"),
            (("regrade", important, "--actor", LEAD, "--note", "x"), 1, "须以--severity给出新的问题等级"),
            (("withdraw", important, "--actor", LEAD), 2, "withdraw 须附 --note")):
        result = opsaudit("findings", *args, env=env)
        assert (result.returncode, result.stdout) == (code, ""), args
        assert words in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert snapshot(engine, important) == before

    planned = opsaudit("findings", "submit-plan", important[:8], "--actor", "O1", "--cause", "夜班人手不足",
                       "--prevention", "按话务量排班", env=env)
    assert planned.returncode == 0, planned.stderr
    regraded = opsaudit("findings", "regrade", important[:8], "--actor", LEAD, "--severity", "一般问题", "--note",
                        "影响仅限一个班组", env=env)
    assert regraded.returncode == 0, regraded.stderr
    found = from_db(snapshot(engine, important)[0]["found_at"], ZONE)
    assert regraded.stdout.strip() == (f"问题{important[:8]}：问题等级由重要问题调整为一般问题，整改期限改为"
                                       f"{(found + timedelta(days=15)):%Y-%m-%d}，操作人：员工A1（A1）")
    withdrawn = opsaudit("findings", "withdraw", general[:8], "--actor", LEAD, "--note", "误报", "--lang", "en",
                         "--evidence", "https://wiki.example.com/audit/12", env=env)
    assert withdrawn.stdout.strip() == (f"finding {general[:8]}: withdraw, awaiting rectification → withdrawn, "
                                        "by 员工A1 (A1)")

    shown = opsaudit("findings", "show", important, env=env).stdout
    for expected in ("根本原因：夜班人手不足", "预防措施：按话务量排班", "问题等级由重要问题调整为一般问题",
                     "影响仅限一个班组"):
        assert expected in shown, expected
    events = json.loads(opsaudit("findings", "show", important, "--format", "json", env=env).stdout)["events"]
    by_action = {event["action"]: event for event in events}
    plan = by_action["submit-plan"]
    assert (plan["cause"], plan["prevention"]) == ("夜班人手不足", "按话务量排班")
    assert (by_action["regrade"]["severity_from"], by_action["regrade"]["severity_to"]) == ("important", "general")
    assert by_action["regrade"]["channel"] == "cli"
    listed = json.loads(opsaudit("findings", "list", "--status", "已撤销", "--format", "json", env=env).stdout)
    assert [row["id"] for row in listed] == [general]
    [withdrawal] = [e for e in json.loads(opsaudit("findings", "show", general, "--format", "json", env=env).stdout
                                          )["events"] if e["action"] == "withdraw"]
    assert withdrawal["evidence"] == "https://wiki.example.com/audit/12"   # the lead's grounds, as any action's

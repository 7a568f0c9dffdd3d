"""Reminders, the escalation ladder and the weekly progress report, on SQLite and PostgreSQL:
each step once across a finding's life, with the tracking run twice a day."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from opsaudit.config.loader import load_config
from opsaudit.config.models import RectificationTracking
from opsaudit.progress import progress, send_progress_report
from opsaudit.reports import outbox
from opsaudit.settings import load_settings
from opsaudit.store import lifecycle
from opsaudit.store.lifecycle import Request, perform
from opsaudit.store.schema import finding_events
from opsaudit.store.times import from_db
from opsaudit.tracking import track
from tests.rectification import CAUSE, ZONE, company, directory, email, problem, raise_findings

POLICY = load_config(None).audits.rectification_tracking
WEB = load_settings(web_url="https://audit.example.com/ops")
FOUND = datetime(2026, 11, 2, 9, 0, tzinfo=ZONE)   # a Monday; a general problem is due 2026-11-17 09:00


@pytest.fixture
def store(engine):
    company(engine)
    return engine


@pytest.fixture
def people(store):
    return directory(store)


def twice_a_day(first: date, last: date):
    """The tracking's clock: 08:00 and 20:00 of every day from first to last."""
    day = first
    while day <= last:
        for hour in (8, 20):
            yield datetime(day.year, day.month, day.day, hour, tzinfo=ZONE)
        day += timedelta(days=1)


def run_tracking(engine, people, now: datetime, policy: RectificationTracking = POLICY):
    """What the flow does before delivering the mail: track, then the week's progress report."""
    with engine.begin() as conn:
        summary = track(conn, people, policy, now=now, zone=ZONE, language="zh-CN", settings=WEB)
        send_progress_report(conn, people, policy.progress_report_weekday, now=now, zone=ZONE, language="zh-CN")
    return summary


def steps_taken(engine, finding_id: str) -> list[tuple[str, date, str, list[str]]]:
    """(action, local day, step, who was told) of the finding's reminders and escalations, in order."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(finding_events).where(
            finding_events.c.finding_id == finding_id, finding_events.c.action.in_(["reminded", "escalated"]))
            .order_by(finding_events.c.id)).mappings().all()
    return [(row["action"], from_db(row["at"], ZONE).date(), row["data"]["step"], row["data"]["told"])
            for row in rows]


def act(engine, people, finding_id: str, action: str, actor: str, at: datetime, **inputs) -> None:
    with engine.begin() as conn:
        perform(conn, finding_id, Request(action, actor, **inputs), people, now=at)


def test_a_late_general_finding_is_reminded_then_climbs_the_ladder_each_step_once(store, people):
    [finding] = raise_findings(store, [problem("CS1", "general")], found_at=FOUND)
    for now in twice_a_day(date(2026, 11, 2), date(2026, 12, 10)):
        run_tracking(store, people, now)
    assert steps_taken(store, finding) == [
        ("reminded", date(2026, 11, 10), "remind:7", ["O1"]),
        ("reminded", date(2026, 11, 16), "remind:1", ["O1"]),
        ("escalated", date(2026, 11, 18), "escalate:department_head", ["H1", "O1"]),
        ("escalated", date(2026, 11, 24), "escalate:operations_manager", ["M1", "O1"]),
        ("escalated", date(2026, 12, 1), "escalate:executives", ["E1", "E2", "O1"]),
    ]
    with store.connect() as conn:
        notes = conn.execute(sa.select(finding_events.c.note).where(finding_events.c.action == "escalated")
                             .order_by(finding_events.c.id)).scalars().all()
    assert notes[0] == "已通知员工H1（H1）、员工O1（O1）"


def test_the_ladder_stops_while_the_rectification_is_with_the_auditors_and_resumes_when_returned(store, people):
    [finding] = raise_findings(store, [problem("CS2", "important", owner="O3")], found_at=FOUND)  # due 12-02
    timeline = {date(2026, 11, 5): [("submit-plan", "O3", CAUSE), ("approve-plan", "M1", {}), ("start", "O3", {})],
                date(2026, 12, 4): [("submit", "O3", {"evidence": "https://x/1"})],
                date(2026, 12, 20): [("reject", "A1", {"note": "证据不足"})]}
    for now in twice_a_day(date(2026, 11, 2), date(2026, 12, 31)):
        for action, actor, inputs in timeline.get(now.date(), []) if now.hour == 8 else []:
            act(store, people, finding, action, actor, now, **inputs)
        run_tracking(store, people, now)
    assert [(day, step) for _, day, step, _ in steps_taken(store, finding)] == [
        (date(2026, 11, 25), "remind:7"), (date(2026, 12, 1), "remind:1"),
        (date(2026, 12, 3), "escalate:department_head"),
        # submitted on 12-04: the rectification is the auditors' until it is returned on 12-20
        (date(2026, 12, 20), "escalate:operations_manager"), (date(2026, 12, 20), "escalate:executives"),
    ]


def test_a_major_findings_owner_is_reminded_of_the_plans_deadline_until_the_plan_is_in(store, people):
    late, prompt = raise_findings(store, [problem("CS1", "major"), problem("CS2", "major", owner="O3")],
                                  found_at=FOUND)   # plans due 11-09 09:00
    for now in twice_a_day(date(2026, 11, 2), date(2026, 11, 12)):
        if now == datetime(2026, 11, 4, 8, tzinfo=ZONE):
            act(store, people, prompt, "submit-plan", "O3", now, **CAUSE)
        run_tracking(store, people, now)
    assert [(day, step) for _, day, step, _ in steps_taken(store, late)] == [
        (date(2026, 11, 2), "remind_plan:7"), (date(2026, 11, 8), "remind_plan:1")]
    assert [(day, step) for _, day, step, _ in steps_taken(store, prompt)] == [(date(2026, 11, 2), "remind_plan:7")]


def test_a_run_that_missed_days_sends_the_nearest_reminder_and_every_level_reached(store, people):
    first, second = raise_findings(store, [problem("CS1", "general"), problem("CS2", "general", owner="O3")],
                                   found_at=FOUND)
    run_tracking(store, people, datetime(2026, 11, 16, 8, tzinfo=ZONE))
    assert [step for _, _, step, _ in steps_taken(store, first)] == ["remind:1"]
    summary = run_tracking(store, people, datetime(2026, 11, 26, 8, tzinfo=ZONE))
    assert [s for _, _, s, _ in steps_taken(store, second)] == [
        "remind:1", "escalate:department_head", "escalate:operations_manager"]
    assert (summary.reminded, summary.escalated) == (0, 4)
    # one message per person told: H1 and H2 one each, M1 one listing both findings, O1 and O3 one each
    assert summary.messages == 5


def test_escalation_mail_lists_each_persons_findings_once_each_named_by_period_and_page(store, people):
    cs1, cs2 = raise_findings(store, [problem("CS1", "general"), problem("CS2", "general", owner="O3")],
                              found_at=FOUND)
    # The same rule failed by the same department a month earlier: a second finding, told apart.
    [september] = raise_findings(store, [problem("CS1", "general")], period="2026-09",
                                 found_at=FOUND - timedelta(hours=1))
    run_tracking(store, people, datetime(2026, 11, 24, 8, tzinfo=ZONE))
    with store.connect() as conn:
        mails = {tuple(a.email for a in m.recipients): outbox.get(conn, m.id) for m in outbox.list_mail(conn)
                 if m.dedupe_key.startswith("rectification:escalation:")}
    manager = mails[(email("M1"),)]
    assert manager.subject == "整改逾期上报：3个问题已超过整改期限"
    assert manager.body_text.count("已上报至：运营部经理") == 3 and manager.body_text.count("逾期天数：7天") == 3
    for finding, title in ((cs1, "客户满意度未达标（CS1，2026年10月）"),
                           (september, "客户满意度未达标（CS1，2026年9月）"),
                           (cs2, "客户满意度未达标（CS2，2026年10月）")):
        page = f"https://audit.example.com/ops/findings/{finding}"
        assert f"{title}\n" in manager.body_text and f"处理页面：{page}\n" in manager.body_text
        assert f'<a href="{page}">{title}</a>' in manager.body_html
    assert "<table" in manager.body_html
    owner = mails[(email("O1"),)]   # in copy at both levels of each finding, and told so once a finding
    assert owner.subject == "整改逾期上报：2个问题已超过整改期限"
    assert owner.body_text.count("已上报至：责任部门负责人、运营部经理") == 2
    assert "您是以下问题的责任人" in owner.body_text
    assert f"处理页面：https://audit.example.com/ops/findings/{september}" in owner.body_text


def test_people_who_cannot_be_told_are_named_and_the_step_is_still_recorded(store, people):
    with store.begin() as conn:
        conn.execute(sa.text("UPDATE departments SET head_id = NULL WHERE department_id = 'CS1'"))
    people = directory(store)
    [finding] = raise_findings(store, [problem("CS1", "general", owner="X1")], found_at=FOUND)
    summary = run_tracking(store, people, datetime(2026, 11, 18, 8, tzinfo=ZONE))
    assert steps_taken(store, finding)[-1][2:] == ("escalate:department_head", [])
    zh, en = summary.as_json("zh-CN")["unreachable"], summary.as_json("en")["unreachable"]
    assert any("CS1" in note and "未设负责人（departments.head_id），无法通知" in note for note in zh), zh
    assert any("(CS1) has no head (departments.head_id)" in note for note in en), en
    assert summary.messages == 0


def test_configured_days_move_the_steps(store, people):
    policy = RectificationTracking(reminder_days=(3,), escalation_days={"department_head": 0,
                                                                          "operations_manager": 2, "executives": 4})
    [finding] = raise_findings(store, [problem("CS1", "general")], found_at=FOUND)
    for now in twice_a_day(date(2026, 11, 2), date(2026, 11, 25)):
        run_tracking(store, people, now, policy)
    assert [(day, step) for _, day, step, _ in steps_taken(store, finding)] == [
        (date(2026, 11, 14), "remind:3"), (date(2026, 11, 17), "escalate:department_head"),
        (date(2026, 11, 19), "escalate:operations_manager"), (date(2026, 11, 21), "escalate:executives")]


# --- the weekly progress report ---------------------------------------------------------------------

def test_the_weekly_progress_report_counts_and_names_the_major_findings_with_their_task_force(store, people):
    general, important, major = raise_findings(store, [
        problem("CS1", "general"), problem("CS2", "important", owner="O3"), problem("HQ", "major", owner="E1")],
        found_at=FOUND)
    with store.begin() as conn:
        lifecycle.record_special_meeting(conn, major, actor="M1", held_on=date(2026, 11, 2), note="研究方案",
                                         directory=people, now=FOUND)
        lifecycle.record_task_force(conn, major, actor="M1", lead="H1", members=("O1", "O2"), directory=people,
                                    now=FOUND)
    for action, actor, inputs in (("start", "O1", {}), ("submit", "O1", {"evidence": "https://x/1"}),
                                  ("verify", "A1", {}), ("close", "A1", {})):
        act(store, people, general, action, actor, datetime(2026, 11, 27, 10, tzinfo=ZONE), **inputs)
    for now in twice_a_day(date(2026, 11, 2), date(2026, 11, 30)):
        run_tracking(store, people, now)
    monday = datetime(2026, 11, 30, 8, tzinfo=ZONE)
    with store.connect() as conn:
        report = progress(conn, monday, ZONE)
    assert report.week == "2026-W49"
    assert report.counts == {"open": {"major": 1, "important": 1, "general": 0},
                             "due_soon": {"major": 1, "important": 1, "general": 0},
                             "overdue": {"major": 0, "important": 0, "general": 0},
                             "escalated": {"major": 0, "important": 0, "general": 0},
                             "closed": {"major": 0, "important": 0, "general": 1}}
    with store.connect() as conn:
        weeks = [m.dedupe_key.split(":")[2] for m in outbox.list_mail(conn) if ":progress:" in m.dedupe_key]
        [weekly] = [outbox.get(conn, m.id) for m in outbox.list_mail(conn) if m.dedupe_key.startswith(
            "rectification:progress:2026-W49")]
    assert weeks == ["2026-W45", "2026-W46", "2026-W47", "2026-W48", "2026-W49"]
    assert {a.email for a in weekly.recipients} == {email("M1"), email("E1"), email("E2")}
    assert weekly.subject == "整改进展周报：2026年第49周"
    assert "2026-11-02" in weekly.body_text
    assert "组长员工H1（H1），成员员工H1（H1）、员工O1（O1）、员工O2（O2）" in weekly.body_text
    with store.begin() as conn:   # later in the week: nothing more
        assert send_progress_report(conn, people, 1, now=monday + timedelta(days=2), zone=ZONE,
                                    language="zh-CN")[:2] == (None, 0)


def test_without_an_open_major_finding_the_report_goes_to_the_operations_manager_only(store, people):
    raise_findings(store, [problem("CS1", "general")], found_at=FOUND)
    with store.begin() as conn:
        week, messages, _ = send_progress_report(conn, people, 3, now=datetime(2026, 11, 9, 8, tzinfo=ZONE),
                                                 zone=ZONE, language="en")
        assert (week, messages) == (None, 0)   # Monday, before the configured Wednesday
        week, messages, _ = send_progress_report(conn, people, 3, now=datetime(2026, 11, 12, 8, tzinfo=ZONE),
                                                 zone=ZONE, language="en")
        [weekly] = [outbox.get(conn, m.id) for m in outbox.list_mail(conn)]
    assert (week, messages) == ("2026-W46", 1)
    assert [a.email for a in weekly.recipients] == [email("M1")]
    assert weekly.subject == "Weekly rectification progress: week 46 of 2026"
    assert "Major problems under special rectification" in weekly.body_text


def test_the_progress_report_names_who_could_not_receive_it(store, people):
    raise_findings(store, [problem("CS1", "general")], found_at=FOUND)
    with store.begin() as conn:
        conn.execute(sa.text("UPDATE staff SET email = NULL WHERE staff_id = 'M1'"))
    people = directory(store)
    with store.begin() as conn:
        sent = send_progress_report(conn, people, 3, now=datetime(2026, 11, 12, 8, tzinfo=ZONE), zone=ZONE,
                                    language="zh-CN")
    assert (sent.week, sent.messages) == (None, 0)
    assert [note.text("zh-CN") for note in sent.notes] == ["员工M1（M1，运营部经理）在员工表中没有电子邮箱，未发送邮件"]


@pytest.mark.parametrize(("yaml", "message"), [
    ("escalation_days: {operations_manager: 20}", "rectification_tracking.escalation_days: the ladder climbs"),
    ("reminder_days: [0]", "rectification_tracking.reminder_days.0: must be at least 1"),
    ("progress_report_weekday: 8", "rectification_tracking.progress_report_weekday: must be at most 7"),
])
def test_a_mistake_in_the_tracking_config_names_the_file_and_key(tmp_path, yaml, message):
    from opsaudit.errors import ConfigError

    (tmp_path / "config" / "audits.yaml").write_text(f"rectification_tracking:\n  {yaml}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "config")
    assert refused.value.text("en").startswith(f"config/audits.yaml: {message}")

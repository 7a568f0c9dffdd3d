"""The rectification lifecycle on SQLite and PostgreSQL: who may move a finding from which state,
refusals that change nothing, the history, a major finding's meeting and task force, recurrence."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from opsaudit.errors import InputError, UsageError
from opsaudit.store import lifecycle
from opsaudit.store.finding_views import get_finding, history, list_findings
from opsaudit.store.lifecycle import Refused, Request, perform
from opsaudit.store.schema import finding_events
from opsaudit.store.times import from_db
from tests.rectification import CAUSE, FOUND, ZONE, company, directory, problem, raise_findings, set_status, snapshot

STATES = ("open", "plan_submitted", "plan_approved", "in_progress", "submitted", "verified", "closed")
# interface.md's table, written out: the states each action starts from, and who may take it on a
# finding of CS1 owned by O1 (H1 heads CS1, M1 is the operations manager, M2 the deputy).
FROM = {"assign": set(STATES) - {"closed"}, "submit-plan": {"open"}, "approve-plan": {"plan_submitted"},
        "reject-plan": {"plan_submitted"}, "start": {"plan_approved"}, "submit": {"in_progress"},
        "reject": {"submitted"}, "verify": {"submitted"}, "close": {"verified"}, "reopen": {"closed"}}
WHO = {"assign": {"M1", "H1"}, "submit-plan": {"O1", "H1"}, "approve-plan": {"M1", "M2"},
       "reject-plan": {"M1", "M2"}, "start": {"O1", "H1"}, "submit": {"O1", "H1"}, "reject": {"A1", "A2"},
       "verify": {"A1", "A2"}, "close": {"A1", "A2"}, "reopen": {"A1", "A2", "M1"}}
EVERYONE = ("E1", "M1", "M2", "A1", "A2", "H1", "O1", "O2", "H2", "O3")
INPUTS = {"assign": {"to": "O2"}, "reject-plan": {"note": "缺少时间表"}, "submit": {"evidence": "https://x/1"},
          "reject": {"note": "证据不足"}, "reopen": {"note": "问题复发"}, "submit-plan": CAUSE}


@pytest.fixture
def store(engine):
    company(engine)
    return engine


@pytest.fixture
def people(store):
    return directory(store)


def act(engine, people, finding_id: str, action: str, actor: str, at: datetime = FOUND, **inputs):
    with engine.begin() as conn:
        return perform(conn, finding_id, Request(action, actor, **inputs), people, now=at)


def drive(engine, people, finding_id: str, steps: list[tuple[str, str, dict]]) -> datetime:
    """Take the steps a day apart from FOUND; returns the time of the last."""
    at = FOUND
    for number, (action, actor, inputs) in enumerate(steps, start=1):
        at = FOUND + timedelta(days=number)
        act(engine, people, finding_id, action, actor, at, **inputs)
    return at


PLAN_PATH = [("submit-plan", "H1", {"note": "方案：增加夜班", **CAUSE}),
             ("reject-plan", "M2", {"note": "缺少时间表"}),
             ("submit-plan", "O1", {"note": "方案：增加夜班，11月底前完成", **CAUSE}),
             ("approve-plan", "M1", {}),
             ("start", "O1", {}),
             ("submit", "O1", {"evidence": "https://wiki.example.com/rectification/1"}),
             ("reject", "A1", {"note": "满意度仍未达标"}),
             ("submit", "H1", {"evidence": "https://wiki.example.com/rectification/2"}),
             ("verify", "A2", {}),
             ("close", "A1", {})]
PLAN_STATES = [("open", "plan_submitted"), ("plan_submitted", "open"), ("open", "plan_submitted"),
               ("plan_submitted", "plan_approved"), ("plan_approved", "in_progress"), ("in_progress", "submitted"),
               ("submitted", "in_progress"), ("in_progress", "submitted"), ("submitted", "verified"),
               ("verified", "closed")]


@pytest.mark.parametrize("severity", ["general", "important", "major"])
def test_a_finding_goes_from_open_to_closed_through_its_plan_by_the_right_people(store, people, severity):
    [finding] = raise_findings(store, [problem(severity=severity)])
    closed_at = drive(store, people, finding, PLAN_PATH)
    with store.connect() as conn:
        row = get_finding(conn, finding)
        events = history(conn, finding, ZONE)
    assert row["status"] == "closed" and from_db(row["closed_at"], ZONE) == closed_at
    assert [(e["action"], e["actor"]) for e in events] == [("raised", "system")] + [(a, who) for a, who, _ in PLAN_PATH]
    assert [(e["from_status"], e["to_status"]) for e in events[1:]] == PLAN_STATES
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert events[6]["evidence"] == "https://wiki.example.com/rectification/1"
    assert events[2]["note"] == "缺少时间表"
    assert set(events[0]) == {"at", "actor", "action", "from_status", "to_status", "note", "evidence"}
    assert events[-1]["at"] == closed_at.isoformat(timespec="seconds")


def test_a_general_finding_may_start_at_once_and_others_need_their_plan(store, people):
    general, important, major = raise_findings(store, [problem("CS1", "general"), problem("CS2", "important",
                                                       owner="O3"), problem("HQ", "major", owner="E1")])
    act(store, people, general, "start", "O1")
    for finding, owner in ((important, "O3"), (major, "E1")):
        before = snapshot(store, finding)
        with pytest.raises(Refused) as refused:
            act(store, people, finding, "start", owner)
        assert refused.value.key == "plan_first" and "须先提交整改方案" in str(refused.value)
        assert snapshot(store, finding) == before
    drive(store, people, general, [("submit", "O1", {"evidence": "https://x/1"}), ("verify", "A1", {}),
                                   ("close", "A2", {})])
    with store.connect() as conn:
        assert get_finding(conn, general)["status"] == "closed"


def test_every_action_from_a_state_it_does_not_start_from_is_refused_and_changes_nothing(store, people):
    [finding] = raise_findings(store, [problem(severity="important")])
    for action, sources in FROM.items():
        actor = sorted(WHO[action])[0]
        for state in set(STATES) - sources:
            set_status(store, finding, state)
            before = snapshot(store, finding)
            with pytest.raises(Refused) as refused:
                act(store, people, finding, action, actor, **INPUTS.get(action, {}))
            assert refused.value.key in ("state", "plan_first"), (action, state)
            assert "\n" not in str(refused.value)
            assert snapshot(store, finding) == before, (action, state)


def test_each_action_is_taken_by_exactly_the_people_the_table_names(store, people):
    [finding] = raise_findings(store, [problem(severity="important")])
    for action, sources in FROM.items():
        set_status(store, finding, sorted(sources)[0])
        before = snapshot(store, finding)
        for actor in EVERYONE:
            with store.connect() as conn, conn.begin() as transaction:
                try:
                    perform(conn, finding, Request(action, actor, **INPUTS.get(action, {})), people, now=FOUND)
                    allowed = True
                except Refused as refused:
                    assert refused.key == "role", (action, actor, str(refused))
                    allowed = False
                transaction.rollback()
            assert allowed == (actor in WHO[action]), (action, actor)
            assert snapshot(store, finding) == before


def test_a_refusal_names_who_may(store, people):
    [finding] = raise_findings(store, [problem(severity="important")])
    act(store, people, finding, "submit-plan", "O1", **CAUSE)
    with pytest.raises(Refused) as refused:
        act(store, people, finding, "approve-plan", "H1")
    assert str(refused.value) == ("员工H1（H1）不能批准整改方案："
                                  "只有运营部经理员工M1（M1）或运营部副经理员工M2（M2）可以。")
    with store.begin() as conn, pytest.raises(Refused) as english:
        perform(conn, finding, Request("approve-plan", "O2"), people, now=FOUND, language="en")
    assert str(english.value) == ("员工O2 (O2) may not approve rectification plan: only the operations manager "
                                  "员工M1 (M1) or the deputy operations manager 员工M2 (M2) may")


def test_people_who_left_or_are_unknown_cannot_act(store, people):
    [finding] = raise_findings(store, [problem(severity="general")])
    act(store, people, finding, "start", "O1")
    act(store, people, finding, "submit", "O1", evidence="https://x/1")
    before = snapshot(store, finding)
    for actor, key in (("A3", "inactive_actor"), ("Z9", "unknown_actor")):
        with pytest.raises(Refused) as refused:
            act(store, people, finding, "verify", actor)
        assert refused.value.key == key
    assert snapshot(store, finding) == before


def test_assign_gives_the_finding_a_new_owner_who_may_then_act(store, people):
    [finding] = raise_findings(store, [problem(severity="important")])
    before = snapshot(store, finding)
    for to, key in (("X1", "inactive_owner"), ("Z9", "unknown_owner"), ("O1", "same_owner")):
        with pytest.raises(Refused) as refused:
            act(store, people, finding, "assign", "H1", to=to)
        assert refused.value.key == key
    assert snapshot(store, finding) == before
    done = act(store, people, finding, "assign", "M1", to="O2", note="O1休假")
    assert (done.previous_owner_id, done.owner_id, done.from_status, done.to_status) == ("O1", "O2", "open", "open")
    with pytest.raises(Refused):
        act(store, people, finding, "submit-plan", "O1", **CAUSE)
    act(store, people, finding, "submit-plan", "O2", **CAUSE)
    with store.connect() as conn:
        assert get_finding(conn, finding)["owner_id"] == "O2"
        data = conn.execute(sa.select(finding_events.c.data).where(finding_events.c.action == "assign")).scalar_one()
    assert data["owner"] == {"from": "O1", "to": "O2"}


def test_inputs_an_action_cannot_go_without_are_usage_errors(store, people, tmp_path):
    [finding] = raise_findings(store, [problem(severity="general")])
    before = snapshot(store, finding)
    for action, inputs, message in (("assign", {}, "assign 须附 --to"), ("reject-plan", {"note": " "}, "--note"),
                                    ("start", {"to": "O2"}, "--to 只能用于 assign")):
        with pytest.raises(UsageError, match=message):
            act(store, people, finding, action, "M1", **inputs)
    act(store, people, finding, "start", "O1")
    with pytest.raises(UsageError, match="submit 须附 --evidence") as refused:
        act(store, people, finding, "submit", "O1")
    assert refused.value.text("en") == "submit needs --evidence"
    with pytest.raises(InputError, match=r"--evidence .*nothing\.pdf：无法读取（No such file"):
        act(store, people, finding, "submit", "O1", evidence=str(tmp_path / "nothing.pdf"))
    assert snapshot(store, finding)[0]["status"] == "in_progress" and snapshot(store, finding)[1] == before[1] + 1


def test_evidence_files_are_kept_by_absolute_path_with_their_digest(store, people, tmp_path, monkeypatch):
    (tmp_path / "整改报告.pdf").write_bytes(b"%PDF-1.7 fixed")
    monkeypatch.chdir(tmp_path)
    [finding] = raise_findings(store, [problem(severity="general")])
    drive(store, people, finding, [("start", "O1", {}), ("submit", "O1", {"evidence": "整改报告.pdf"})])
    with store.connect() as conn:
        row = conn.execute(sa.select(finding_events).where(finding_events.c.action == "submit")).mappings().one()
    assert row["evidence"] == str(tmp_path / "整改报告.pdf")
    assert row["data"]["evidence_file"]["bytes"] == 14 and len(row["data"]["evidence_file"]["sha256"]) == 64


def test_the_history_can_be_neither_changed_nor_deleted(store, people):
    [finding] = raise_findings(store, [problem(severity="general")])
    act(store, people, finding, "start", "O1")
    for statement in (finding_events.update().values(note="rewritten"), finding_events.delete()):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.begin() as conn:
            conn.execute(statement)
    with store.connect() as conn:
        assert [e["action"] for e in history(conn, finding, ZONE)] == ["raised", "start"]


def test_reopen_takes_a_closed_finding_back_to_open(store, people):
    [finding] = raise_findings(store, [problem(severity="general")])
    drive(store, people, finding, [("start", "O1", {}), ("submit", "O1", {"evidence": "https://x/1"}),
                                   ("verify", "A1", {}), ("close", "A1", {}), ("reopen", "M1", {"note": "复发"})])
    with store.connect() as conn:
        row = get_finding(conn, finding)
    assert (row["status"], row["closed_at"]) == ("open", None)


# --- a major finding's special meeting and task force ------------------------------------------

def test_a_major_finding_records_its_special_meeting_and_task_force(store, people):
    major, general = raise_findings(store, [problem("CS1", "major"), problem("CS2", "general", owner="O3")])
    with store.begin() as conn:
        lifecycle.record_special_meeting(conn, major, actor="M1", held_on=date(2026, 11, 2), note="研究夜班方案",
                                         directory=people, now=FOUND)
        lifecycle.record_task_force(conn, major, actor="M2", lead="H1", members=("O1", "O2", "H1"), directory=people,
                                    now=FOUND)
        handling = lifecycle.record_task_force(conn, major, actor="M1", lead="H1", members=("O1",), directory=people,
                                               now=FOUND + timedelta(days=1))
    assert (handling.meeting_on, handling.meeting_note) == (date(2026, 11, 2), "研究夜班方案")
    assert (handling.task_force_lead, handling.task_force_members) == ("H1", ("H1", "O1"))
    refusals = [(general, "M1", "H1", (), "not_major"), (major, "H1", "H1", (), "role"),
                (major, "M1", "H1", ("X1",), "inactive_member"), (major, "M1", "Z9", (), "unknown_member")]
    for finding, actor, lead, members, key in refusals:
        before = snapshot(store, finding)
        with store.begin() as conn, pytest.raises(Refused) as refused:
            lifecycle.record_task_force(conn, finding, actor=actor, lead=lead, members=members, directory=people,
                                        now=FOUND)
        assert refused.value.key == key
        assert snapshot(store, finding) == before
    with store.connect() as conn:
        actions = [(e["action"], e["actor"]) for e in history(conn, major, ZONE)]
    assert actions == [("raised", "system"), ("special-meeting", "M1"), ("task-force", "M2"), ("task-force", "M1")]


# --- recurrence: closing a finding starts its window ---------------------------------------------

def test_a_finding_closed_through_the_lifecycle_and_failing_again_recurs_one_level_higher(store, people):
    september = datetime(2026, 10, 1, 9, tzinfo=ZONE)
    recurring, old = raise_findings(store, [problem("CS1", "general"), problem("CS2", "general", owner="O3")],
                                    period="2026-09", found_at=september)
    closing = [("start", "O1", {}), ("submit", "O1", {"evidence": "https://x/1"}), ("verify", "A1", {}),
               ("close", "A1", {})]
    drive(store, people, recurring, closing)
    with store.connect() as conn:
        assert get_finding(conn, old)["status"] == "open"   # never closed: no window, a new ordinary finding
    raise_findings(store, [problem("CS1", "general"), problem("CS2", "general", owner="O3")], period="2026-10",
                   found_at=FOUND)
    with store.connect() as conn:
        october = {row["entity_id"]: row for row in list_findings(conn) if row["period"] == "2026-10"}
        raised = conn.execute(sa.select(finding_events.c.data).where(
            finding_events.c.finding_id == october["CS1"]["id"])).scalar_one()
    assert october["CS1"]["recurring"] and october["CS1"]["severity"] == "important"
    assert raised["recurring_of"] == recurring
    assert not october["CS2"]["recurring"] and october["CS2"]["severity"] == "general"


def test_a_finding_closed_before_the_window_does_not_recur(store, people):
    [finding] = raise_findings(store, [problem("CS1", "general")], period="2026-06",
                               found_at=datetime(2026, 7, 1, 9, tzinfo=ZONE))
    for number, (action, actor, inputs) in enumerate([("start", "O1", {}), ("submit", "O1", {"evidence": "u://x"}),
                                                       ("verify", "A1", {}), ("close", "A1", {})]):
        act(store, people, finding, action, actor, datetime(2026, 7, 10 + number, tzinfo=ZONE), **inputs)
    raise_findings(store, [problem("CS1", "general")], period="2026-10")
    with store.connect() as conn:
        october = [row for row in list_findings(conn) if row["period"] == "2026-10"]
    assert [(row["recurring"], row["severity"]) for row in october] == [(False, "general")]


# --- the command line ----------------------------------------------------------------------------

def opsaudit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_the_command_line_moves_a_finding_and_refuses_in_one_line(store, db_url, monkeypatch):
    import os

    [finding] = raise_findings(store, [problem(severity="important")])
    env = {**os.environ, "OPSAUDIT_DATABASE_URL": db_url, "OPSAUDIT_OPERATIONS_DEPARTMENT": "OPS"}
    moved = opsaudit("findings", "submit-plan", finding[:8], "--actor", "O1", "--note", "方案", "--cause", "人手不足",
                     "--prevention", "按话务量排班", env=env)
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.splitlines() == [  # the plan's mail to M1 and M2 waits for a mail server
        f"问题{finding[:8]}：提交整改方案，待整改 → 整改方案待审批，操作人：员工O1（O1）",
        "未设置邮件服务器（环境变量OPSAUDIT_SMTP_HOST），2封邮件保留在发件箱中。"]
    before = snapshot(store, finding)
    refused = opsaudit("findings", "approve-plan", finding, "--actor", "O1", "--lang", "en", env=env)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("opsaudit: error: 员工O1 (O1) may not approve rectification plan: only")
    assert refused.stderr.count("\n") == 1
    usage = opsaudit("findings", "reject-plan", finding, "--actor", "M1", env=env)
    assert usage.returncode == 2 and "reject-plan 须附 --note" in usage.stderr
    english = opsaudit("findings", "reject-plan", finding, "--actor", "M1", "--lang", "en", env=env)
    assert english.returncode == 2 and english.stderr == "opsaudit: error: reject-plan needs --note\n"
    unknown = opsaudit("findings", "show", "nosuchid", env=env)
    assert unknown.returncode == 1 and unknown.stderr == "opsaudit: 错误：没有编号以 nosuchid 开头的问题\n"
    assert snapshot(store, finding) == before
    english = opsaudit("findings", "approve-plan", finding, "--actor", "M1", "--lang", "en", env=env)
    assert english.stdout.strip() == (f"finding {finding[:8]}: approve rectification plan, rectification plan awaiting "
                                      "approval → rectification plan approved, by 员工M1 (M1)")


def test_findings_show_says_what_each_action_recorded(store, people, db_url, tmp_path):
    """Who the finding went to, the special meeting's day, the task force, the evidence file: in
    the history's words, people by name, and in the JSON under keys that say what they are."""
    import hashlib
    import json
    import os

    evidence = tmp_path / "整改报告.pdf"
    evidence.write_bytes(b"%PDF-1.7 fixed")
    [finding] = raise_findings(store, [problem("CS1", "major")])
    act(store, people, finding, "assign", "M1", FOUND + timedelta(hours=1), to="O2", note="O1休假")
    with store.begin() as conn:
        lifecycle.record_special_meeting(conn, finding, actor="M1", held_on=date(2026, 11, 3), note=None,
                                         directory=people, now=FOUND + timedelta(days=1))
        lifecycle.record_task_force(conn, finding, actor="M2", lead="H1", members=("O2",), directory=people,
                                    now=FOUND + timedelta(days=1))
    drive(store, people, finding, [("submit-plan", "O2", CAUSE), ("approve-plan", "M1", {}), ("start", "O2", {}),
                                   ("submit", "O2", {"evidence": str(evidence)})])
    env = {**os.environ, "OPSAUDIT_DATABASE_URL": db_url, "COLUMNS": "400"}

    shown = opsaudit("findings", "show", finding, env=env)
    assert shown.returncode == 0, shown.stderr
    digest = hashlib.sha256(b"%PDF-1.7 fixed").hexdigest()
    for expected in ("员工M1（M1）  指派责任人  责任人：员工O1（O1） → 员工O2（O2）；O1休假",
                     "员工M1（M1）  记录专题会议  已于2026-11-03召开专题会议",
                     "员工M2（M2）  成立专项整改工作小组  组长员工H1（H1），成员员工H1（H1）、员工O2（O2）",
                     f"证据：{evidence}（14字节，校验值{digest}）"):
        assert expected in shown.stdout, expected
    english = opsaudit("findings", "show", finding, "--lang", "en", env=env).stdout
    assert "owner: 员工O1 (O1) → 员工O2 (O2)" in english and f"({14} bytes, SHA-256 {digest})" in english

    events = json.loads(opsaudit("findings", "show", finding, "--format", "json", env=env).stdout)["events"]
    by_action = {event["action"]: event for event in events}
    assert (by_action["assign"]["owner_from"], by_action["assign"]["owner_to"]) == ("O1", "O2")
    assert by_action["special-meeting"]["held_on"] == "2026-11-03"
    assert by_action["task-force"]["task_force"] == {"lead": "H1", "members": ["H1", "O2"]}
    assert by_action["submit"]["evidence"] == str(evidence)
    assert by_action["submit"]["evidence_file"] == {"bytes": 14, "sha256": digest}
    assert list(by_action["start"]) == ["at", "actor", "action", "from_status", "to_status", "note", "evidence",
                                        "channel", "os_user"]   # the command line's: who ran it


def test_two_people_acting_at_once_cannot_both_move_the_finding(pg_url):
    """PostgreSQL: the second UPDATE waits for the first, then finds the status changed."""
    import threading
    import time

    from opsaudit.db import create_engine

    engine = create_engine(pg_url)
    company(engine)
    people = directory(engine)
    [finding] = raise_findings(engine, [problem(severity="important")])
    act(engine, people, finding, "submit-plan", "O1", **CAUSE)
    outcome: list[BaseException | None] = []

    def second() -> None:
        try:
            act(engine, people, finding, "reject-plan", "M2", note="缺少时间表")
            outcome.append(None)
        except Refused as refused:
            outcome.append(refused)

    with engine.connect() as conn, conn.begin():
        perform(conn, finding, Request("approve-plan", "M1"), people, now=FOUND)
        other = threading.Thread(target=second)
        other.start()
        time.sleep(1)   # the other transaction now waits on this one's row lock
    other.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], Refused) and outcome[0].key == "changed"
    with engine.connect() as conn:
        assert get_finding(conn, finding)["status"] == "plan_approved"
        assert [e["action"] for e in history(conn, finding, ZONE)] == ["raised", "submit-plan", "approve-plan"]
    engine.dispose()

"""The daily key-task watch (seed 000 §4.2.2) on SQLite and PostgreSQL: which tasks it warns of, to
whom, each once per task and state, delivered to a real SMTP server through the flow under
Prefect's test harness; `opsaudit run key-task-watch`; a run on the real clock.

The company (tests/rectification.py): CS1 (head H1) with owners O1 and O2, and X1 who left; CS2
(head H2) with O3; here also CS3, which has no head.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from opsaudit.audit import open_source
from opsaudit.contract import departments
from opsaudit.key_tasks import KeyTaskWatch, at_risk
from opsaudit.settings import load_settings
from opsaudit.store.schema import findings, key_task_warnings
from tests.builders import Dataset
from tests.rectification import ZONE, company, email
from tests.smtp import Mailbox

NOW = datetime(2026, 11, 10, 8, 30, tzinfo=ZONE)   # a Tuesday, at the watch's time


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A naive local time in November 2026, as the operational data keeps it."""
    return datetime(2026, 11, day, hour, minute)


OVERDUE = {"status": "in_progress", "started_at": at(1, 9), "completed_at": None}
NOT_STARTED = {"status": "not_started", "started_at": None, "completed_at": None}


def key_tasks() -> Dataset:
    """Key tasks at risk on 10 November 08:30, and tasks the watch must leave alone."""
    data = Dataset()
    # Warned: overdue whatever their start, or due by the end of 12 November and not started.
    data.task("K-OVER", "CS1", owner_id="O1", title="升级核心数据库版本", priority="critical",
              due_at=at(5, 18), **OVERDUE)
    data.task("K-SOON", "CS1", owner_id="O2", title="客服知识库改版", priority="high", due_at=at(12, 17), **NOT_STARTED)
    data.task("K-EDGE", "CS1", owner_id="O2", title="月度培训", priority="high", due_at=at(12, 23, 59), **NOT_STARTED)
    data.task("K-LEFT", "CS2", owner_id="X1", title="话务系统迁移", priority="critical", due_at=at(9, 12), **OVERDUE)
    data.task("K-NOBODY", "CS2", owner_id=None, title="投诉复盘", priority="high", due_at=at(8, 12), **OVERDUE)
    data.task("K-NOHEAD", "CS3", owner_id="O3", title="渠道拓展", priority="critical", due_at=at(7, 12), **OVERDUE)
    # Left alone: a day too far, started, not key, finished.
    data.task("K-LATER", "CS1", owner_id="O1", priority="high", due_at=at(13, 0), **NOT_STARTED)
    data.task("K-STARTED", "CS1", owner_id="O1", priority="critical", due_at=at(11, 12), status="in_progress",
              started_at=at(9, 9), completed_at=None)
    data.task("N-NORMAL", "CS1", owner_id="O1", priority="normal", due_at=at(5, 12), **OVERDUE)
    data.task("N-LOW", "CS1", owner_id="O1", priority="low", due_at=at(11, 12), **NOT_STARTED)
    data.task("N-DONE", "CS1", owner_id="O1", priority="critical", due_at=at(5, 12), status="done",
              started_at=at(1, 9), completed_at=at(6, 9))
    data.task("N-CANCELLED", "CS1", owner_id="O1", priority="high", due_at=at(5, 12), status="cancelled",
              started_at=None, completed_at=None)
    return data


WARNED = [("K-OVER", "overdue"), ("K-NOHEAD", "overdue"), ("K-NOBODY", "overdue"), ("K-LEFT", "overdue"),
          ("K-SOON", "due_soon"), ("K-EDGE", "due_soon")]   # the earliest due first


@pytest.fixture
def store(db_url, engine, monkeypatch):
    """The company, its key tasks and the audit store in one database, as OPSAUDIT_DATABASE_URL."""
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    company(engine)
    with engine.begin() as conn:
        conn.execute(departments.insert(), {"department_id": "CS3", "name": "客服三部", "parent_id": "HQ",
                                            "head_id": None})
    key_tasks().insert(engine, {"tasks"})
    return engine


def received(mailbox: Mailbox) -> dict[str, list[str]]:
    """Each address and the subjects it received, in order."""
    got: dict[str, list[str]] = {}
    for envelope, message in zip(mailbox.envelopes, mailbox.received, strict=True):
        for address in envelope.rcpt_tos:
            got.setdefault(address, []).append(message["Subject"])
    return got


def texts(mailbox: Mailbox, address: str) -> list[str]:
    """The plain-text bodies `address` received, in order."""
    return [message.get_body(("plain",)).get_content()
            for envelope, message in zip(mailbox.envelopes, mailbox.received, strict=True)
            if address in envelope.rcpt_tos]


def warnings(engine: sa.Engine) -> list[tuple[str, str, list[str]]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(key_task_warnings.c.task_id, key_task_warnings.c.state, key_task_warnings.c.told)
                            .order_by(key_task_warnings.c.id)).all()
    return [(row.task_id, row.state, row.told) for row in rows]


def found(policy: KeyTaskWatch, now: datetime = NOW) -> list[tuple[str, str]]:
    settings = load_settings()
    source = open_source(settings, settings.load_config())
    return [(task.task_id, task.state.value) for task in at_risk(source, policy, now, ZONE)]


def test_the_query_finds_key_tasks_overdue_or_due_within_two_days_and_not_started(store):
    assert found(KeyTaskWatch()) == WARNED
    # Thresholds: critical tasks only, due today at the latest.
    assert found(KeyTaskWatch(priorities=("critical",), due_soon_days=0)) == [
        ("K-OVER", "overdue"), ("K-NOHEAD", "overdue"), ("K-LEFT", "overdue")]
    # A minute after its due time a task not started is overdue, no longer due soon.
    assert ("K-SOON", "overdue") in found(KeyTaskWatch(), datetime(2026, 11, 12, 17, 1, tzinfo=ZONE))


@pytest.mark.usefixtures("prefect_harness")
def test_each_warning_is_mailed_once_to_the_owner_and_the_department_head(store, mailbox):
    from opsaudit.flows.key_task_watch import key_task_watch

    first = key_task_watch(now=NOW)
    assert [(w["task_id"], w["state"]) for w in first["warned"]] == WARNED
    assert (first["overdue"], first["due_soon"], first["already_warned"], first["messages"]) == (4, 2, 0, 5)
    assert received(mailbox) == {
        email("O1"): ["重点任务逾期预警：升级核心数据库版本（K-OVER）"],
        email("H1"): ["重点任务预警：3项任务已逾期或即将到期"],
        email("O3"): ["重点任务逾期预警：渠道拓展（K-NOHEAD）"],
        email("H2"): ["重点任务预警：2项任务已逾期或即将到期"],
        email("O2"): ["重点任务预警：2项任务已逾期或即将到期"]}   # nothing for X1, who left
    [head] = texts(mailbox, email("H1"))
    assert head.startswith("员工H1，您好：以下重点任务（高优先级、紧急）已逾期，"
                           "或将在2天内到期但尚未开始，请及时跟进。")
    assert "【已逾期（1项）】" in head and "【即将到期、尚未开始（2项）】" in head
    for line in ("1. 升级核心数据库版本（K-OVER）", "负责人：员工O1（O1）", "部门：客服一部（CS1）", "优先级：紧急",
                 "状态：进行中", "截止时间：2026-11-05 18:00", "逾期天数：5天", "1. 客服知识库改版（K-SOON）",
                 "剩余天数：2天", "状态：未开始"):
        assert line in head, line
    assert "负责人：—" in texts(mailbox, email("H2"))[0]   # K-NOBODY has no owner: its head is told
    assert "<table" in mailbox.received[0].get_body(("html",)).get_content()
    assert ("K-LEFT", "overdue", ["H2"]) in warnings(store) and ("K-NOHEAD", "overdue", ["O3"]) in warnings(store)
    assert first["unreachable"] == ["客服三部（CS3）未设负责人（departments.head_id），无法通知",
                                    "员工X1（X1，任务负责人）已离职或停用，未发送邮件"]

    again = key_task_watch(now=NOW.replace(hour=20))
    assert (again["warned"], again["already_warned"], again["messages"]) == ([], 6, 0)
    assert not again["mail"]["sent"] and len(mailbox.received) == 5
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(findings)).scalar_one() == 0   # not a finding


@pytest.mark.usefixtures("prefect_harness")
def test_a_task_due_soon_then_overdue_is_warned_twice_in_all(store, mailbox):
    from opsaudit.flows.key_task_watch import key_task_watch

    for day in (10, 11, 12, 13, 14):
        key_task_watch(now=datetime(2026, 11, day, 8, 30, tzinfo=ZONE))
    assert [(task, state) for task, state, _ in warnings(store)] == [
        *WARNED,
        ("K-LATER", "due_soon"),   # 11 November: due by the end of the 13th
        ("K-STARTED", "overdue"),   # 12 November: started, but its due time has passed
        ("K-SOON", "overdue"), ("K-EDGE", "overdue"), ("K-LATER", "overdue")]   # 13 November; the 14th: nothing
    soon = [(state, told) for task, state, told in warnings(store) if task == "K-SOON"]
    assert soon == [("due_soon", ["H1", "O2"]), ("overdue", ["H1", "O2"])]
    subjects = received(mailbox)[email("O2")]
    assert subjects == ["重点任务预警：2项任务已逾期或即将到期", "重点任务预警：2项任务已逾期或即将到期"]
    assert "【已逾期（2项）】" in texts(mailbox, email("O2"))[-1]   # 13 November


@pytest.mark.usefixtures("prefect_harness")
def test_a_task_whose_due_date_is_moved_is_warned_again_for_its_new_date(store, mailbox):
    """Once per task and state for one due date: the owner agreed a new date with the department,
    and missing that one is news again; the same date is never warned of twice."""
    from opsaudit.contract import tasks
    from opsaudit.flows.key_task_watch import key_task_watch

    key_task_watch(now=NOW)
    key_task_watch(now=NOW + timedelta(hours=1))
    assert warnings(store).count(("K-OVER", "overdue", ["H1", "O1"])) == 1
    with store.begin() as conn:
        conn.execute(tasks.update().where(tasks.c.task_id == "K-OVER").values(due_at=at(10, 12)))
    key_task_watch(now=NOW + timedelta(hours=2))   # the new due time is ahead, and the task started: nothing
    key_task_watch(now=at(10, 13))                 # past the new due time: overdue again, once
    assert [state for task, state, _ in warnings(store) if task == "K-OVER"] == ["overdue", "overdue"]


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_log_says_what_it_did_in_sentences(store, monkeypatch):
    from opsaudit.flows.key_task_watch import key_task_watch
    from tests.dashboard import run_logs, run_of

    state = key_task_watch(now=NOW, return_state=True)
    run = run_of(state)
    assert run.name == "key-task-watch 2026-11-10"
    lines = run_logs(run.id)
    assert "重点任务预警开始（2026-11-10 08:30）：高优先级、紧急任务已逾期，或2天内到期尚未开始的，予以预警。" in lines
    assert ("新发重点任务预警：逾期4项，即将到期未开始2项；此前已预警、不再重复0项；放入发件箱的邮件5封。"
            in lines), lines
    assert "未通知：客服三部（CS3）未设负责人（departments.head_id），无法通知" in lines


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_without_a_clock_watches_at_its_own_time(db_url, engine, monkeypatch):
    from opsaudit.flows.key_task_watch import key_task_watch

    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    company(engine)
    start = datetime.now(ZONE)
    local = start.replace(tzinfo=None)
    data = Dataset()
    data.task("LATE", "CS1", priority="critical", due_at=local - timedelta(days=1), **OVERDUE)
    data.task("SOON", "CS1", priority="high", due_at=local + timedelta(days=1), **NOT_STARTED)
    after = datetime.combine(local.date() + timedelta(days=3), datetime.min.time()) + timedelta(hours=1)
    data.task("AFTER", "CS1", priority="high", due_at=after, **NOT_STARTED)
    data.insert(engine, {"tasks"})
    result = key_task_watch()
    assert abs(datetime.fromisoformat(result["now"]) - start) < timedelta(minutes=5)
    assert [(w["task_id"], w["state"]) for w in result["warned"]] == [("LATE", "overdue"), ("SOON", "due_soon")]


@pytest.mark.usefixtures("prefect_harness")
def test_opsaudit_run_key_task_watch_fixes_its_clock(store):
    from opsaudit.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["run", "key-task-watch", "--now", "2026-11-10T08:30"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "重点任务预警已完成（2026-11-10 08:30）：新发预警逾期4项、即将到期未开始2项，此前已预警0项，邮件5封。",
        "未设置邮件服务器（环境变量OPSAUDIT_SMTP_HOST），5封邮件保留在发件箱中。"]
    again = runner.invoke(app, ["run", "key-task-watch", "--now", "2026-11-10T09:00", "--lang", "en"])
    assert again.output.splitlines() == [
        "Key-task watch done (Nov 10, 2026, 09:00): new early warnings for 0 overdue and 0 due-soon tasks not "
        "started, 6 warned before; 0 messages.",
        "No mail server is set (OPSAUDIT_SMTP_HOST); mail kept in the outbox: 5."]
    refused = runner.invoke(app, ["run", "key-task-watch", "--period", "2026-10"])
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", refused.output).split())   # out of click's box
    assert refused.exit_code == 2 and "key-task-watch 检查重点任务当前的状态，不用 --period" in words, words


def test_the_watch_is_deployed_daily_at_half_past_eight():
    from opsaudit.config.loader import load_config
    from opsaudit.flows.deployments import deployments, fire_times

    settings = load_settings()
    [spec] = [d for d in deployments(settings, load_config(settings.config_dir)) if d.name == "key-task-watch"]
    assert (spec.cron, spec.flow, spec.tags) == ("30 8 * * *", "opsaudit.flows.key_task_watch:key_task_watch",
                                                 ("watch", "area:execution"))
    start = datetime(2026, 1, 1, tzinfo=ZONE)
    fires = fire_times(spec, start, end=start + timedelta(days=365) - timedelta(seconds=1))
    assert len(fires) == 365 and {moment.astimezone(ZONE).timetz().replace(tzinfo=None).isoformat()
                                  for moment in fires} == {"08:30:00"}


def test_a_company_sets_the_watch_in_its_audits_yaml(store, monkeypatch, tmp_path):
    """config/audits.yaml `key_task_watch`: its own hour, only critical tasks, a shorter horizon; a
    bad value is one line naming the file and key."""
    from opsaudit.config.loader import load_config
    from opsaudit.errors import ConfigError
    from opsaudit.flows.deployments import deployments
    from opsaudit.key_tasks import prepare_run

    audits = tmp_path / "config" / "audits.yaml"
    audits.write_text("key_task_watch:\n  cron: \"0 7 * * 1-5\"\n  priorities: [critical]\n  due_soon_days: 0\n")
    settings = load_settings()
    [spec] = [d for d in deployments(settings, load_config(settings.config_dir)) if d.name == "key-task-watch"]
    assert spec.cron == "0 7 * * 1-5"
    policy = prepare_run(settings, NOW).policy
    critical = found(policy)
    assert critical == found(KeyTaskWatch(priorities=("critical",), due_soon_days=0))
    assert critical and set(critical) < set(WARNED)
    audits.write_text("key_task_watch:\n  priorities: [urgent]\n")
    with pytest.raises(ConfigError) as refused:
        load_config(settings.config_dir)
    assert refused.value.text("zh-CN") == ("config/audits.yaml：key_task_watch.priorities.0：“urgent”不是可选值之一："
                                           "low、normal、high、critical")

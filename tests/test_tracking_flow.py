"""The `rectification-tracking` flow under Prefect's test harness, delivering to a real SMTP server,
on SQLite and PostgreSQL; `opsaudit run rectification-tracking`; its daily deployment."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from opsaudit.store.schema import finding_events, finding_notices
from tests.rectification import ZONE, company, email, problem, raise_findings
from tests.smtp import Mailbox

pytestmark = pytest.mark.usefixtures("prefect_harness")
FOUND = datetime(2026, 11, 2, 9, 0, tzinfo=ZONE)   # a general problem: due 2026-11-17 09:00


@pytest.fixture
def store(db_url, engine, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    company(engine)
    return engine


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE)


def received(mailbox: Mailbox) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(sorted(envelope.rcpt_tos)), message["Subject"])
            for envelope, message in zip(mailbox.envelopes, mailbox.received, strict=True)]


def test_the_flow_run_twice_a_day_reminds_and_escalates_once_by_mail(store, mailbox, tmp_path):
    from opsaudit.flows.rectification import rectification_tracking

    # The weekly report on Sundays: on these weekdays only reminders and escalations go out.
    (tmp_path / "config" / "audits.yaml").write_text("rectification_tracking:\n  progress_report_weekday: 7\n")
    [finding] = raise_findings(store, [problem("CS1", "general")], found_at=FOUND)
    reminder_day, escalation_day = date(2026, 11, 10), date(2026, 11, 18)   # 7 days before, 1 day after
    first = rectification_tracking(now=at(reminder_day, 8))
    second = rectification_tracking(now=at(reminder_day, 20))
    assert (first["reminded"], second["reminded"]) == (1, 0)
    assert received(mailbox) == [((email("O1"),), "整改提醒：客户满意度未达标（CS1，2026年10月）")]
    reminder = mailbox.received[0]
    page = f"http://127.0.0.1:8400/findings/{finding}"   # OPSAUDIT_WEB_URL's default
    assert "期限：整改期限 2026-11-17" in reminder.get_body(("plain",)).get_content()
    assert f"处理页面：{page}" in reminder.get_body(("plain",)).get_content()
    assert f'<a href="{page}">' in reminder.get_body(("html",)).get_content()

    mailbox.received.clear()
    mailbox.envelopes.clear()
    first = rectification_tracking(now=at(escalation_day, 8))
    second = rectification_tracking(now=at(escalation_day, 20))
    assert (first["escalated"], second["escalated"]) == (1, 0)
    assert sorted(received(mailbox)) == [((email("H1"),), "整改逾期上报：客户满意度未达标（CS1，2026年10月）"),
                                         ((email("O1"),), "整改逾期上报：客户满意度未达标（CS1，2026年10月）")]
    assert all(f"处理页面：{page}" in message.get_body(("plain",)).get_content() for message in mailbox.received)
    assert first["mail"]["sent"] and not second["mail"]["sent"]
    with store.connect() as conn:
        actions = conn.execute(sa.select(finding_events.c.action).where(finding_events.c.finding_id == finding)
                               .order_by(finding_events.c.id)).scalars().all()
        notices = conn.execute(sa.select(finding_notices.c.step).order_by(finding_notices.c.id)).scalars().all()
    assert actions == ["raised", "reminded", "escalated"]
    assert notices == ["remind:7", "escalate:department_head"]


def test_the_weekly_report_reaches_the_operations_manager_on_monday(store, mailbox):
    from opsaudit.flows.rectification import rectification_tracking

    raise_findings(store, [problem("CS1", "general")], found_at=FOUND)
    sunday = rectification_tracking(now=at(date(2026, 11, 15), 8))
    monday = rectification_tracking(now=at(date(2026, 11, 16), 8))
    again = rectification_tracking(now=at(date(2026, 11, 16), 20))
    assert (sunday["progress_report"], monday["progress_report"], again["progress_report"]) == (
        "2026-W46", "2026-W47", None)
    weekly = [subject for rcpt, subject in received(mailbox) if rcpt == (email("M1"),)]
    assert weekly == ["整改进展周报：2026年第46周", "整改进展周报：2026年第47周"]


def test_a_run_without_a_clock_tracks_at_its_scheduled_time(store):
    from opsaudit.flows.rectification import rectification_tracking

    [finding] = raise_findings(store, [problem("CS1", "general")], found_at=datetime.now(ZONE) - timedelta(days=20))
    result = rectification_tracking()
    assert datetime.fromisoformat(result["now"]) - datetime.now(ZONE) < timedelta(minutes=5)
    assert (result["reminded"], result["escalated"]) == (0, 1)   # 5 days late: the department's head
    with store.connect() as conn:
        steps = conn.execute(sa.select(finding_notices.c.step).where(finding_notices.c.finding_id == finding)
                             .order_by(finding_notices.c.id)).scalars().all()
    assert steps == ["escalate:department_head"]


def test_opsaudit_run_rectification_tracking_fixes_its_clock(store, monkeypatch):
    from opsaudit.cli import app

    raise_findings(store, [problem("CS1", "general")], found_at=FOUND)
    runner = CliRunner()
    result = runner.invoke(app, ["run", "rectification-tracking", "--now", "2026-11-10T08:00"])
    assert result.exit_code == 0, result.output
    # A manager reads it in Chinese: the day's notices, the weekly report, and where the mail is.
    assert result.output.splitlines() == [
        "整改跟踪已完成（2026-11-10 08:00）：催办提醒1次，升级上报0次。",
        "2026年第46周的整改进展周报已放入发件箱。",
        "未设置邮件服务器（环境变量OPSAUDIT_SMTP_HOST），2封邮件保留在发件箱中。"]
    again = runner.invoke(app, ["run", "rectification-tracking", "--now", "2026-11-10T09:00", "--lang", "en"])
    assert again.output.splitlines() == [
        "Rectification follow-up done (Nov 10, 2026, 09:00): 0 reminders, 0 escalations.",
        "No weekly rectification progress report is due.",
        "No mail server is set (OPSAUDIT_SMTP_HOST); mail kept in the outbox: 2."]
    refused = runner.invoke(app, ["run", "rectification-tracking", "--period", "2026-10"])
    assert refused.exit_code == 2


def test_the_tracking_is_deployed_daily_in_the_morning():
    from opsaudit.config.loader import load_config
    from opsaudit.flows.deployments import deployments, fire_times
    from opsaudit.settings import load_settings

    settings = load_settings()
    [spec] = [d for d in deployments(settings, load_config(settings.config_dir)) if d.name == "rectification-tracking"]
    assert (spec.cron, spec.flow, spec.tags) == ("0 8 * * *", "opsaudit.flows.rectification:rectification_tracking",
                                                 ("tracking",))
    start = datetime(2026, 1, 1, tzinfo=ZONE)
    fires = fire_times(spec, start, end=start + timedelta(days=365) - timedelta(seconds=1))
    assert len(fires) == 365 and {moment.astimezone(ZONE).hour for moment in fires} == {8}

"""The monthly circulation (seed 000 §6.3) on SQLite and PostgreSQL: its figures, its HTML file,
its mail to all operations staff over a real SMTP server, once a month; the flow, its deployment
and `opsaudit reports circulate`."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from opsaudit.config.models import Recipients
from opsaudit.periods import parse_period
from opsaudit.reports.circulation import circulate
from opsaudit.reports.delivery import deliver_pending
from opsaudit.settings import load_settings
from tests.rectification import ZONE, company, directory, email, problem, raise_findings

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=ZONE)
OPERATIONS_STAFF = sorted(email(staff_id) for staff_id in ("M1", "M2", "A1", "A2"))   # A3 left


@pytest.fixture
def store(db_url, engine, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    company(engine)
    raise_findings(engine, [problem("CS1", "major"), problem("CS2", "general", owner="O3")])
    raise_findings(engine, [problem("CS2", "important", owner="O3")], period="2026-09")   # ended in September
    return engine


def test_the_month_is_circulated_to_all_operations_staff_once(store, mailbox, tmp_path):
    def run_once():
        with store.begin() as conn:
            return circulate(conn, directory(store), Recipients(), parse_period("2026-10"), output_dir=tmp_path / "out",
                             language="zh-CN", zone=ZONE, now=NOW)

    first = run_once()
    again = run_once()
    deliver_pending(store, load_settings())

    assert sorted(a.email for a in first.recipients) == OPERATIONS_STAFF and again.again and not again.messages
    [message] = mailbox.received
    assert sorted(mailbox.envelopes[0].rcpt_tos) == OPERATIONS_STAFF
    assert message["Subject"] == "稽查情况通报：2026年10月"
    text = message.get_body(("plain",)).get_content()
    for line in ("【2026年10月稽查情况通报】",
                 "客户服务月度全面评估：稽查类型 定期稽查、稽查期间 2026年10月、发现问题 2",
                 "客服一部（CS1）：重大问题 1、重要问题 0、一般问题 0、合计 1",
                 "客服二部（CS2）：重大问题 0、重要问题 0、一般问题 1、合计 1",
                 "【整改进展（截至2026-11-01 12:00）】", "未关闭问题：重大问题 1、重要问题 1、一般问题 1、合计 3"):
        assert line in text
    assert "2026年9月" not in text   # September's audit was circulated with September
    html = (tmp_path / "out" / "circulation" / "2026-10" / "circulation.zh-CN.html").read_text(encoding="utf-8")
    assert "<table" in html and "2026年10月稽查情况通报" in html
    assert [part.get_filename() for part in message.iter_attachments()] == ["circulation.zh-CN.html"]
    assert "<table" in message.get_body(("html",)).get_content()


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_circulates_last_month_once_and_is_deployed_on_the_first(store, mailbox):
    from opsaudit.config.loader import load_config
    from opsaudit.flows.circulation import monthly_circulation
    from opsaudit.flows.deployments import deployments, fire_times

    first = monthly_circulation(now=NOW)
    second = monthly_circulation(now=NOW + timedelta(hours=1))
    assert (first["month"], first["again"], second["again"]) == ("2026-10", False, True)
    assert first["mail"]["sent"] and not second["mail"]["sent"]
    assert [m["Subject"] for m in mailbox.received] == ["稽查情况通报：2026年10月"]

    settings = load_settings()
    [spec] = [d for d in deployments(settings, load_config(settings.config_dir)) if d.name == "circulation"]
    assert (spec.cron, spec.flow) == ("0 12 1 * *", "opsaudit.flows.circulation:monthly_circulation")
    start = datetime(2026, 1, 1, tzinfo=ZONE)
    fires = fire_times(spec, start, end=start + timedelta(days=365) - timedelta(seconds=1))
    assert [(m.astimezone(ZONE).month, m.astimezone(ZONE).day, m.astimezone(ZONE).hour) for m in fires] == [
        (month, 1, 12) for month in range(1, 13)]


def test_opsaudit_reports_circulate(store, tmp_path):
    from opsaudit.cli import app
    from opsaudit.errors import UsageError

    runner = CliRunner()
    done = runner.invoke(app, ["reports", "circulate", "--month", "2026-10", "--lang", "en"])
    assert done.exit_code == 0, done.output
    path = tmp_path / "out" / "circulation" / "2026-10" / "circulation.zh-CN.html"
    assert done.output.splitlines() == [
        f"The audits of October 2026 were circulated to 4 recipients; the circulation is at {path}.",
        "No mail server is set (OPSAUDIT_SMTP_HOST); mail kept in the outbox: 1."]
    again = runner.invoke(app, ["reports", "circulate", "--month", "2026-10"])
    assert again.output == "2026年10月的稽查情况已经通报过，不再重复发送。\n"
    wrong = runner.invoke(app, ["reports", "circulate", "--month", "2026Q3"])
    assert isinstance(wrong.exception, UsageError)
    assert str(wrong.exception) == "--month：“2026Q3”是季度，不是月份（如2026-10）"
    # A month under way or to come, on the real clock (the month the test runs in, and the next).
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo("Asia/Shanghai"))
    for month in (today.strftime("%Y-%m"), (today.replace(day=1) + timedelta(days=40)).strftime("%Y-%m")):
        early = runner.invoke(app, ["reports", "circulate", "--month", month])
        assert isinstance(early.exception, UsageError) and "尚未结束" in str(early.exception), early.output
    assert not (tmp_path / "out" / "circulation" / today.strftime("%Y-%m")).exists()


def test_who_cannot_be_told_is_named_in_the_readers_language(store):
    """A2 has no e-mail address: the circulation still goes to the others, and the command says
    who was not told, in Chinese unless --lang says otherwise."""
    import sqlalchemy as sa

    from opsaudit.cli import app

    with store.begin() as conn:
        conn.execute(sa.text("UPDATE staff SET email = NULL WHERE staff_id = 'A2'"))
    done = CliRunner().invoke(app, ["reports", "circulate", "--month", "2026-10"])
    assert done.exit_code == 0, done.output
    [warning] = [line for line in done.stderr.splitlines() if "A2" in line]
    assert warning == "opsaudit: 未通知：员工A2（A2，运营部员工）在员工表中没有电子邮箱，未发送邮件"
    with store.begin() as conn:
        conn.execute(sa.text("DELETE FROM oa_outbox"))
    english = CliRunner().invoke(app, ["reports", "circulate", "--month", "2026-10", "--lang", "en"])
    assert [line for line in english.stderr.splitlines() if "A2" in line][0].endswith(
        "员工A2 (A2, operations staff) has no e-mail address in the staff table: no mail")

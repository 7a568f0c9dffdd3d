"""The review gate (seed 000 §5.3) on SQLite and PostgreSQL, delivering to a real SMTP server: the
draft to the audit lead, the approved report to the managers, the returned report to the auditors,
OPSAUDIT_REPORT_REVIEW=off, a rerun replacing the draft, SMTP down then up, and `opsaudit reports`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from opsaudit.config.models import Recipients
from opsaudit.reports.delivery import deliver_pending
from opsaudit.reports.review import Gate, ReviewError, approve, list_reports, reject, submit
from opsaudit.settings import load_settings
from opsaudit.store.schema import audit_runs, outbox, report_events, reports
from tests.rectification import company, directory, email, problem, raise_findings
from tests.smtp import Mailbox, settings_for, smtp_server

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SUBJECT = "客户服务月度全面评估（2026年10月）"
MANAGERS = sorted(email(staff_id) for staff_id in ("M1", "M2", "H1", "H2", "E1", "E2"))


@pytest.fixture
def store(engine):
    company(engine)
    return engine


@pytest.fixture
def mailbox(port) -> Iterator[Mailbox]:
    with smtp_server(port) as box:
        yield box


def gate(engine, settings) -> Gate:
    return Gate(directory(engine), Recipients(), settings)


def a_run(engine) -> str:
    """A cs-monthly run of 2026-10 with a major problem in CS1 and a general one in CS2."""
    raise_findings(engine, [problem("CS1", "major"), problem("CS2", "general", owner="O3")])
    with engine.connect() as conn:
        return conn.execute(sa.select(audit_runs.c.id).order_by(audit_runs.c.started_at.desc())).scalars().first()


def report_files(folder: Path, version: str = "1") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"report.zh-CN.pdf": b"%PDF-1.7\n" + version.encode(), "report.zh-CN.html": f"<html>报告{version}</html>",
             "findings.zh-CN.csv": "编号,问题\nF1,客户满意度未达标\n", "results.json": '{"results": []}'}
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data, encoding="utf-8")
    return [folder / name for name in files]


def received(mailbox: Mailbox) -> list[tuple[list[str], str]]:
    return [(sorted(envelope.rcpt_tos), message["Subject"])
            for envelope, message in zip(mailbox.envelopes, mailbox.received, strict=True)]


def attachments(message) -> list[str]:
    return [part.get_filename() for part in message.iter_attachments()]


def stored(engine, run_id: str) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            sa.select(reports.c.format, reports.c.status, reports.c.reviewed_by)
            .where(reports.c.audit_run_id == run_id).order_by(reports.c.format))]


def events(engine, run_id: str) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            sa.select(report_events.c.action, report_events.c.actor, report_events.c.note)
            .where(report_events.c.audit_run_id == run_id).order_by(report_events.c.id))]


def test_the_draft_goes_to_the_audit_lead_and_the_approved_report_to_the_managers(store, mailbox, port, tmp_path):
    settings = settings_for(port)
    run = a_run(store)
    files = report_files(tmp_path / "out")
    with store.begin() as conn:
        drafted = submit(conn, gate(store, settings), run, "zh-CN", files, now=T0)
    assert drafted.status == "draft" and [a.email for a in drafted.recipients] == [email("A1")]
    deliver_pending(store, settings, now=T0)

    assert received(mailbox) == [([email("A1")], f"稽查报告待审核：{SUBJECT}")]
    draft = mailbox.received[0]
    assert attachments(draft) == [path.name for path in files]
    text = draft.get_body(("plain",)).get_content()
    assert f"审核通过：opsaudit reports approve {run} --actor A1" in text and "客服一部（CS1）：重大问题 1" in text
    assert "<table" in draft.get_body(("html",)).get_content()
    assert stored(store, run) == [("csv", "draft", None), ("html", "draft", None), ("json", "draft", None),
                                  ("pdf", "draft", None)]

    not_lead = "^员工A2（A2）不能审核稽查报告：只有稽查小组组长员工A1（A1）可以。$"
    with store.begin() as conn, pytest.raises(ReviewError, match=not_lead):
        approve(conn, gate(store, settings), run, "A2", None, now=T0, language="zh-CN")
    with store.begin() as conn:
        approved = approve(conn, gate(store, settings), run, "A1", "数据已核对", now=T0 + timedelta(hours=1),
                           language="zh-CN")
    # A major problem: the executives too; the heads of both departments with findings.
    assert sorted(a.email for a in approved.recipients) == MANAGERS
    assert [status for _, status, _ in stored(store, run)] == ["approved"] * 4
    deliver_pending(store, settings, now=T0 + timedelta(hours=1))

    assert received(mailbox)[1] == (MANAGERS, f"稽查报告：{SUBJECT}")
    report = mailbox.received[1]
    assert attachments(report) == ["report.zh-CN.pdf", "report.zh-CN.html", "findings.zh-CN.csv"]
    body = report.get_body(("plain",)).get_content()
    assert "本报告已经稽查小组组长员工A1（A1）于2026-11-02 19:00审核。" in body and "审核意见：数据已核对" in body
    assert "<h3" in report.get_body(("html",)).get_content()
    assert stored(store, run) == [(fmt, "sent", "A1") for fmt in ("csv", "html", "json", "pdf")]
    assert events(store, run) == [("submitted", "system", None), ("approved", "A1", "数据已核对"),
                                  ("sent", "system", None)]
    with store.connect() as conn:
        assert [line.as_json() for line in list_reports(conn)] == [
            {"audit_run_id": run, "audit": "cs-monthly", "period": "2026-10", "status": "sent"}]

    twice = "已于2026-11-02 19:00由员工A1（A1）审核通过，不能再次审核"
    with store.begin() as conn, pytest.raises(ReviewError, match=twice):
        approve(conn, gate(store, settings), run, "A1", None, now=T0, language="zh-CN")
    assert len(mailbox.received) == 2


def test_the_mail_names_a_problem_of_the_whole_company_so_not_by_its_id(store, mailbox, port, tmp_path):
    settings = settings_for(port)
    whole = replace(problem("company", "major", owner="M1", department=None), entity_type="company")
    raise_findings(store, [whole, problem("CS2", "major", owner="O3")])
    with store.connect() as conn:
        run = conn.execute(sa.select(audit_runs.c.id)).scalar_one()
    with store.begin() as conn:
        submit(conn, gate(store, settings), run, "zh-CN", report_files(tmp_path / "out"), now=T0)
    deliver_pending(store, settings, now=T0)

    text = mailbox.received[0].get_body(("plain",)).get_content()
    assert "客户满意度未达标（全公司）" in text and "客户满意度未达标（CS2）" in text
    assert "company" not in text


def test_the_lead_approving_and_returning_at_once_decides_the_report_once(pg_url, port, tmp_path):
    """PostgreSQL: the second review waits for the first to commit, then reads its decision: it is
    refused with what the first decided, records no event and mails nothing."""
    import threading
    import time

    from opsaudit.db import create_engine

    engine = create_engine(pg_url)
    company(engine)
    settings = settings_for(port)
    run = a_run(engine)
    with engine.begin() as conn:
        submit(conn, gate(engine, settings), run, "zh-CN", report_files(tmp_path / "out"), now=T0)
    with engine.connect() as conn:
        queued = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
    outcome: list[BaseException | None] = []

    def second() -> None:
        try:
            with engine.begin() as conn:
                reject(conn, gate(engine, settings), run, "A1", "请补充数据", now=T0, language="zh-CN")
            outcome.append(None)
        except ReviewError as refused:
            outcome.append(refused)

    with engine.connect() as conn, conn.begin():
        approve(conn, gate(engine, settings), run, "A1", None, now=T0 + timedelta(minutes=5), language="zh-CN")
        other = threading.Thread(target=second)
        other.start()
        time.sleep(1)   # the other review now waits on this one's row locks
    other.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], ReviewError)
    assert "已于2026-11-02 18:05由员工A1（A1）审核通过，不能再次审核" in str(outcome[0])
    assert [status for _, status, _ in stored(engine, run)] == ["approved"] * 4
    assert events(engine, run) == [("submitted", "system", None), ("approved", "A1", None)]
    with engine.connect() as conn:
        mails = conn.execute(sa.select(outbox.c.kind).order_by(outbox.c.id)).scalars().all()
    assert len(mails) == queued + 1 and mails[-1] == "report"   # the report to the managers, no notice
    engine.dispose()


def test_a_returned_report_goes_back_to_the_auditors_with_the_note(store, mailbox, port, tmp_path):
    settings = settings_for(port)
    run = a_run(store)
    with store.begin() as conn:
        submit(conn, gate(store, settings), run, "zh-CN", report_files(tmp_path / "out"), now=T0)
    with store.begin() as conn, pytest.raises(ReviewError, match="^退回稽查报告须填写审核意见。$"):
        reject(conn, gate(store, settings), run, "A1", "  ", now=T0, language="zh-CN")
    with store.begin() as conn:
        returned = reject(conn, gate(store, settings), run, "A1", "请补充客服二部的抽样说明", now=T0, language="zh-CN")
    assert returned.status == "rejected" and [a.email for a in returned.recipients] == [email("A2")]
    deliver_pending(store, settings, now=T0)

    assert received(mailbox)[1] == ([email("A2")], f"稽查报告被退回：{SUBJECT}")
    assert "审核意见：请补充客服二部的抽样说明" in mailbox.received[1].get_body(("plain",)).get_content()
    with store.begin() as conn, pytest.raises(ReviewError, match="被员工A1（A1）退回，须重新提交后才能审核"):
        approve(conn, gate(store, settings), run, "A1", None, now=T0, language="zh-CN")

    # A new submission is a new draft, mailed again, and can be approved.
    with store.begin() as conn:
        submit(conn, gate(store, settings), run, "zh-CN", report_files(tmp_path / "out", "2"), now=T0)
    with store.begin() as conn:
        approve(conn, gate(store, settings), run, "A1", None, now=T0, language="zh-CN")
    deliver_pending(store, settings, now=T0)
    assert [subject.removesuffix(SUBJECT) for _, subject in received(mailbox)] == [
        "稽查报告待审核：", "稽查报告被退回：", "稽查报告待审核：", "稽查报告："]
    assert [action for action, _, _ in events(store, run)] == ["submitted", "rejected", "submitted", "approved",
                                                               "sent"]


def test_with_review_off_the_report_goes_out_at_once(store, mailbox, port, tmp_path):
    settings = settings_for(port, report_review="off")
    run = a_run(store)
    with store.begin() as conn:
        released = submit(conn, gate(store, settings), run, "zh-CN", report_files(tmp_path / "out"), now=T0)
    assert released.status == "approved"
    deliver_pending(store, settings, now=T0)

    assert received(mailbox) == [(MANAGERS, f"稽查报告：{SUBJECT}")]
    body = mailbox.received[0].get_body(("plain",)).get_content()
    assert "按公司设置，本报告无需稽查小组组长审核，直接发送。" in body
    assert {status for _, status, _ in stored(store, run)} == {"sent"}
    with store.begin() as conn, pytest.raises(ReviewError, match="已按公司设置直接发送，无需审核"):
        approve(conn, gate(store, settings), run, "A1", None, now=T0, language="zh-CN")


def test_a_rerun_replaces_the_draft_and_a_repeated_submission_mails_once(store, tmp_path):
    settings = load_settings()
    first = a_run(store)
    with store.begin() as conn:
        submit(conn, gate(store, settings), first, "zh-CN", report_files(tmp_path / "one"), now=T0)
        submit(conn, gate(store, settings), first, "zh-CN", report_files(tmp_path / "one"), now=T0)
    second = a_run(store)
    with store.begin() as conn:
        submit(conn, gate(store, settings), second, "zh-CN", report_files(tmp_path / "two", "2"), now=T0)
    with store.connect() as conn:
        runs = conn.execute(sa.select(reports.c.audit_run_id, sa.func.count()).group_by(reports.c.audit_run_id)).all()
        keys = conn.execute(sa.select(outbox.c.dedupe_key).order_by(outbox.c.id)).scalars().all()
    assert runs == [(second, 4)]
    assert [key.rsplit(":", 1)[0] for key in keys] == [f"review:draft:{first}:zh-CN", f"review:draft:{second}:zh-CN"]
    with store.begin() as conn, pytest.raises(ReviewError, match=f"稽查批次{first}没有待审核的稽查报告"):
        approve(conn, gate(store, settings), first, "A1", None, now=T0, language="zh-CN")
    with store.begin() as conn, pytest.raises(ReviewError, match=r"format; expected one of csv, html, json, pdf"):
        submit(conn, gate(store, settings), second, "en", [tmp_path / "one" / "notes.txt"], now=T0)


def test_smtp_down_then_up_the_draft_and_report_arrive_exactly_once(store, port, tmp_path):
    settings = settings_for(port, mail_retry_base=60)
    run = a_run(store)
    with store.begin() as conn:
        submit(conn, gate(store, settings), run, "zh-CN", report_files(tmp_path / "out"), now=T0)
        approve(conn, gate(store, settings), run, "A1", None, now=T0, language="zh-CN")

    down = deliver_pending(store, settings, now=T0)  # nothing listens on the port
    assert not down.sent and len(down.retrying) == 2
    assert {status for _, status, _ in stored(store, run)} == {"approved"}

    with smtp_server(port) as mailbox:
        up = deliver_pending(store, settings, now=T0 + timedelta(minutes=1))
        again = deliver_pending(store, settings, now=T0 + timedelta(days=1))
    assert len(up.sent) == 2 and not again.sent
    assert sorted(subject for _, subject in received(mailbox)) == [f"稽查报告待审核：{SUBJECT}", f"稽查报告：{SUBJECT}"]
    with store.connect() as conn:
        assert conn.execute(sa.select(outbox.c.attempts, outbox.c.status)).all() == [(2, "sent"), (2, "sent")]
    assert {status for _, status, _ in stored(store, run)} == {"sent"}


def test_opsaudit_reports_list_approve_and_reject(db_url, store, monkeypatch, tmp_path):
    from opsaudit.cli import app

    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    run = a_run(store)
    with store.begin() as conn:
        submit(conn, gate(store, load_settings()), run, "zh-CN", report_files(tmp_path / "out"), now=T0)
    runner = CliRunner()

    listed = runner.invoke(app, ["reports", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == [{"audit_run_id": run, "audit": "cs-monthly", "period": "2026-10",
                                          "status": "draft"}]
    table = runner.invoke(app, ["reports", "list"])
    assert "待审核" in table.output and "客户服务月度全面评估" in table.output and "共1份稽查报告。" in table.output

    assert runner.invoke(app, ["reports", "reject", run, "--actor", "A1"]).exit_code == 2  # --note is required
    refused = runner.invoke(app, ["reports", "approve", run, "--actor", "M1"])
    assert refused.exit_code == 1 and "只有稽查小组组长员工A1（A1）可以" in str(refused.exception)

    approved = runner.invoke(app, ["reports", "approve", run, "--actor", "A1", "--note", "同意", "--lang", "en"])
    assert approved.exit_code == 0, approved.output
    assert approved.output.splitlines() == [
        f"The audit report of audit run {run} is approved and sent to 6 recipients.",
        "No mail server is set (OPSAUDIT_SMTP_HOST); mail kept in the outbox: 2."]
    listed = runner.invoke(app, ["reports", "list", "--format", "json"])
    assert json.loads(listed.output)[0]["status"] == "approved"


def test_each_recipient_reads_the_report_in_their_language(store, mailbox, port, tmp_path):
    from opsaudit.config.models import Recipient

    settings = settings_for(port)
    config = Recipients(reports={"cs-monthly": (Recipient(email="board@example.com", language="en"),)})
    run = a_run(store)
    english = tmp_path / "out" / "report.en.html"
    files = report_files(tmp_path / "out")
    english.write_text("<html>report</html>", encoding="utf-8")
    review = Gate(directory(store), config, settings)
    with store.begin() as conn:
        submit(conn, review, run, "zh-CN", files, now=T0)
        submit(conn, review, run, "en", [english, files[-1]], now=T0)
        approved = approve(conn, review, run, "A1", None, now=T0, language="zh-CN")
    assert len(approved.messages) == 2
    deliver_pending(store, settings, now=T0)

    reports_sent = {subject: (rcpt, attachments(message)) for (rcpt, subject), message
                    in zip(received(mailbox), mailbox.received, strict=True)
                    if subject.startswith(("稽查报告：", "Audit report:"))}
    assert reports_sent == {
        f"稽查报告：{SUBJECT}": (MANAGERS, ["report.zh-CN.pdf", "report.zh-CN.html", "findings.zh-CN.csv"]),
        "Audit report: monthly customer-service evaluation (October 2026)": (["board@example.com"],
                                                                             ["report.en.html"])}
    with store.begin() as conn, pytest.raises(ReviewError, match="has the format of .*; submit one file of each"):
        submit(conn, review, run, "en", [english, tmp_path / "out" / "report.zh-CN.html"], now=T0)


def test_a_lead_without_a_team_gets_the_returned_report_back(store, mailbox, port, tmp_path):
    from opsaudit.contract import staff

    settings = settings_for(port)
    with store.begin() as conn:
        conn.execute(staff.update().where(staff.c.staff_id == "A2").values(active=False))
    run = a_run(store)
    with store.begin() as conn:
        submit(conn, gate(store, settings), run, "zh-CN", report_files(tmp_path / "out"), now=T0)
        returned = reject(conn, gate(store, settings), run, "A1", "重写结论", now=T0, language="zh-CN")
    assert [a.email for a in returned.recipients] == [email("A1")]


def test_opsaudit_reports_reject_says_who_was_told_in_chinese(db_url, store, monkeypatch, tmp_path):
    from opsaudit.cli import app

    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    run = a_run(store)
    with store.begin() as conn:
        submit(conn, gate(store, load_settings()), run, "zh-CN", report_files(tmp_path / "out"), now=T0)
    returned = CliRunner().invoke(app, ["reports", "reject", run, "--actor", "A1", "--note", "补充抽样说明"])
    assert returned.exit_code == 0, returned.output
    assert returned.output.splitlines() == [f"稽查批次{run}的稽查报告已退回，审核意见已发送给1位稽查人员。",
                                            "未设置邮件服务器（环境变量OPSAUDIT_SMTP_HOST），2封邮件保留在发件箱中。"]
    assert events(store, run)[-1] == ("rejected", "A1", "补充抽样说明")

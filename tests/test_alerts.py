"""The immediate alert on a major problem (seed 000 §6.2), on SQLite and PostgreSQL, delivered to a
real SMTP server: who is told, what they read, never twice; and inside an audit flow, before the
report's review."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from opsaudit.config.models import Deadlines, Recipient, Recipients
from opsaudit.contract import staff
from opsaudit.reports.alerts import alert_major_findings
from opsaudit.reports.delivery import deliver_pending
from opsaudit.settings import load_settings
from opsaudit.store.schema import audit_runs
from tests.rectification import ZONE, company, directory, email, problem, raise_findings
from tests.smtp import Mailbox

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def latest_run(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(audit_runs.c.id).order_by(audit_runs.c.started_at.desc())).scalars().first()


def alert(engine, config: Recipients = Recipients()):
    with engine.begin() as conn:
        return alert_major_findings(conn, directory(engine), config, latest_run(engine), deadlines=Deadlines(),
                                    language="zh-CN", zone=ZONE, now=T0,
                                    settings=load_settings(web_url="https://audit.example.com"))


def received(mailbox: Mailbox) -> list[tuple[list[str], str]]:
    return [(sorted(envelope.rcpt_tos), message["Subject"])
            for envelope, message in zip(mailbox.envelopes, mailbox.received, strict=True)]


def test_a_major_problem_alerts_the_managers_once_naming_the_problem_owner_and_deadline(engine, mailbox):
    company(engine)
    [major, _] = raise_findings(engine, [problem("CS1", "major"), problem("CS2", "general", owner="O3")])
    duty = Recipient(email="duty@example.com", language="en")
    summary = alert(engine, Recipients(alerts=(duty,)))
    assert summary.findings == (major,) and len(summary.messages) == 2   # Chinese, and English for the duty desk
    deliver_pending(engine, load_settings())

    managers = sorted(email(staff_id) for staff_id in ("M1", "M2", "H1", "E1", "E2"))
    assert received(mailbox) == [(managers, "重大问题：客户满意度未达标（CS1）"),
                                 (["duty@example.com"], "Major problem: Customer satisfaction below target (CS1)")]
    text = mailbox.received[0].get_body(("plain",)).get_content()
    for line in ("责任部门：客服一部（CS1）", "责任人：员工O1（O1）", "整改方案提交期限：2026-11-09",
                 "整改期限：2026-12-02", f"问题编号：{major}", "运营部经理应立即组织召开专题会议",
                 f"处理页面：https://audit.example.com/findings/{major}"):
        assert line in text
    assert "客户服务月度全面评估（2026年10月）发现以下重大问题" in text
    html = mailbox.received[0].get_body(("html",)).get_content()
    assert f'<a href="https://audit.example.com/findings/{major}">' in html
    assert "Web page: https://audit.example.com/findings/" in mailbox.received[1].get_body(("plain",)).get_content()

    # Alerting the run again, or a rerun of the period that finds the same problem: no second alert.
    assert alert(engine).messages == ()
    raise_findings(engine, [problem("CS1", "major"), problem("CS2", "general", owner="O3")])
    assert alert(engine).messages == ()
    # A problem that turns major on a rerun is alerted then.
    [_, now_major] = raise_findings(engine, [problem("CS1", "major"), problem("CS2", "major", owner="O3")])
    assert alert(engine).findings == (now_major,)
    deliver_pending(engine, load_settings())
    assert [subject for _, subject in received(mailbox)][2:] == ["重大问题：客户满意度未达标（CS2）"]


def test_a_problem_of_the_whole_company_is_named_so_not_by_its_id(engine, mailbox):
    company(engine)
    whole = replace(problem("company", "major", owner="M1", department=None), entity_type="company")
    [major] = raise_findings(engine, [whole])
    duty = Recipient(email="duty@example.com", language="en")
    assert alert(engine, Recipients(alerts=(duty,))).findings == (major,)
    deliver_pending(engine, load_settings())

    assert [subject for _, subject in received(mailbox)][-2:] == [
        "重大问题：客户满意度未达标（全公司）", "Major problem: Customer satisfaction below target (the whole company)"]
    chinese = mailbox.received[-2].get_body(("plain",)).get_content()
    assert "问题：客户满意度未达标（全公司）" in chinese and "责任部门：全公司" in chinese
    assert "company" not in chinese


@pytest.mark.usefixtures("prefect_harness")
def test_an_audit_alerts_at_once_and_submits_its_report_for_review(db_url, engine, mailbox, monkeypatch, tmp_path):
    from test_flows import small_company

    from opsaudit.flows.audits import cs_monthly
    from opsaudit.store.migrate import upgrade

    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    small_company(engine)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(staff.insert().values(staff_id="L1", name="Audit lead", department_id="OPS", role="auditor",
                                           email=None, active=True))
        conn.execute(staff.update().values(email=sa.func.lower(staff.c.staff_id) + "@example.com"))

    summary = cs_monthly(period="2026-10")
    again = cs_monthly(period="2026-10")

    assert summary["alerts"] == 2 and again["alerts"] == 0 and summary["report"] == {"zh-CN": "draft"}
    alerts = [(rcpt, subject) for rcpt, subject in received(mailbox) if subject.startswith("重大问题：")]
    # The department's head for its problem; a data-quality problem is the operations manager's.
    assert alerts == [(["m1@example.com"], "重大问题：本期无数据（qa_reviews.*）"),
                      (["m1@example.com", "s2@example.com"], "重大问题：首次响应不及时（CS two）")]
    assert received(mailbox)[:2] == alerts   # before the report's draft
    drafts = [message for message in mailbox.received if message["Subject"].startswith("稽查报告待审核：")]
    assert [message["To"] for message in drafts] == ["Audit lead <l1@example.com>"] * 2   # one per run
    assert [part.get_filename() for part in drafts[0].iter_attachments()] == [
        "report.zh-CN.html", "report.zh-CN.pdf", "findings.zh-CN.csv", "results.json"]
    csv = (tmp_path / "out" / "cs-monthly" / "2026-10" / "findings.zh-CN.csv").read_text(encoding="utf-8-sig")
    assert csv.splitlines()[0].startswith("编号,问题等级,整改状态,问题") and "首次响应不及时" in csv

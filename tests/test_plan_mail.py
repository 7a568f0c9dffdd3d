"""The mail of a rectification plan's steps (interface.md, "The web"), on SQLite and PostgreSQL,
delivered to a real SMTP server: a plan submitted asks the operations manager and the deputy to
approve it, a plan rejected asks the owner and the department's head to write it again; each in
their language, once, linking to the finding's page; a refused step queues nothing; the web's
POST queues the same mail as the command line."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from opsaudit.contract import staff
from opsaudit.reports import outbox
from opsaudit.reports.delivery import deliver_pending
from opsaudit.settings import load_settings
from opsaudit.store.lifecycle import Refused, Request, perform
from opsaudit.store.schema import outbox as outbox_table
from tests.rectification import CAUSE, FOUND, company, directory, email, problem, raise_findings, snapshot
from tests.smtp import Mailbox, free_port
from tests.test_web import csrf, make_site, post_action, sign_in

WEB = "http://audit.example.com/ops"   # http: the test client sends no Secure cookie
# M2, the deputy, reads English (an entry of recipients.yaml says so); H1 too, by address.
RECIPIENTS = f"""
alerts:
  - staff_id: M2
    language: en
circulation:
  - email: {email("H1")}
    language: en
"""
PLAN = {"note": "增加夜班人手", **CAUSE}
LATIN = re.compile(r"[A-Za-z]+")


@pytest.fixture
def store(engine, db_url, tmp_path, monkeypatch):
    company(engine)
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    monkeypatch.setenv("OPSAUDIT_WEB_URL", WEB)
    (tmp_path / "config" / "recipients.yaml").write_text(RECIPIENTS, encoding="utf-8")
    return engine


def opsaudit(*args: str):
    from opsaudit.cli import app

    return CliRunner().invoke(app, list(args))


def queued(engine, prefix: str = "plan:") -> list[outbox.StoredMail]:
    with engine.connect() as conn:
        return [outbox.get(conn, mail.id) for mail in outbox.list_mail(conn) if mail.dedupe_key.startswith(prefix)]


def to(mail) -> str:
    """The one address a plan's message goes to (an SMTP message's To header, or a queued one's)."""
    if isinstance(mail, outbox.StoredMail):
        [address] = mail.recipients
        return address.email
    return re.search(r"<([^>]+)>", mail["To"]).group(1)


def plain(mail) -> str:
    return mail.body_text if isinstance(mail, outbox.StoredMail) else mail.get_body(("plain",)).get_content()


def html(mail) -> str:
    return mail.body_html if isinstance(mail, outbox.StoredMail) else mail.get_body(("html",)).get_content()


def subject(mail) -> str:
    return mail.subject if isinstance(mail, outbox.StoredMail) else mail["Subject"]


def check_submitted(mails, finding: str, submitter: str) -> None:
    """The plan's mail to M1 in Chinese and to M2 in English, once each, naming the finding and the
    plan, linking to the finding's page."""
    by_address = {to(mail): mail for mail in mails}
    assert len(mails) == 2 and set(by_address) == {email("M1"), email("M2")}
    link = f"{WEB}/findings/{finding}"
    chinese, english = by_address[email("M1")], by_address[email("M2")]
    assert subject(chinese) == "整改方案待审批：客户满意度未达标（CS1，2026年10月）"
    assert subject(english) == "Rectification plan to approve: Customer satisfaction below target (CS1, October 2026)"
    intro = f"员工M1，您好：员工{submitter}（{submitter}）提交了以下问题的整改方案，请在处理页面审核后批准或驳回。"
    for line in (intro,
                 "问题：客户满意度未达标（CS1，2026年10月）", "责任部门：客服一部（CS1）", "问题等级：重要问题",
                 "责任人：员工O1（O1）", "整改期限：2026-12-02", "根本原因：夜班人手不足", "预防措施：按话务量排班",
                 "方案说明：增加夜班人手", f"处理页面：{link}"):
        assert line in plain(chinese), line
    for line in ("Dear 员工M2, 员工", "Finding: Customer satisfaction below target (CS1, October 2026)",
                 "Responsible department: 客服一部 (CS1)", "Severity: important problem",
                 "Root cause: 夜班人手不足", "Prevention: 按话务量排班", f"Web page: {link}"):
        assert line in plain(english), line
    for mail in mails:
        assert re.search(f'<p>(处理页面：|Web page: )<a href="{re.escape(link)}">{re.escape(link)}</a></p>', html(mail))
        assert plain(mail).count(link) == 1


def check_rejected(mails, finding: str) -> None:
    """The rejection to O1 in Chinese and to H1 in English, with the reasons and the link."""
    by_address = {to(mail): mail for mail in mails}
    assert len(mails) == 2 and set(by_address) == {email("O1"), email("H1")}
    link = f"{WEB}/findings/{finding}"
    owner, head = by_address[email("O1")], by_address[email("H1")]
    assert subject(owner) == "整改方案被驳回：客户满意度未达标（CS1，2026年10月）"
    for line in ("员工O1，您好：员工M1（M1）驳回了以下问题的整改方案，请按驳回意见修改整改方案，并在处理页面重新提交。",
                 "驳回意见：缺少时间表", "整改期限：2026-12-02", f"处理页面：{link}"):
        assert line in plain(owner), line
    assert subject(head) == "Rectification plan rejected: Customer satisfaction below target (CS1, October 2026)"
    for line in ("Reasons for rejection: 缺少时间表", f"Web page: {link}"):
        assert line in plain(head), line
    assert "Root cause" not in plain(head)   # the rejection states the reasons, not the plan again


def english_words(text: str, *allowed: str) -> list[str]:
    """The Latin words of `text` outside the allowed strings (links, ids) and staff and department ids."""
    for value in sorted(allowed, key=len, reverse=True):
        text = text.replace(value, "")
    return LATIN.findall(re.sub(r"(?<![A-Za-z0-9])[A-Z]+\d+(?![A-Za-z0-9])", "", text))


# --- the command line, delivered ------------------------------------------------------------------

def test_a_submitted_plan_mails_each_approver_once_and_a_rejected_one_the_owner_and_head(store, mailbox: Mailbox):
    [finding] = raise_findings(store, [problem("CS1", "important")])
    done = opsaudit("findings", "submit-plan", finding[:8], "--actor", "O1", "--note", PLAN["note"],
                    "--cause", PLAN["cause"], "--prevention", PLAN["prevention"])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[-1] == "邮件已发送2封，仍在发件箱中0封。", done.stdout
    check_submitted(mailbox.received, finding, "O1")
    assert sorted(rcpt for envelope in mailbox.envelopes for rcpt in envelope.rcpt_tos) == sorted(
        [email("M1"), email("M2")])

    rejected = opsaudit("findings", "reject-plan", finding[:8], "--actor", "M1", "--note", "缺少时间表")
    assert rejected.exit_code == 0, rejected.output
    check_rejected(mailbox.received[2:], finding)

    # Delivering again, or a step refused because it was taken already, mails nothing more.
    deliver_pending(store, load_settings())
    again = opsaudit("findings", "reject-plan", finding[:8], "--actor", "M1", "--note", "缺少时间表")
    assert isinstance(again.exception, Refused)
    assert len(mailbox.received) == 4 and len(queued(store)) == 4
    # A plan written again is a new plan, mailed anew.
    with store.begin() as conn:
        perform(conn, finding, Request("submit-plan", "H1", **PLAN), directory(store), now=FOUND + timedelta(days=1))
    deliver_pending(store, load_settings())
    check_submitted(mailbox.received[4:], finding, "H1")


def test_the_chinese_mail_has_no_english_words_outside_names_ids_and_links(store):
    [finding] = raise_findings(store, [problem("CS1", "important")])
    with store.begin() as conn:
        perform(conn, finding, Request("submit-plan", "O1", **PLAN), directory(store), now=FOUND)
        perform(conn, finding, Request("reject-plan", "M2", note="缺少时间表"), directory(store), now=FOUND)
    chinese = [mail for mail in queued(store) if to(mail) in (email("M1"), email("O1"))]
    assert len(chinese) == 2
    for mail in chinese:
        assert english_words(mail.subject) == []
        assert english_words(mail.body_text, f"{WEB}/findings/{finding}") == [], mail.body_text
        assert english_words(re.sub(r"<[^>]+>", "", mail.body_html), f"{WEB}/findings/{finding}") == []


# --- refusals and unreachable people --------------------------------------------------------------

def test_a_refused_step_queues_nothing(store):
    [finding] = raise_findings(store, [problem("CS1", "important")])
    before = snapshot(store, finding)
    for actor, action, inputs in (("O3", "submit-plan", PLAN),           # not the owner nor the head
                                  ("O1", "submit-plan", {"note": "x"}),  # no cause and prevention
                                  ("M1", "reject-plan", {"note": "x"})):  # nothing submitted yet
        with pytest.raises(Refused), store.begin() as conn:
            perform(conn, finding, Request(action, actor, **inputs), directory(store), now=FOUND)
    refused = opsaudit("findings", "submit-plan", finding, "--actor", "O3", "--cause", "x", "--prevention", "y")
    assert isinstance(refused.exception, Refused)
    assert snapshot(store, finding) == before
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox_table)).scalar_one() == 0


def test_someone_without_an_address_is_named_and_the_others_are_still_told(store):
    [finding] = raise_findings(store, [problem("CS1", "important")])
    with store.begin() as conn:
        conn.execute(staff.update().where(staff.c.staff_id == "M2").values(email=None))
    done = opsaudit("findings", "submit-plan", finding, "--actor", "O1", "--cause", "x", "--prevention", "y")
    assert done.exit_code == 0, done.output
    assert done.stderr.splitlines() == [
        "opsaudit: 未通知：员工M2（M2，运营部副经理）在员工表中没有电子邮箱，未发送邮件"]
    # Without a mail server the mail waits in the outbox, as the command says.
    assert done.stdout.splitlines()[-1] == "未设置邮件服务器（环境变量OPSAUDIT_SMTP_HOST），1封邮件保留在发件箱中。"
    [mail] = queued(store)
    assert to(mail) == email("M1") and mail.status == outbox.PENDING


def test_a_failed_send_stays_in_the_outbox_and_the_step_is_done(store, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OPSAUDIT_SMTP_PORT", str(free_port()))   # nobody listens there
    [finding] = raise_findings(store, [problem("CS1", "important")])
    done = opsaudit("findings", "submit-plan", finding, "--actor", "O1", "--cause", "x", "--prevention", "y")
    assert done.exit_code == 0, done.output
    assert snapshot(store, finding)[0]["status"] == "plan_submitted"
    mails = queued(store)
    assert len(mails) == 2 and {mail.status for mail in mails} == {outbox.PENDING}
    assert all(mail.attempts == 1 and mail.last_error for mail in mails)


# --- the web --------------------------------------------------------------------------------------

def test_the_webs_plan_steps_queue_the_same_mail_and_send_it(store, db_url, monkeypatch, mailbox: Mailbox):
    site = make_site(store, db_url, monkeypatch)
    [finding] = raise_findings(store, [problem("CS1", "important")])
    owner = sign_in(site, "O1")
    other = sign_in(site, "O2")   # of CS1, but neither the owner nor the head
    refused = post_action(other, finding, "submit-plan", csrf(other), **PLAN)
    assert refused.status_code == 403 and queued(store) == []
    answer = post_action(owner, finding, "submit-plan", csrf(owner), **PLAN)
    assert answer.status_code == 303, answer.text[:300]
    check_submitted(queued(store, f"plan:submit-plan:{finding}:"), finding, "O1")
    # Sent once the page has answered, as the command line sends at once.
    assert {mail.status for mail in queued(store, f"plan:submit-plan:{finding}:")} == {outbox.SENT}

    manager = sign_in(site, "M1")
    answer = post_action(manager, finding, "reject-plan", csrf(manager), note="缺少时间表")
    assert answer.status_code == 303, answer.text[:300]
    check_rejected(queued(store, f"plan:reject-plan:{finding}:"), finding)

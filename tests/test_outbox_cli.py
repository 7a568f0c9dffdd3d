"""`opsaudit outbox list` and `opsaudit outbox retry`, run as a user would, against a real SMTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from opsaudit.reports import outbox
from opsaudit.reports.outbox import Address, OutgoingMail
from opsaudit.store.migrate import upgrade
from tests.smtp import free_port, smtp_server
from tests.terminal import on_a_terminal, widest

CREATED = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def opsaudit(*args: str, columns: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command with its output to a pipe; COLUMNS only when given."""
    environ = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120,
                          env=environ | ({"COLUMNS": columns} if columns else {}))


@pytest.fixture
def store(engine):
    upgrade(engine)
    return engine


def enqueue(engine, key: str, **changes) -> int:
    values = dict(dedupe_key=key, kind="alert", recipients=(Address("s003@example.com", "王伟", "S003"),),
                  subject=f"重大问题 {key}", body_text="正文")
    with engine.begin() as conn:
        return outbox.enqueue(conn, OutgoingMail(**(values | changes)), now=CREATED)


@pytest.fixture
def smtp_env(monkeypatch) -> int:
    """OPSAUDIT_SMTP_* pointing at a free local port, where nothing listens until a test starts a server."""
    port = free_port()
    monkeypatch.setenv("OPSAUDIT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OPSAUDIT_SMTP_PORT", str(port))
    monkeypatch.setenv("OPSAUDIT_SMTP_FROM", "audit@example.com")
    monkeypatch.setenv("OPSAUDIT_TIMEZONE", "Asia/Shanghai")
    return port


def test_help():
    for args in (["outbox"], ["outbox", "list"], ["outbox", "retry"]):
        result = opsaudit(*args, "--help")
        assert result.returncode == 0 and "用法：" in result.stdout, result.stderr


def test_list_shows_what_waits_as_json_and_as_a_table(store, db_url):
    first, second = enqueue(store, "alert:F1"), enqueue(store, "report:R1", kind="report")

    listed = opsaudit("outbox", "list", "--format", "json", "--store", db_url)

    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["kind"], r["status"], r["attempts"]) for r in rows] == [
        (first, "alert", "pending", 0), (second, "report", "pending", 0)]
    assert rows[0]["recipients"] == [{"email": "s003@example.com", "name": "王伟", "staff_id": "S003"}]
    assert rows[0]["created_at"] == "2026-11-02T09:00:00+08:00" and rows[0]["subject"] == "重大问题 alert:F1"
    sent = opsaudit("outbox", "list", "--status", "sent", "--format", "json", "--store", db_url)
    assert json.loads(sent.stdout) == []
    table = opsaudit("outbox", "list", "--store", db_url)
    assert table.returncode == 0 and "共2封邮件。" in table.stdout
    assert "未设置邮件服务器（环境变量OPSAUDIT_SMTP_HOST），待发送的邮件保留在发件箱中。" in table.stdout
    english = opsaudit("outbox", "list", "--lang", "en", "--store", db_url)
    assert english.returncode == 0 and "2 messages" in english.stdout
    assert "OPSAUDIT_SMTP_HOST is not set: pending mail stays in the outbox" in english.stdout


def test_retry_without_an_smtp_host_says_so_and_keeps_the_mail(store, db_url):
    message = enqueue(store, "alert:F1")
    result = opsaudit("outbox", "retry", "--store", db_url)
    assert result.returncode == 1
    assert result.stderr == "opsaudit: 错误：未设置邮件服务器（环境变量OPSAUDIT_SMTP_HOST），1封邮件保留在发件箱中。\n"
    assert result.stdout == f"等待发送 #{message} 紧急通知：重大问题 alert:F1：尚未尝试发送\n"
    english = opsaudit("outbox", "retry", "--lang", "en", "--store", db_url)
    assert english.returncode == 1
    assert english.stderr == "opsaudit: error: OPSAUDIT_SMTP_HOST is not set: 1 message in the outbox\n"
    assert english.stdout == f"waiting  #{message} alert: 重大问题 alert:F1: not tried yet\n"


def test_retry_while_smtp_is_down_then_up_sends_each_message_once(store, db_url, smtp_env):
    ids = [enqueue(store, f"alert:F{i}") for i in range(2)]

    down = opsaudit("outbox", "retry", "--store", db_url)

    assert down.returncode == 1
    assert down.stderr == f"opsaudit: 错误：2封邮件未能通过邮件服务器127.0.0.1:{smtp_env}发送。\n"
    lines = down.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["等待发送", f"#{m}"] for m in ids]
    assert "第1次发送失败，下次尝试20" in lines[0] and "cannot connect: Connection refused" in lines[0]

    with smtp_server(smtp_env) as mailbox:
        up = opsaudit("outbox", "retry", "--store", db_url)  # a person retries at once: backoff or not
        again = opsaudit("outbox", "retry", "--store", db_url)

    assert up.returncode == 0, up.stderr
    assert up.stdout.splitlines() == [f"发送成功 #{m} 紧急通知：重大问题 alert:F{i} → s003@example.com"
                                      for i, m in enumerate(ids)]
    assert again.returncode == 0 and again.stdout == ""
    assert len(mailbox.received) == 2


def test_retry_requeues_failed_messages_first(store, db_url, smtp_env):
    failed, pending = enqueue(store, "alert:F1"), enqueue(store, "alert:F2")
    with store.begin() as conn:
        outbox.claim(conn, failed, CREATED)
        outbox.mark_attempt_failed(conn, failed, "550 5.1.1 no such user", retry_at=None)

    with smtp_server(smtp_env) as mailbox:
        only = opsaudit("outbox", "retry", "--id", str(pending), "--store", db_url)
        result = opsaudit("outbox", "retry", "--store", db_url)

    assert only.stdout.splitlines() == [f"发送成功 #{pending} 紧急通知：重大问题 alert:F2 → s003@example.com"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"重新排队 #{failed}",
                                          f"发送成功 #{failed} 紧急通知：重大问题 alert:F1 → s003@example.com"]
    assert len(mailbox.received) == 2
    sent_again = opsaudit("outbox", "retry", "--id", str(failed), "--store", db_url)
    assert sent_again.returncode == 0 and sent_again.stdout == f"邮件#{failed}已发送，保持不变\n"


def test_bad_usage_exits_2(store, db_url):
    assert opsaudit("outbox", "list", "--status", "lost", "--store", db_url).returncode == 2
    assert opsaudit("outbox", "list", "--format", "csv", "--store", db_url).returncode == 2
    unknown = opsaudit("outbox", "retry", "--id", "99", "--store", db_url)
    assert unknown.returncode == 2 and "发件箱中没有邮件#99。" in unknown.stderr


def test_list_takes_the_status_words_it_shows_and_names_the_allowed_ones(store, db_url):
    pending, failed = enqueue(store, "alert:F1"), enqueue(store, "alert:F2")
    with store.begin() as conn:
        outbox.claim(conn, failed, CREATED)
        outbox.mark_attempt_failed(conn, failed, "550 5.1.1 no such user", retry_at=None)

    def listed(status: str) -> list[int]:
        result = opsaudit("outbox", "list", "--status", status, "--format", "json", "--store", db_url)
        assert result.returncode == 0, result.stderr
        return [row["id"] for row in json.loads(result.stdout)]

    assert listed("待发送") == listed("pending") == [pending]
    assert listed("发送失败") == listed("Failed") == [failed]
    unknown = opsaudit("outbox", "list", "--status", "丢失", "--store", db_url)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert ("“丢失”不是发件箱的状态，可用：待发送（pending）、发送中（sending）、已发送（sent）、发送失败（failed）。"
            in unknown.stderr)


def test_list_fits_80_columns_on_a_terminal_and_columns_in_a_pipe(store, db_url):
    people = tuple(Address(f"staff{i:03d}@operations.example.com", f"员工{i}") for i in range(12))
    waiting = enqueue(store, "circulation:2026-10", kind="notice", recipients=people,
                      subject="2026年10月稽查通报：客户服务、计划执行、数据质量三个领域共发现问题六十项，其中重大问题三项，请各部门按期整改")
    sent = enqueue(store, "alert:F1", recipients=(Address("s003@example.com"), Address("lead@example.com")))
    with store.begin() as conn:
        outbox.claim(conn, waiting, CREATED)
        outbox.mark_attempt_failed(conn, waiting, "mail.example.com:587: message refused: 451 4.3.0 the mail "
                                   "system is temporarily unable to accept messages, try again later",
                                   retry_at=CREATED + timedelta(minutes=1))
        outbox.claim(conn, sent, CREATED)
        outbox.mark_sent(conn, sent, CREATED, refused={"s003@example.com": "550 5.1.1 no such user"})

    shown = on_a_terminal("outbox", "list", "--store", db_url)

    assert widest(shown) <= 80
    lines = [line.strip() for line in shown.splitlines()]
    assert "共2封邮件。" in lines and lines[0] == f"#{waiting}  待发送 · 通知 · 已尝试1次"
    assert "staff004@operations.example.com" in lines and "另有7位" in lines
    assert "s003@example.com（拒收：550 5.1.1 no such user）" in lines and "lead@example.com" in lines
    piped = opsaudit("outbox", "list", "--store", db_url, columns="60")
    table = "\n".join(piped.stdout.splitlines()[:-2])  # the two sentences after it are the terminal's to wrap
    assert piped.returncode == 0 and widest(table) <= 60 and "拒收：550 5.1.1 no such user" in table
    assert widest(opsaudit("outbox", "list", "--store", db_url).stdout) <= 80


def test_retry_goes_past_a_poison_message_and_names_the_refused(store, db_url, smtp_env):
    poison = enqueue(store, "alert:F1", recipients=(Address("s003@example.com", "王伟\r\nBcc: x@example.com"),))
    partly = enqueue(store, "alert:F2", recipients=(Address("s003@example.com", "王伟\r"), Address("bad@example.com")))

    with smtp_server(smtp_env) as mailbox:
        mailbox.refuse = {"bad@example.com": "550 5.1.1 no such user"}
        result = opsaudit("outbox", "retry", "--store", db_url)

    assert result.returncode == 1
    assert result.stderr == f"opsaudit: 错误：1封邮件未能通过邮件服务器127.0.0.1:{smtp_env}发送。\n"
    assert result.stdout.splitlines() == [
        f"发送成功 #{partly} 紧急通知：重大问题 alert:F2 → s003@example.com"
        "（拒收：bad@example.com（550 5.1.1 no such user））",
        f"发送成功 #{partly + 1} 通知：邮件未送达：重大问题 alert:F2 → audit@example.com",
        f"发送失败 #{poison} 紧急通知：重大问题 alert:F1：已尝试1次，不再重试："
        "收件人s003@example.com的姓名“王伟\\r\\nBcc: x@example.com”含换行符，不能写入邮件头，此邮件不予发送。"]
    assert [m["To"] for m in mailbox.received] == ["王伟 <s003@example.com>, bad@example.com", "audit@example.com"]

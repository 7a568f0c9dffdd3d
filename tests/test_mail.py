"""Delivery through a real SMTP server (aiosmtpd in the test process), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from opsaudit.errors import ConfigError
from opsaudit.reports import outbox
from opsaudit.reports.delivery import RetryPolicy, deliver, deliver_pending
from opsaudit.reports.mail import SmtpTransport, message_id
from opsaudit.reports.outbox import Address, OutgoingMail
from opsaudit.settings import load_settings
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import outbox as outbox_table
from tests.smtp import Mailbox, self_signed_certificate, server_context, settings_for, smtp_server

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def store(engine):
    upgrade(engine)
    return engine


@pytest.fixture
def mailbox(port) -> Iterator[Mailbox]:
    with smtp_server(port) as box:
        yield box


def enqueue(engine, key: str = "alert:F1", **changes) -> int:
    values = dict(dedupe_key=key, kind="alert",
                  recipients=(Address("s003@example.com", "王伟", "S003"), Address("lead@example.com")),
                  subject="重大问题：客服二部首次响应率 72.5%", body_text="客服二部首次响应率低于目标。",
                  body_html="<p>客服二部<b>首次响应率</b>低于目标。</p>")
    with engine.begin() as conn:
        return outbox.enqueue(conn, OutgoingMail(**(values | changes)), now=T0)


def stored(engine, message_id: int) -> outbox.StoredMail:
    with engine.connect() as conn:
        return outbox.get(conn, message_id)


def deliver_at(engine, settings, moment: datetime):
    return deliver_pending(engine, settings, now=moment)


def test_a_message_arrives_with_its_recipients_subject_parts_and_attachments(store, mailbox, port, tmp_path):
    out = tmp_path / "out" / "cs-monthly" / "2026-10"
    out.mkdir(parents=True)
    files = {"稽查报告.pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "report.html": "<html>报告</html>".encode(),
             "findings.csv": "id,规则\nF1,cs.first_response_rate\n".encode()}
    for name, data in files.items():
        (out / name).write_bytes(data)
    message = enqueue(store, "report:run-1:zh-CN", kind="report", attachments=tuple(out / name for name in files))

    report = deliver_at(store, settings_for(port), T0)

    assert [m.id for m in report.sent] == [message] and report.complete
    (envelope,), (received,) = mailbox.envelopes, mailbox.received
    assert envelope.mail_from == "audit@example.com"
    assert sorted(envelope.rcpt_tos) == ["lead@example.com", "s003@example.com"]
    assert received["Subject"] == "重大问题：客服二部首次响应率 72.5%"
    assert "王伟" in received["To"] and "lead@example.com" in received["To"]
    assert received["Message-ID"] == message_id("report:run-1:zh-CN", "example.com")
    assert received["Auto-Submitted"] == "auto-generated" and received["Date"]
    assert received.get_body(("plain",)).get_content().strip() == "客服二部首次响应率低于目标。"
    assert "<b>首次响应率</b>" in received.get_body(("html",)).get_content()
    attachments = {part.get_filename(): (part.get_content_type(), part.get_payload(decode=True))
                   for part in received.iter_attachments()}
    assert attachments == {"稽查报告.pdf": ("application/pdf", files["稽查报告.pdf"]),
                           "report.html": ("text/html", files["report.html"]),
                           "findings.csv": ("text/csv", files["findings.csv"])}
    sent = stored(store, message)
    assert (sent.status, sent.attempts, sent.sent_at, sent.last_error) == ("sent", 1, T0, None)


def test_smtp_down_then_up_each_message_arrives_exactly_once(store, port):
    settings = settings_for(port, mail_retry_base=60)
    ids = [enqueue(store, f"alert:F{i}") for i in range(3)]

    down = deliver_at(store, settings, T0)  # nothing listens on the port

    assert not down.sent and [m.id for m in down.retrying] == ids and not down.complete
    for message in ids:
        waiting = stored(store, message)
        assert (waiting.status, waiting.attempts, waiting.last_attempt_at) == ("pending", 1, T0)
        assert waiting.last_error == f"127.0.0.1:{port}: cannot connect: Connection refused"
        assert waiting.next_attempt_at == T0 + timedelta(minutes=1)

    with smtp_server(port) as mailbox:
        early = deliver_at(store, settings, T0 + timedelta(seconds=30))  # not yet due
        assert not early.sent and not mailbox.received and len(early.waiting) == 3
        up = deliver_at(store, settings, T0 + timedelta(minutes=1))
        again = deliver_at(store, settings, T0 + timedelta(days=1))

    assert [m.id for m in up.sent] == ids and up.complete
    assert not again.sent and not again.waiting
    assert sorted(m["Message-ID"] for m in mailbox.received) == sorted(
        message_id(f"alert:F{i}", "example.com") for i in range(3))
    assert [stored(store, m).attempts for m in ids] == [2, 2, 2]


def test_enqueueing_a_sent_message_again_sends_nothing(store, mailbox, port):
    first = enqueue(store)
    deliver_at(store, settings_for(port), T0)
    assert enqueue(store) == first
    assert not deliver_at(store, settings_for(port), T0 + timedelta(hours=1)).sent
    assert len(mailbox.received) == 1


def test_without_an_smtp_host_nothing_is_attempted(store, mailbox):
    message = enqueue(store)
    report = deliver_pending(store, load_settings(), now=T0)
    assert not report.attempted and [m.id for m in report.waiting] == [message]
    waiting = stored(store, message)
    assert (waiting.status, waiting.attempts, waiting.last_attempt_at, waiting.last_error) == ("pending", 0, None, None)
    assert not mailbox.received


def test_a_missing_attachment_is_a_failed_attempt_and_the_others_still_go(store, mailbox, port, tmp_path):
    broken = enqueue(store, "report:run-1", kind="report", attachments=(tmp_path / "out" / "gone.pdf",))
    fine = enqueue(store, "report:run-2", kind="report")

    report = deliver_at(store, settings_for(port), T0)

    assert [m.id for m in report.sent] == [fine] and [m.id for m in report.retrying] == [broken]
    failed = stored(store, broken)
    assert failed.status == "pending" and failed.attempts == 1
    assert failed.last_error == f"attachment {tmp_path / 'out' / 'gone.pdf'} is missing"
    assert len(mailbox.received) == 1


def test_an_html_attachment_says_its_charset(store, mailbox, port, tmp_path):
    draft = tmp_path / "report.zh-CN.html"
    draft.write_text("<html><body>稽查报告（草稿）</body></html>", encoding="utf-8")
    picture = tmp_path / "chart.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    enqueue(store, "report:run-1:zh-CN", kind="report", attachments=(draft, picture))

    deliver_at(store, settings_for(port), T0)

    parts = {part.get_filename(): part for part in mailbox.received[0].iter_attachments()}
    html = parts["report.zh-CN.html"]
    assert (html.get_content_type(), html.get_param("charset")) == ("text/html", "utf-8")
    assert html.get_content() == "<html><body>稽查报告（草稿）</body></html>"  # read as the charset says
    assert parts["chart.png"].get_content_type() == "image/png" and parts["chart.png"].get_param("charset") is None


def test_a_name_with_a_line_break_fails_alone_and_a_trailing_carriage_return_is_dropped(store, mailbox, port):
    # Names from a staff table exported on Windows end with CR; one hides a header behind a line break.
    poison = enqueue(store, "notice:0", kind="notice",
                     recipients=(Address("s000@example.com", "王伟\r\nBcc: evil@example.com", "S000"),))
    others = [enqueue(store, f"notice:{i}", kind="notice",
                      recipients=(Address(f"s{i:03d}@example.com", f"员工{i}\r", f"S{i:03d}"),)) for i in range(1, 21)]

    report = deliver_at(store, settings_for(port), T0)

    assert [m.id for m in report.failed] == [poison] and [m.id for m in report.sent] == others
    failed = stored(store, poison)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.last_error == ("收件人s000@example.com的姓名“王伟\\r\\nBcc: evil@example.com”含换行符，"
                                 "不能写入邮件头，此邮件不予发送。")
    assert len(mailbox.received) == 20 and mailbox.received[0]["To"] == "员工1 <s001@example.com>"
    assert all("evil@example.com" not in envelope.rcpt_tos for envelope in mailbox.envelopes)


class BreakingMailbox(Mailbox):
    """A Mailbox whose server breaks the connection: right after it took a message whose
    Message-ID is in `drop_after_data`, before answering (the client cannot know it arrived), or,
    with `close_when_idle`, right after answering each message (a server closing an idle connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.drop_after_data: set[str] = set()
        self.close_when_idle = False

    async def handle_DATA(self, server, session, envelope):
        status = await super().handle_DATA(server, session, envelope)
        if self.received[-1]["Message-ID"] in self.drop_after_data:
            server.transport.close()
        elif self.close_when_idle:
            asyncio.get_running_loop().call_soon(server.transport.close)  # once the reply is written
        return status


@contextmanager
def breaking_server(port: int) -> Iterator[BreakingMailbox]:
    mailbox = BreakingMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def copies(mailbox: Mailbox, key: str) -> int:
    return sum(m["Message-ID"] == message_id(key, "example.com") for m in mailbox.received)


def test_a_connection_broken_after_data_sends_once_per_attempt_and_the_others_still_go(store, port):
    settings = settings_for(port, mail_retry_base=60)
    keys = [f"alert:F{i}" for i in range(11)]
    ids = [enqueue(store, key) for key in keys]

    with breaking_server(port) as mailbox:
        mailbox.drop_after_data = {message_id("alert:F0", "example.com")}
        first = deliver_at(store, settings, T0)
        assert [copies(mailbox, key) for key in keys] == [1] * 11  # once each, F0 included
        mailbox.drop_after_data = set()
        second = deliver_at(store, settings, T0 + timedelta(minutes=1))

    assert [m.id for m in first.retrying] == ids[:1] and [m.id for m in first.sent] == ids[1:]
    unknown = first.retrying[0]
    assert (unknown.status, unknown.attempts, unknown.next_attempt_at) == ("pending", 1, T0 + timedelta(minutes=1))
    assert unknown.last_error == (f"127.0.0.1:{port}：邮件内容交给服务器后连接中断，无法确定是否送达；本轮不再重发，"
                                  "下次重试时再次发送，收件人可能收到两封。")
    # At least once across attempts: the next one sends it again, one copy per attempt.
    assert [m.id for m in second.sent] == ids[:1] and second.complete
    assert [copies(mailbox, key) for key in keys] == [2] + [1] * 10


def test_a_connection_the_server_closed_when_idle_is_opened_again(store, port):
    ids = [enqueue(store, f"notice:{i}", kind="notice") for i in range(3)]
    with breaking_server(port) as mailbox:
        mailbox.close_when_idle = True
        report = deliver_at(store, settings_for(port), T0)
    assert [m.id for m in report.sent] == ids and report.complete
    assert [copies(mailbox, f"notice:{i}") for i in range(3)] == [1, 1, 1]


def test_a_permanent_refusal_fails_at_once_and_a_partial_one_is_noted(store, mailbox, port):
    mailbox.refuse = {"s003@example.com": "550 5.1.1 no such user", "lead@example.com": "550 5.1.1 no such user"}
    refused = enqueue(store, "alert:F1")
    partly = enqueue(store, "alert:F2", recipients=(Address("s003@example.com"), Address("ok@example.com")))

    report = deliver_at(store, settings_for(port), T0)

    assert [m.id for m in report.failed] == [refused] and report.sent[0].id == partly
    failed = stored(store, refused)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.last_error == (f"127.0.0.1:{port}: every recipient was refused: lead@example.com: 550 5.1.1 no such "
                                 "user; s003@example.com: 550 5.1.1 no such user")
    sent = stored(store, partly)
    assert sent.status == "sent" and sent.last_error is None
    assert sent.refused == {"s003@example.com": "550 5.1.1 no such user"}
    assert [a.refused for a in sent.recipients] == ["550 5.1.1 no such user", None]
    assert mailbox.envelopes[0].rcpt_tos == ["ok@example.com"]


def test_the_sender_hears_of_refused_recipients_once_in_the_same_run(store, mailbox, port):
    mailbox.refuse = {"s003@example.com": "550 5.1.1 no such user"}
    everyone = enqueue(store, "alert:F1", recipients=(Address("s003@example.com"),))
    partly = enqueue(store, "alert:F2")  # s003 and lead

    report = deliver_at(store, settings_for(port), T0)
    again = deliver_at(store, settings_for(port), T0 + timedelta(days=1))

    notices = [m for m in report.sent if m.kind == "notice"]
    assert [m.dedupe_key for m in notices] == [f"refused:{everyone}", f"refused:{partly}"]
    assert [m.id for m in report.failed] == [everyone] and not again.sent and not again.waiting
    told = [m for m in mailbox.received if m["X-Opsaudit-Kind"] == "notice"]
    assert [m["To"] for m in told] == ["运营稽查 <audit@example.com>"] * 2
    assert told[1]["Subject"] == "邮件未送达：重大问题：客服二部首次响应率 72.5%"
    assert told[1].get_body(("plain",)).get_content().strip().splitlines() == [
        f"邮件#{partly}（紧急通知）“重大问题：客服二部首次响应率 72.5%”被邮件服务器拒收，"
        "以下收件人没有收到，也不会再向其重发：",
        "s003@example.com（550 5.1.1 no such user）", "请核对这些收件人的邮箱地址，必要时另行转告邮件内容。"]


def test_a_recipient_refused_for_good_is_left_out_of_the_next_attempts(store, mailbox, port):
    mailbox.refuse = {"s003@example.com": "550 5.1.1 no such user", "lead@example.com": "450 4.2.1 mailbox busy"}
    mailbox.data_reply = "451 4.3.0 try again later"
    message = enqueue(store, recipients=(Address("s003@example.com"), Address("lead@example.com"),
                                         Address("ok@example.com")))
    settings = settings_for(port, mail_retry_base=60)

    first = deliver_at(store, settings, T0)
    assert [m.id for m in first.retrying] == [message]
    assert stored(store, message).refused == {"s003@example.com": "550 5.1.1 no such user"}  # 450: try again

    mailbox.refuse, mailbox.data_reply = {}, None  # s003 would be taken now: it is not asked again
    second = deliver_at(store, settings, T0 + timedelta(minutes=1))

    assert second.sent[0].id == message and stored(store, message).status == "sent"
    assert mailbox.envelopes[0].rcpt_tos == ["lead@example.com", "ok@example.com"]
    assert [m["X-Opsaudit-Kind"] for m in mailbox.received] == ["alert", "notice"]


def test_a_temporary_refusal_backs_off_until_the_attempts_are_used_up(store, mailbox, port):
    mailbox.data_reply = "451 4.3.0 try again later"
    message = enqueue(store)
    settings = settings_for(port, mail_retry_base=60, mail_retry_cap=120, mail_max_attempts=3)

    moments = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)]
    reports = [deliver_at(store, settings, moment) for moment in moments]

    assert [bool(r.retrying) for r in reports] == [True, True, False] and [m.id for m in reports[2].failed] == [message]
    failed = stored(store, message)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 3, None)
    assert failed.last_error == f"127.0.0.1:{port}: message refused: 451 4.3.0 try again later"

    mailbox.data_reply = None
    with store.begin() as conn:
        assert outbox.requeue_failed(conn) == [message]
    assert [m.id for m in deliver_at(store, settings, T0 + timedelta(hours=1)).sent] == [message]
    assert len(mailbox.received) == 1


def test_two_concurrent_senders_send_each_message_once(store, mailbox, port):
    ids = [enqueue(store, f"notice:{i}", kind="notice") for i in range(12)]
    settings = settings_for(port)
    reports = []

    def run() -> None:
        reports.append(deliver_pending(store, settings))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(m.id for r in reports for m in r.sent) == ids
    assert len(mailbox.received) == 12
    assert len({m["Message-ID"] for m in mailbox.received}) == 12


def test_a_send_interrupted_mid_delivery_is_not_sent_again_by_itself(store, mailbox, port):
    message = enqueue(store)
    with store.begin() as conn:
        outbox.claim(conn, message, T0)  # a sender claimed it, then its process was killed

    soon = deliver_at(store, settings_for(port), T0 + timedelta(minutes=5))
    later = deliver_at(store, settings_for(port), T0 + timedelta(hours=2))

    assert not soon.sent and not soon.failed
    assert [m.id for m in later.failed] == [message] and not later.sent and not mailbox.received
    assert stored(store, message).status == "failed"


# --- TLS and passwords -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    # handled=False: aiosmtpd answers the client itself (235 or 535).
    return AuthResult(success=auth_data.login == b"audit" and auth_data.password == PASSWORD.encode(), handled=False)


def store_text(engine) -> str:
    with engine.connect() as conn:
        return repr([dict(row) for row in conn.execute(sa.select(outbox_table)).mappings()])


def test_starttls_with_login_delivers_and_the_password_is_never_stored(store, port, certificate):
    with smtp_server(port, tls_context=server_context(certificate), require_starttls=True,
                     authenticator=authenticator) as mailbox:
        message = enqueue(store)
        settings = settings_for(port, smtp_starttls=True, smtp_user="audit", smtp_password=PASSWORD,
                                smtp_ca_file=certificate[0])
        report = deliver_at(store, settings, T0)
    assert [m.id for m in report.sent] == [message] and len(mailbox.received) == 1
    assert PASSWORD not in store_text(store)


def test_a_refused_login_is_recorded_without_the_password(store, port, certificate):
    with smtp_server(port, tls_context=server_context(certificate), require_starttls=True,
                     authenticator=authenticator) as mailbox:
        message = enqueue(store)
        settings = settings_for(port, smtp_starttls=True, smtp_user="audit", smtp_password=PASSWORD + "-wrong",
                                smtp_ca_file=certificate[0])
        report = deliver_at(store, settings, T0)
    assert not report.sent and not mailbox.received
    error = stored(store, message).last_error
    assert error.startswith(f"127.0.0.1:{port}: login as audit refused: 535")
    assert PASSWORD not in store_text(store) and PASSWORD not in repr(report)


def test_a_server_echoing_the_password_does_not_get_it_stored(store, port):
    with smtp_server(port, authenticator=authenticator, auth_require_tls=False) as mailbox:
        mailbox.refuse = {"s003@example.com": f"550 unknown user (you said {PASSWORD})"}
        refused = enqueue(store, "alert:F1", recipients=(Address("s003@example.com"),))
        partly = enqueue(store, "alert:F2", recipients=(Address("s003@example.com"), Address("ok@example.com")))
        report = deliver_at(store, settings_for(port, smtp_user="audit", smtp_password=PASSWORD), T0)
    assert [m.id for m in report.failed] == [refused] and report.sent[0].id == partly
    assert stored(store, refused).last_error.endswith("550 unknown user (you said ***)")
    assert stored(store, partly).refused == {"s003@example.com": "550 unknown user (you said ***)"}
    assert PASSWORD not in store_text(store) and all(PASSWORD not in m.as_string() for m in mailbox.received)


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_an_untrusted_certificate_is_refused(store, port, certificate, mode):
    context = server_context(certificate)
    options = {"tls_context": context, "require_starttls": True} if mode == "starttls" else {"ssl_context": context}
    with smtp_server(port, **options) as mailbox:
        message = enqueue(store)
        report = deliver_at(store, settings_for(port, **{f"smtp_{mode}": True}), T0)
    assert not report.sent and not mailbox.received
    assert "the server's TLS certificate is not trusted" in stored(store, message).last_error


def test_implicit_tls_delivers(store, port, certificate):
    with smtp_server(port, ssl_context=server_context(certificate)) as mailbox:
        message = enqueue(store)
        report = deliver_at(store, settings_for(port, smtp_ssl=True, smtp_ca_file=certificate[0]), T0)
    assert [m.id for m in report.sent] == [message] and len(mailbox.received) == 1


def test_ssl_and_starttls_together_are_a_configuration_error(port):
    with pytest.raises(ConfigError, match="环境变量OPSAUDIT_SMTP_SSL和OPSAUDIT_SMTP_STARTTLS不能同时开启") as refused:
        SmtpTransport(settings_for(port, smtp_ssl=True, smtp_starttls=True))
    assert "OPSAUDIT_SMTP_SSL and OPSAUDIT_SMTP_STARTTLS exclude each other" in refused.value.text("en")


def test_ssl_without_a_port_uses_465():
    transport = SmtpTransport(load_settings(smtp_host="mail.example.com", smtp_ssl=True))
    assert transport.server == "mail.example.com:465"


def test_a_bad_sender_address_is_a_configuration_error(port):
    with pytest.raises(ConfigError, match="OPSAUDIT_SMTP_FROM：“audit”中没有电子邮件地址") as refused:
        SmtpTransport(settings_for(port, smtp_from="audit"))
    assert refused.value.text("en") == "environment: OPSAUDIT_SMTP_FROM: 'audit' has no e-mail address"


def test_deliver_uses_the_clock_for_every_step(store, mailbox, port):
    message = enqueue(store)
    policy = RetryPolicy()
    with SmtpTransport(settings_for(port)) as transport:
        report = deliver(store, transport, policy, clock=lambda: T0 + timedelta(hours=2))
    assert [m.id for m in report.sent] == [message]
    assert stored(store, message).sent_at == T0 + timedelta(hours=2)


# --- Prefect ---------------------------------------------------------------------------------

@pytest.mark.usefixtures("prefect_harness")
def test_the_deliver_mail_flow_sends_the_outbox_once(store, db_url, mailbox, port, monkeypatch):
    from opsaudit.flows.mail import deliver_mail

    for name, value in {"STORE_URL": db_url, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
                        "SMTP_FROM": "audit@example.com"}.items():
        monkeypatch.setenv(f"OPSAUDIT_{name}", value)
    message = enqueue(store)

    first, second = deliver_mail(), deliver_mail()

    assert first["sent"] == [message] and first["waiting"] == []
    assert second["sent"] == [] and len(mailbox.received) == 1


def test_the_task_retries_only_when_the_store_is_unreachable():
    from prefect.states import Failed

    from opsaudit.tasks.mail import store_unreachable

    unreachable = sa.exc.OperationalError("SELECT 1", {}, OSError("connection refused"))
    assert store_unreachable(None, None, Failed(data=unreachable))
    assert not store_unreachable(None, None, Failed(data=ConfigError("environment: OPSAUDIT_SMTP_FROM: bad")))

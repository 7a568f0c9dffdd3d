"""The outbox in the store, on SQLite and PostgreSQL: idempotent enqueue, claims, backoff, requeue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from opsaudit.reports import outbox
from opsaudit.reports.delivery import RetryPolicy
from opsaudit.reports.outbox import Address, OutgoingMail
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import outbox as outbox_table

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def store(engine):
    upgrade(engine)
    return engine


def mail(key: str = "alert:F1", **changes) -> OutgoingMail:
    values = dict(dedupe_key=key, kind="alert", recipients=(Address("s003@example.com", "王伟", "S003"),),
                  subject="重大问题：首次响应率低于目标", body_text="正文", body_html="<p>正文</p>")
    return OutgoingMail(**(values | changes))


def rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(sa.select(outbox_table).order_by(outbox_table.c.id)).mappings()]


def test_enqueue_is_idempotent_by_dedupe_key(store):
    with store.begin() as conn:
        first = outbox.enqueue(conn, mail(), now=T0)
    with store.begin() as conn:
        again = outbox.enqueue(conn, mail(subject="another subject", body_text="changed"), now=T0 + timedelta(days=1))
        other = outbox.enqueue(conn, mail("alert:F2"), now=T0)
    assert again == first != other
    stored = rows(store)
    assert len(stored) == 2
    assert stored[0]["subject"] == "重大问题：首次响应率低于目标" and stored[0]["body_text"] == "正文"
    assert stored[0]["status"] == "pending" and stored[0]["attempts"] == 0
    assert stored[0]["recipients"] == [{"email": "s003@example.com", "name": "王伟", "staff_id": "S003"}]


def test_enqueue_belongs_to_the_callers_transaction(store):
    with pytest.raises(RuntimeError), store.begin() as conn:
        outbox.enqueue(conn, mail(), now=T0)
        raise RuntimeError("the finding could not be stored")
    assert rows(store) == []


def test_enqueue_keeps_attachment_paths_absolute(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with store.begin() as conn:
        message_id = outbox.enqueue(conn, mail(attachments=(Path("out/report.pdf"),)), now=T0)
        stored = outbox.get(conn, message_id)
    assert stored.attachments == (tmp_path / "out" / "report.pdf",)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"recipients": ()}, "no recipient"),
    ({"recipients": (Address("not an address"),)}, "is not an e-mail address"),
    ({"recipients": (Address("Wang <w@example.com>"),)}, "is not an e-mail address"),
    ({"subject": "two\nlines"}, "one non-empty line"),
    ({"subject": "  "}, "one non-empty line"),
    ({"kind": "spam"}, "is not one of report, alert, notice"),
    ({"dedupe_key": "x" * 256}, "1 to 255 characters"),
])
def test_enqueue_refuses_a_message_that_cannot_be_delivered(store, changes, reason):
    with pytest.raises(ValueError, match=reason), store.begin() as conn:
        outbox.enqueue(conn, mail(**changes), now=T0)
    assert rows(store) == []


def test_a_message_is_claimed_once_and_counts_the_attempt(store):
    with store.begin() as conn:
        message_id = outbox.enqueue(conn, mail(), now=T0)
    with store.begin() as conn:
        claimed = outbox.claim(conn, message_id, T0)
    with store.begin() as conn:
        assert outbox.claim(conn, message_id, T0) is None  # a second sender gets nothing
        assert outbox.due(conn, T0) == []
    assert claimed.status == "sending" and claimed.attempts == 1 and claimed.last_attempt_at == T0


def test_a_failed_attempt_waits_for_its_retry_time(store):
    with store.begin() as conn:
        message_id = outbox.enqueue(conn, mail(), now=T0)
        outbox.claim(conn, message_id, T0)
        outbox.mark_attempt_failed(conn, message_id, "smtp:587: cannot connect", retry_at=T0 + timedelta(minutes=1))
    with store.begin() as conn:
        assert outbox.due(conn, T0 + timedelta(seconds=59)) == []
        assert outbox.claim(conn, message_id, T0 + timedelta(seconds=59)) is None
        assert outbox.due(conn, T0 + timedelta(minutes=1)) == [message_id]
        stored = outbox.get(conn, message_id)
    assert (stored.status, stored.attempts, stored.last_error) == ("pending", 1, "smtp:587: cannot connect")
    assert stored.next_attempt_at == T0 + timedelta(minutes=1)


def test_sent_is_final(store):
    with store.begin() as conn:
        message_id = outbox.enqueue(conn, mail(), now=T0)
        outbox.claim(conn, message_id, T0)
        outbox.mark_sent(conn, message_id, T0)
        assert outbox.due(conn, T0 + timedelta(days=1)) == []
        assert outbox.requeue_failed(conn) == []
        stored = outbox.get(conn, message_id)
    assert (stored.status, stored.sent_at, stored.next_attempt_at) == ("sent", T0, None)


def test_backoff_doubles_up_to_the_cap_and_gives_up_after_the_last_attempt():
    policy = RetryPolicy(base=timedelta(minutes=1), cap=timedelta(minutes=10), max_attempts=6)
    waits = [policy.retry_at(attempts, T0) - T0 for attempts in range(1, 6)]
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8, 10)]
    assert policy.retry_at(6, T0) is None


def test_requeue_puts_failed_messages_back_for_a_new_round(store):
    with store.begin() as conn:
        ids = [outbox.enqueue(conn, mail(f"alert:F{i}"), now=T0) for i in range(3)]
        for message_id in ids[:2]:
            outbox.claim(conn, message_id, T0)
            outbox.mark_attempt_failed(conn, message_id, "550 no such user", retry_at=None)
    with store.begin() as conn:
        assert outbox.requeue_failed(conn, [ids[1], ids[2]]) == [ids[1]]  # ids[2] is pending, not failed
        assert outbox.requeue_failed(conn) == [ids[0]]
        assert outbox.requeue_failed(conn) == []
        requeued = outbox.get(conn, ids[0])
    assert (requeued.status, requeued.attempts, requeued.next_attempt_at) == ("pending", 0, None)
    assert requeued.last_error == "550 no such user"  # kept until the next attempt


def test_a_claim_whose_sender_died_is_failed_not_resent(store):
    with store.begin() as conn:
        stale, fresh = (outbox.enqueue(conn, mail(f"alert:F{i}"), now=T0) for i in range(2))
        outbox.claim(conn, stale, T0)
        outbox.claim(conn, fresh, T0 + timedelta(minutes=50))
    with store.begin() as conn:
        assert outbox.fail_stale_claims(conn, T0 + timedelta(hours=1, seconds=1), timedelta(hours=1)) == [stale]
        assert outbox.get(conn, fresh).status == "sending"
        failed = outbox.get(conn, stale)
    assert failed.status == "failed" and "may have reached the server" in failed.last_error


def test_list_by_status(store):
    with store.begin() as conn:
        ids = [outbox.enqueue(conn, mail(f"notice:{i}", kind="notice"), now=T0) for i in range(3)]
        outbox.claim(conn, ids[0], T0)
        outbox.mark_sent(conn, ids[0], T0)
    with store.connect() as conn:
        assert [m.id for m in outbox.list_mail(conn, status="pending")] == ids[1:]
        assert [m.id for m in outbox.list_mail(conn)] == ids
        assert [(m.id, m.status) for m in outbox.list_mail(conn, ids=[ids[0], ids[2]])] == [
            (ids[0], "sent"), (ids[2], "pending")]


def test_make_due_lifts_the_backoff_of_pending_messages_only(store):
    with store.begin() as conn:
        waiting, other, failed = (outbox.enqueue(conn, mail(f"alert:F{i}"), now=T0) for i in range(3))
        for message_id, retry_at in ((waiting, T0 + timedelta(hours=1)), (other, T0 + timedelta(hours=1)),
                                     (failed, None)):
            outbox.claim(conn, message_id, T0)
            outbox.mark_attempt_failed(conn, message_id, "451 later", retry_at=retry_at)
    with store.begin() as conn:
        assert outbox.make_due(conn, [waiting, failed]) == 1
        assert outbox.due(conn, T0) == [waiting]
        assert outbox.make_due(conn) == 1
        assert outbox.due(conn, T0) == [waiting, other]
        assert outbox.get(conn, failed).status == "failed"


def test_refused_recipients_are_kept_in_the_recipients_and_a_requeue_asks_them_again(store):
    two = (Address("s003@example.com", "王伟", "S003"), Address("lead@example.com"))
    with store.begin() as conn:
        sent, failed = (outbox.enqueue(conn, mail(f"alert:F{i}", recipients=two), now=T0) for i in range(2))
        for message_id in (sent, failed):
            outbox.claim(conn, message_id, T0)
        outbox.mark_sent(conn, sent, T0, refused={"s003@example.com": "550 5.1.1 no such user"})
        outbox.mark_attempt_failed(conn, failed, "every recipient was refused", retry_at=None,
                                   refused={"s003@example.com": "550 no", "lead@example.com": "550 no"})
    assert rows(store)[0]["recipients"] == [
        {"email": "s003@example.com", "name": "王伟", "staff_id": "S003", "refused": "550 5.1.1 no such user"},
        {"email": "lead@example.com", "name": None, "staff_id": None}]
    with store.begin() as conn:
        assert outbox.get(conn, sent).refused == {"s003@example.com": "550 5.1.1 no such user"}
        assert outbox.get(conn, failed).refused == {"s003@example.com": "550 no", "lead@example.com": "550 no"}
        assert outbox.requeue_failed(conn) == [failed]
        assert outbox.get(conn, failed).refused == {}
        assert [m.recipients for m in outbox.list_mail(conn, ids=[sent])][0][0].refused == "550 5.1.1 no such user"

"""Delivery of the outbox: send what is pending and due, record every attempt, back off, give up.

Each step is its own short transaction, so a message is claimed (and its attempt counted)
before the SMTP server is contacted, and marked sent as soon as the server accepted it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Engine

from opsaudit.i18n import text
from opsaudit.reports import outbox
from opsaudit.reports.mail import MailError, SmtpTransport
from opsaudit.reports.outbox import Address, MailSummary, OutgoingMail, StoredMail
from opsaudit.reports.review import record_sent
from opsaudit.settings import Settings
from opsaudit.store.times import utcnow

# A message claimed longer ago than this lost its sender mid-delivery (longer than any send takes).
CLAIM_LEASE = timedelta(hours=1)
# The dedupe key of the notice to the sender about a message's refused recipients: this, then its id.
REFUSED_KEY = "refused:"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: base, 2 base, 4 base ... at most cap apart, max_attempts in all."""

    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=4)
    max_attempts: int = 12

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(timedelta(seconds=settings.mail_retry_base), timedelta(seconds=settings.mail_retry_cap),
                   settings.mail_max_attempts)

    def retry_at(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failed attempts; None once they are used up."""
        if attempts >= self.max_attempts:
            return None
        return now + min(self.cap, self.base * 2 ** max(attempts - 1, 0))


class Transport(Protocol):
    """Sends one message; returns the recipients the server refused, raises MailError if it took none.
    `sender`: the From address, which hears of refused recipients."""

    server: str
    sender: str

    def send(self, mail: StoredMail) -> dict[str, str]: ...


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery run did (sent; failed and to be retried; given up on, including sends
    interrupted earlier), and what still waits in the outbox afterwards."""

    attempted: bool
    server: str | None = None
    sent: tuple[MailSummary, ...] = ()
    retrying: tuple[MailSummary, ...] = ()
    failed: tuple[MailSummary, ...] = ()
    waiting: tuple[MailSummary, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every message this run tried went out."""
        return self.attempted and not self.retrying and not self.failed

    def summary(self) -> dict[str, Any]:
        return {"attempted": self.attempted, "server": self.server, "sent": [m.id for m in self.sent],
                "retrying": [m.id for m in self.retrying], "failed": [m.id for m in self.failed],
                "waiting": [m.id for m in self.waiting]}


@dataclass
class _Run:
    """What one delivery run did so far; `unusable`: why the server cannot be used, once it cannot."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unusable: MailError | None = None


def deliver(engine: Engine, transport: Transport, policy: RetryPolicy, *,
            clock: Callable[[], datetime] = utcnow, language: str = "zh-CN") -> DeliveryReport:
    """Send every due pending message once, through one connection, then the notices that
    queued meanwhile (refused recipients, in `language`), so they go out in the same run.

    A message that fails (refused, an attachment gone, a name that cannot be a header, the
    connection broken after it was handed over) fails alone: the others are still tried. Once the
    server cannot be used at all (unreachable, TLS, login), the remaining due messages get the
    same failed attempt without contacting it again, so they all back off together.
    """
    with engine.begin() as conn:
        run = _Run(failed=outbox.fail_stale_claims(conn, clock(), CLAIM_LEASE))
    tried: set[int] = set()  # each message once per run, whatever became of it
    while batch := [message_id for message_id in _due(engine, clock()) if message_id not in tried]:
        tried.update(batch)
        for message_id in batch:
            _attempt(engine, transport, policy, message_id, run, clock, language)
    with engine.connect() as conn:
        return DeliveryReport(
            attempted=True, server=transport.server, sent=tuple(outbox.list_mail(conn, ids=run.sent)),
            retrying=tuple(outbox.list_mail(conn, ids=run.retrying)),
            failed=tuple(outbox.list_mail(conn, ids=run.failed)),
            waiting=tuple(outbox.list_mail(conn, status=outbox.PENDING)))


def _due(engine: Engine, now: datetime) -> list[int]:
    with engine.connect() as conn:
        return outbox.due(conn, now)


def _attempt(engine: Engine, transport: Transport, policy: RetryPolicy, message_id: int, run: _Run,
             clock: Callable[[], datetime], language: str) -> None:
    """Claim one message, send it once and record what came of it."""
    with engine.begin() as conn:
        mail = outbox.claim(conn, message_id, clock())
    if mail is None:  # another sender took it first
        return
    try:
        if run.unusable is not None:
            raise run.unusable
        refused = transport.send(mail)
    except MailError as exc:
        _record_error(engine, mail, exc, policy, run, clock(), transport.sender, language)
        return
    except Exception as exc:
        # A defect: release the claim with the reason, so the message is not left `sending`.
        with engine.begin() as conn:
            outbox.mark_attempt_failed(conn, mail.id, f"unexpected {type(exc).__name__}",
                                       retry_at=policy.retry_at(mail.attempts, clock()))
        raise
    with engine.begin() as conn:
        outbox.mark_sent(conn, mail.id, clock(), refused=refused)
        record_sent(conn, [mail], clock())  # an approved report whose mail went out is sent
        _tell_sender(conn, mail, mail.refused | refused, transport.sender, language, clock())
    run.sent.append(mail.id)


def _record_error(engine: Engine, mail: StoredMail, exc: MailError, policy: RetryPolicy, run: _Run,
                  now: datetime, sender: str, language: str) -> None:
    """Record a failed attempt: pending until its retry, or failed for good.

    An unknown outcome (the connection broke after the message was handed over) waits for the
    next run like any other failure: delivery is at least once across runs (a duplicate, with the
    same Message-ID, is better than a lost alert), and never twice in one run.
    """
    if exc.connection:
        run.unusable = MailError(str(exc), connection=True)  # without this message's refusals
    retry_at = None if exc.permanent else policy.retry_at(mail.attempts, now)
    # Until the message is done, only a refusal for good (5xx) keeps a recipient out of the next attempts.
    refused = exc.refused if retry_at is None else {a: r for a, r in exc.refused.items() if r.startswith("5")}
    with engine.begin() as conn:
        outbox.mark_attempt_failed(conn, mail.id, str(exc), retry_at=retry_at, refused=refused)
        if retry_at is None:
            _tell_sender(conn, mail, mail.refused | refused, sender, language, now)
    (run.retrying if retry_at else run.failed).append(mail.id)


def _tell_sender(conn: Connection, mail: StoredMail, refused: dict[str, str], sender: str, language: str,
                 now: datetime) -> None:
    """Queue a notice to the From address naming the recipients the server refused, in this
    attempt or an earlier one, once the message is done (sent to the others, or failed).

    The sender, not a person looked up in the staff table: it is always a valid address, it is
    where a server's own bounces go, and it needs no operational database at delivery time. Once
    per message, and never about such a notice itself (a refused sender would start a loop).
    """
    if not refused or mail.dedupe_key.startswith(REFUSED_KEY):
        return
    name, address = parseaddr(sender)
    lines = "\n".join(text("outbox.refused_recipient", language, email=email, reply=reply)
                      for email, reply in refused.items())
    outbox.enqueue(conn, OutgoingMail(
        dedupe_key=f"{REFUSED_KEY}{mail.id}", kind="notice", recipients=(Address(address, name or None),),
        subject=text("outbox.notice.subject", language, subject=mail.subject),
        body_text=text("outbox.notice.body", language, id=mail.id, kind=mail.kind, subject=mail.subject,
                       recipients=lines)), now=now)


def deliver_pending(engine: Engine, settings: Settings, *, now: datetime | None = None) -> DeliveryReport:
    """Deliver the outbox with the OPSAUDIT_SMTP_* settings; without a host nothing is attempted
    and the mail stays pending. `now` fixes the clock."""
    if not settings.smtp_host:
        with engine.connect() as conn:
            return DeliveryReport(attempted=False, waiting=tuple(outbox.list_mail(conn, status=outbox.PENDING)))
    with SmtpTransport(settings) as transport:
        return deliver(engine, transport, RetryPolicy.from_settings(settings),
                       clock=(lambda: now) if now is not None else utcnow, language=settings.language)

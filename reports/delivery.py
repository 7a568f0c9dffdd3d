"""Delivery of the outbox: send what is pending and due, record every attempt, back off, give up.

Each step is its own short transaction, so a message is claimed (and its attempt counted)
before the SMTP server is contacted, and marked sent as soon as the server accepted it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from opsaudit.reports import outbox
from opsaudit.reports.mail import MailError, SmtpTransport
from opsaudit.reports.outbox import MailSummary, StoredMail
from opsaudit.reports.review import record_sent
from opsaudit.settings import Settings
from opsaudit.store.times import utcnow

# A message claimed longer ago than this lost its sender mid-delivery (longer than any send takes).
CLAIM_LEASE = timedelta(hours=1)


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
    """Sends one message; returns the recipients the server refused, raises MailError if it took none."""

    server: str

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


def deliver(engine: Engine, transport: Transport, policy: RetryPolicy, *,
            clock: Callable[[], datetime] = utcnow) -> DeliveryReport:
    """Send every due pending message once, through one connection.

    Once the server cannot be used at all (unreachable, TLS, login), the remaining due messages
    get the same failed attempt without contacting it again, so they all back off together.
    """
    with engine.begin() as conn:
        failed = outbox.fail_stale_claims(conn, clock(), CLAIM_LEASE)
        due = outbox.due(conn, clock())
    sent: list[int] = []
    retrying: list[int] = []
    unusable: MailError | None = None
    for message_id in due:
        with engine.begin() as conn:
            mail = outbox.claim(conn, message_id, clock())
        if mail is None:  # another sender took it first
            continue
        try:
            if unusable is not None:
                raise unusable
            refused = transport.send(mail)
        except MailError as exc:
            unusable = exc if exc.connection else unusable
            retry_at = None if exc.permanent else policy.retry_at(mail.attempts, clock())
            _record_failure(engine, mail, str(exc), retry_at)
            (retrying if retry_at else failed).append(mail.id)
            continue
        except Exception as exc:
            # A defect: release the claim with the reason, so the message is not left `sending`.
            _record_failure(engine, mail, f"unexpected {type(exc).__name__}", policy.retry_at(mail.attempts, clock()))
            raise
        note = "refused by the server: " + "; ".join(f"{a}: {r}" for a, r in refused.items()) if refused else None
        with engine.begin() as conn:
            outbox.mark_sent(conn, mail.id, clock(), note=note)
            record_sent(conn, [mail], clock())  # an approved report whose mail went out is sent
        sent.append(mail.id)
    with engine.connect() as conn:
        return DeliveryReport(
            attempted=True, server=transport.server, sent=tuple(outbox.list_mail(conn, ids=sent)),
            retrying=tuple(outbox.list_mail(conn, ids=retrying)), failed=tuple(outbox.list_mail(conn, ids=failed)),
            waiting=tuple(outbox.list_mail(conn, status=outbox.PENDING)))


def _record_failure(engine: Engine, mail: StoredMail, error: str, retry_at: datetime | None) -> None:
    with engine.begin() as conn:
        outbox.mark_attempt_failed(conn, mail.id, error, retry_at=retry_at)


def deliver_pending(engine: Engine, settings: Settings, *, now: datetime | None = None) -> DeliveryReport:
    """Deliver the outbox with the OPSAUDIT_SMTP_* settings; without a host nothing is attempted
    and the mail stays pending. `now` fixes the clock."""
    if not settings.smtp_host:
        with engine.connect() as conn:
            return DeliveryReport(attempted=False, waiting=tuple(outbox.list_mail(conn, status=outbox.PENDING)))
    with SmtpTransport(settings) as transport:
        return deliver(engine, transport, RetryPolicy.from_settings(settings),
                       clock=(lambda: now) if now is not None else utcnow)

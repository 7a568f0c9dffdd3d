"""The `deliver-mail` flow: send what waits in the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow

from opsaudit.tasks.mail import deliver_outbox


@flow(name="deliver-mail", description="Send the mail waiting in the outbox, with backoff; without "
                                        "OPSAUDIT_SMTP_HOST it keeps waiting there.")
def deliver_mail(now: datetime | None = None) -> dict[str, Any]:
    return deliver_outbox(now)

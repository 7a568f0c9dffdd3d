"""`opsaudit outbox`: the mail outbox, what waits, what went and what failed; and sending what waits."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Annotated

import typer

from opsaudit.cli.app import LangOption, StoreOption, app, console, open_store, settings_for

outbox_app = typer.Typer(no_args_is_help=True, help="The mail outbox: pending, sent and failed messages.")
app.add_typer(outbox_app, name="outbox")

# The setting named when mail cannot go: an identifier, the same in every language.
SMTP_HOST = "OPSAUDIT_SMTP_HOST"
COLUMNS = ("id", "kind", "status", "attempts", "created", "when", "to", "subject", "last_error")


class Status(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class ListFormat(StrEnum):
    table = "table"
    json = "json"


@outbox_app.command("list")
def outbox_list(
    status: Annotated[Status | None, typer.Option("--status", show_default=False)] = None,
    format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
    lang: LangOption = None,
    store: StoreOption = None,
) -> None:
    """List the messages of the outbox, oldest first."""
    from opsaudit.reports.outbox import list_mail

    settings = settings_for(None, store)
    with open_store(settings).connect() as conn:
        messages = list_mail(conn, status=status.value if status else None)
    if format is ListFormat.json:
        typer.echo(json.dumps([m.as_json(settings.tz) for m in messages], ensure_ascii=False, indent=2))
        return
    from rich.table import Table

    from opsaudit.i18n import format_value, resolve_language, text

    language = resolve_language(lang.value if lang else None)
    table = Table(*(text(f"outbox.column.{name}", language) for name in COLUMNS))
    for m in messages:
        when = m.sent_at if m.status == "sent" else m.next_attempt_at
        table.add_row(str(m.id), format_value(m.kind, "enum.mail_kind", language),
                      format_value(m.status, "enum.mail_status", language), str(m.attempts),
                      _time(m.created_at, settings.tz, language), _time(when, settings.tz, language),
                      ", ".join(a.email for a in m.recipients), m.subject, m.last_error or "")
    console().print(table)
    typer.echo(text("outbox.total", language, messages=_messages(len(messages), language)))
    if not settings.smtp_host and any(m.status == "pending" for m in messages):
        typer.echo(text("outbox.kept", language, setting=SMTP_HOST))


@outbox_app.command("retry")
def outbox_retry(
    ids: Annotated[list[int] | None, typer.Option(
        "--id", help="Only this message (repeatable): re-queued if failed, sent now if pending.",
        show_default=False)] = None,
    lang: LangOption = None,
    store: StoreOption = None,
) -> None:
    """Re-queue the failed messages, then send everything pending now (backoff or not), one line per message.

    Exit status 1 when a message could not be sent or no SMTP host is set.
    """
    from opsaudit.errors import OpsauditError
    from opsaudit.i18n import resolve_language, text
    from opsaudit.reports.delivery import deliver_pending
    from opsaudit.reports.outbox import list_mail, make_due, requeue_failed

    settings = settings_for(None, store)
    language = resolve_language(lang.value if lang else None)
    engine = open_store(settings)
    with engine.begin() as conn:
        if ids:
            found = {m.id: m.status for m in list_mail(conn, ids=ids)}
            unknown = sorted(set(ids) - set(found))
            if unknown:
                raise typer.BadParameter(text("outbox.error.unknown_id", language, id=unknown[0]),
                                         param_hint="--id")
            for message_id in ids:
                if found[message_id] in ("sent", "sending"):
                    typer.echo(text("outbox.retry.left", language, id=message_id, status=found[message_id]))
        for message_id in requeue_failed(conn, ids or None):
            typer.echo(text("outbox.retry.requeued", language, id=message_id))
        make_due(conn, ids or None)
    report = deliver_pending(engine, settings)
    tz = settings.tz
    for m in report.sent:
        typer.echo(text("outbox.retry.sent_noted" if m.last_error else "outbox.retry.sent", language, id=m.id,
                        kind=m.kind, subject=m.subject, to=[a.email for a in m.recipients], note=m.last_error))
    for m in report.failed:
        typer.echo(text("outbox.retry.failed", language, id=m.id, kind=m.kind, subject=m.subject,
                        attempts=m.attempts, error=m.last_error))
    for m in report.waiting:
        typer.echo(text("outbox.retry.waiting" if m.attempts else "outbox.retry.untried", language, id=m.id,
                        kind=m.kind, subject=m.subject, attempts=m.attempts,
                        next=m.next_attempt_at.astimezone(tz) if m.next_attempt_at else None,
                        error=m.last_error))
    if not report.attempted:
        raise OpsauditError(text("outbox.error.no_host", language, setting=SMTP_HOST,
                                 messages=_messages(len(report.waiting), language)))
    if not report.complete:
        raise OpsauditError(text("outbox.error.not_sent", language, server=report.server,
                                 messages=_messages(len(report.retrying) + len(report.failed), language)))


def _messages(count: int, language: str) -> str:
    """A number of messages, for the sentences that name one."""
    from opsaudit.i18n import text

    return text("outbox.messages.one" if count == 1 else "outbox.messages.many", language, count=count)


def _time(moment: datetime | None, zone: tzinfo, language: str) -> str:
    """A time of the outbox in the settings' zone, as the language writes it; empty when there is none."""
    from opsaudit.i18n import format_value

    return format_value(moment.astimezone(zone), "datetime", language) if moment else ""

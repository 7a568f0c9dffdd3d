"""`opsaudit outbox`: the mail outbox, what waits, what went and what failed; and sending what waits."""

from __future__ import annotations

import json
from datetime import tzinfo
from enum import StrEnum
from typing import Annotated

import typer

from opsaudit.cli.app import StoreOption, app, console, open_store, settings_for

outbox_app = typer.Typer(no_args_is_help=True, help="The mail outbox: pending, sent and failed messages.")
app.add_typer(outbox_app, name="outbox")


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

    table = Table("id", "kind", "status", "attempts", "created", "sent / next try", "to", "subject", "last error")
    for m in messages:
        when = m.sent_at if m.status == "sent" else m.next_attempt_at
        table.add_row(str(m.id), m.kind, m.status, str(m.attempts), _time(m.created_at, settings.tz),
                      _time(when, settings.tz), ", ".join(a.email for a in m.recipients), m.subject,
                      m.last_error or "")
    console().print(table)
    typer.echo(_messages(len(messages)))
    if not settings.smtp_host and any(m.status == "pending" for m in messages):
        typer.echo("OPSAUDIT_SMTP_HOST is not set: pending mail stays in the outbox")


@outbox_app.command("retry")
def outbox_retry(
    ids: Annotated[list[int] | None, typer.Option(
        "--id", help="Only this message (repeatable): re-queued if failed, sent now if pending.",
        show_default=False)] = None,
    store: StoreOption = None,
) -> None:
    """Re-queue the failed messages, then send everything pending now (backoff or not), one line per message.

    Exit status 1 when a message could not be sent or no SMTP host is set.
    """
    from opsaudit.errors import OpsauditError
    from opsaudit.reports.delivery import deliver_pending
    from opsaudit.reports.outbox import list_mail, make_due, requeue_failed

    settings = settings_for(None, store)
    engine = open_store(settings)
    with engine.begin() as conn:
        if ids:
            found = {m.id: m.status for m in list_mail(conn, ids=ids)}
            unknown = sorted(set(ids) - set(found))
            if unknown:
                raise typer.BadParameter(f"no message #{unknown[0]} in the outbox", param_hint="--id")
            for message_id in ids:
                if found[message_id] in ("sent", "sending"):
                    typer.echo(f"#{message_id} is {found[message_id]}: left as it is")
        for message_id in requeue_failed(conn, ids or None):
            typer.echo(f"requeued #{message_id}")
        make_due(conn, ids or None)
    report = deliver_pending(engine, settings)
    tz = settings.tz
    for m in report.sent:
        typer.echo(f"sent     #{m.id} {m.kind}: {m.subject} → {', '.join(a.email for a in m.recipients)}"
                   + (f" ({m.last_error})" if m.last_error else ""))
    for m in report.failed:
        typer.echo(f"failed   #{m.id} {m.kind}: {m.subject}: given up after {m.attempts} attempts: {m.last_error}")
    for m in report.waiting:
        state = (f"attempt {m.attempts} failed, next try {_time(m.next_attempt_at, tz)}: {m.last_error}"
                 if m.attempts else "not tried yet")
        typer.echo(f"waiting  #{m.id} {m.kind}: {m.subject}: {state}")
    if not report.attempted:
        raise OpsauditError(f"OPSAUDIT_SMTP_HOST is not set: {_messages(len(report.waiting))} in the outbox")
    if not report.complete:
        raise OpsauditError(f"{_messages(len(report.retrying) + len(report.failed))} not sent "
                            f"through {report.server}")


def _messages(count: int) -> str:
    return f"{count} message" if count == 1 else f"{count} messages"


def _time(moment, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""

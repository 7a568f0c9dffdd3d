"""`opsaudit outbox`: the mail outbox, what waits, what went and what failed; and sending what waits."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from opsaudit.cli.app import LangOption, StoreOption, app, open_store, settings_for

if TYPE_CHECKING:
    from opsaudit.reports.outbox import MailSummary

outbox_app = typer.Typer(no_args_is_help=True, help="The mail outbox: pending, sent and failed messages.")
app.add_typer(outbox_app, name="outbox")

# The setting named when mail cannot go: an identifier, the same in every language.
SMTP_HOST = "OPSAUDIT_SMTP_HOST"
STATUSES = ("pending", "sending", "sent", "failed")
RECIPIENTS_SHOWN = 5  # a circulation goes to every operations staff member: the list names a few
STATUS_HELP = "pending, sending, sent or failed (or the words the list shows: 待发送, 发送中, 已发送, 发送失败)."


class ListFormat(StrEnum):
    table = "table"
    json = "json"


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option("--status", help=STATUS_HELP, show_default=False)] = None,
    format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
    lang: LangOption = None,
    store: StoreOption = None,
) -> None:
    """List the messages of the outbox, oldest first."""
    from opsaudit.i18n import resolve_language, text
    from opsaudit.reports.outbox import list_mail

    language = resolve_language(lang.value if lang else None)
    wanted = _status(status, language)
    settings = settings_for(None, store)
    with open_store(settings).connect() as conn:
        messages = list_mail(conn, status=wanted)
    if format is ListFormat.json:
        typer.echo(json.dumps([m.as_json(settings.tz) for m in messages], ensure_ascii=False, indent=2))
        return
    _print_table(messages, settings.tz, language)
    typer.echo(text("outbox.total", language, messages=_messages(len(messages), language)))
    if not settings.smtp_host and any(m.status == "pending" for m in messages):
        typer.echo(text("outbox.kept", language, setting=SMTP_HOST))


def _status(value: str | None, language: str) -> str | None:
    """--status as its code: the code, or the word either language's list shows (待发送, failed)."""
    from opsaudit.i18n import LANGUAGES, text
    from opsaudit.i18n.findings import labelled

    if value is None:
        return None
    wanted = value.strip().lower()
    for code in STATUSES:
        if wanted in {code, *(text(f"enum.mail_status.{code}", known).lower() for known in LANGUAGES)}:
            return code
    allowed = [labelled(text(f"enum.mail_status.{code}", language), code, language) for code in STATUSES]
    raise typer.BadParameter(text("outbox.error.unknown_status", language, value=value, allowed=allowed),
                             param_hint="--status")


def _print_table(messages: list[MailSummary], zone: tzinfo, language: str) -> None:
    """Two columns, as `findings list`: the id, never cut; beside it the message in a few lines,
    wrapped to the terminal's width (80 columns fit)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 1, 0))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for m in messages:
        table.add_row(f"#{m.id}", "\n".join(escape(line) for line in _lines(m, zone, language)))
    _console().print(table)


def _lines(m: MailSummary, zone: tzinfo, language: str) -> list[str]:
    """Status; times; subject; recipients, the refused ones marked; the last error."""
    from opsaudit.i18n import text

    times = [text("outbox.list.created", language, at=_time(m.created_at, zone, language))]
    if m.status == "sent" and m.sent_at:
        times.append(text("outbox.list.sent", language, at=_time(m.sent_at, zone, language)))
    elif m.status == "pending" and m.next_attempt_at:
        times.append(text("outbox.list.next", language, at=_time(m.next_attempt_at, zone, language)))
    lines = [text("outbox.list.state", language, status=m.status, kind=m.kind, attempts=m.attempts),
             " · ".join(times), m.subject, text("outbox.list.to", language, count=len(m.recipients))]
    # The refused first, every one of them; then the others, up to a few (the JSON has them all).
    shown = sorted(m.recipients, key=lambda a: a.refused is None)[:max(RECIPIENTS_SHOWN, len(m.refused))]
    lines += [text("outbox.list.refused", language, email=a.email, reply=a.refused) if a.refused
              else text("outbox.list.recipient", language, email=a.email) for a in shown]
    if len(m.recipients) > len(shown):
        lines.append(text("outbox.list.more", language, count=len(m.recipients) - len(shown)))
    if m.last_error:
        lines.append(text("outbox.list.error", language, error=m.last_error))
    return lines


def _console():
    """On a terminal, its width; to a pipe or a file, COLUMNS when set, else 80."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() and int(columns) > 0 else 80)


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
        refused = [text("outbox.refused_recipient", language, email=email, reply=reply)
                   for email, reply in m.refused.items()]
        typer.echo(text("outbox.retry.sent_refused" if refused else "outbox.retry.sent", language, id=m.id,
                        kind=m.kind, subject=m.subject, to=[a.email for a in m.recipients if a.refused is None],
                        refused=refused))
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

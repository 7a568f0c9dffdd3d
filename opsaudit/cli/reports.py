"""`opsaudit reports`: the review gate of seed 000 §5.3 (list, approve, reject) and the monthly
circulation of §6.3 (circulate)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from opsaudit.cli.app import DbOption, LangOption, StoreOption, app, console, delivery_line, open_store, settings_for
from opsaudit.cli.report_render import render

reports_app = typer.Typer(no_args_is_help=True, help="Audit reports: the audit lead's review, and the monthly "
                                                     "circulation to all operations staff.")
app.add_typer(reports_app, name="reports")
reports_app.command("render")(render)

ActorOption = Annotated[str, typer.Option("--actor", help="staff_id of the audit lead who reviews.",
                                          show_default=False)]


class ListFormat(StrEnum):
    table = "table"
    json = "json"


@reports_app.command("list")
def reports_list(
    format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
    lang: LangOption = None,
    store: StoreOption = None,
) -> None:
    """Every audit run's report and where it stands in the review, newest first."""
    from opsaudit.i18n import resolve_language, text
    from opsaudit.reports.review import list_reports

    settings = settings_for(None, store)
    with open_store(settings).connect() as conn:
        lines = list_reports(conn)
    if format is ListFormat.json:
        typer.echo(json.dumps([line.as_json() for line in lines], ensure_ascii=False, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    language = resolve_language(lang.value if lang else None)
    # As `findings list`: the run's id whole, never cut (approve and reject take it), and beside it
    # what the audit lead needs, wrapped to the terminal: it fits 80 columns.
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 1, 0))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for line in lines:
        table.add_row(line.audit_run_id, "\n".join(escape(part) for part in _review_lines(line, settings.tz, language)))
    console().print(table)
    typer.echo(text("review.total", language, count=len(lines)) if lines else text("review.none", language))


def _review_lines(line, zone, language: str) -> list[str]:
    """A report's place in the review: what it reports, its status and languages, who reviewed it
    when, and the note."""
    from opsaudit.i18n import format_value, text

    def pair(column: str, value: str) -> str:
        return text("label.pair", language, label=text(f"review.column.{column}", language), value=value)

    languages = format_value([text(f"review.language.{code}", language) for code in line.languages], "list", language)
    what = (format_value(line.audit, "enum.audit", language), format_value(line.period, "period", language),
            format_value(line.status, "enum.report_status", language))
    shown = [" · ".join(what), pair("languages", languages)]
    if line.reviewed_by:
        when = format_value(line.reviewed_at.astimezone(zone), "datetime", language) if line.reviewed_at else ""
        shown.append(" · ".join(part for part in (pair("reviewer", line.reviewed_by), when) if part))
    if line.review_note:
        shown.append(pair("note", line.review_note))
    return shown


def _gate(db: str | None, store: str | None):
    from opsaudit.reports.review import Gate
    from opsaudit.store.roles import load_directory

    settings = settings_for(db, store)
    config = settings.load_config()
    return Gate(load_directory(settings, config), config.recipients, settings)


@reports_app.command("approve")
def reports_approve(
    run_id: Annotated[str, typer.Argument(help="The audit run whose report is approved.", show_default=False)],
    actor: ActorOption,
    note: Annotated[str | None, typer.Option("--note", help="A review note for the recipients.",
                                             show_default=False)] = None,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Approve a draft report (the audit lead only): it goes to the operations manager and the other recipients."""
    from opsaudit.reports.review import approve

    _review(approve, "approved", run_id, actor, note, lang, db, store)


@reports_app.command("reject")
def reports_reject(
    run_id: Annotated[str, typer.Argument(help="The audit run whose report is returned.", show_default=False)],
    actor: ActorOption,
    note: Annotated[str, typer.Option("--note", help="What must change (required).", show_default=False)],
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Return a draft report with a note (the audit lead only): the note goes to the auditors."""
    from opsaudit.reports.review import reject

    _review(reject, "rejected", run_id, actor, note, lang, db, store)


@reports_app.command("resubmit")
def reports_resubmit(
    run_id: Annotated[str, typer.Argument(help="The audit run whose returned report is submitted again.",
                                          show_default=False)],
    actor: Annotated[str, typer.Option("--actor", help="staff_id of the auditor who revised the report.",
                                       show_default=False)],
    note: Annotated[str | None, typer.Option("--note", help="What was changed, for the audit lead.",
                                             show_default=False)] = None,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Submit a returned report again (an auditor): written anew and sent to the audit lead for review."""
    from opsaudit.reports.review import resubmit

    _review(resubmit, "resubmitted", run_id, actor, note, lang, db, store)


def _review(step, done: str, run_id: str, actor: str, note: str | None, lang, db: str | None,
            store: str | None) -> None:
    """Take one review step in one transaction; then say what it did, who was not told, and what
    became of the mail."""
    from opsaudit.i18n import resolve_language, text
    from opsaudit.store.times import utcnow

    gate = _gate(db, store)
    language = resolve_language(lang.value if lang else None)
    engine = open_store(gate.settings)
    with engine.begin() as conn:
        outcome = step(conn, gate, run_id, actor, note, now=utcnow(), language=language)
    typer.echo(text(f"review.done.{done}", language, run=run_id, count=len(outcome.recipients)))
    _warn(outcome.notes, language)
    _deliver(engine, gate.settings, language)


def _warn(notes, language: str) -> None:
    """Who could not be told (no address, left the company): diagnostics for whoever keeps the
    staff table, on stderr like opsaudit's errors."""
    from opsaudit.reports.recipients import not_told

    for note in notes:
        typer.echo(f"opsaudit: {not_told(note, language)}", err=True)


def _deliver(engine, settings, language: str) -> None:
    from opsaudit.reports.delivery import deliver_pending

    report = deliver_pending(engine, settings)
    typer.echo(delivery_line(language, attempted=report.attempted, sent=len(report.sent),
                             waiting=len(report.waiting) + len(report.failed)))


@reports_app.command("circulate")
def reports_circulate(
    month: Annotated[str | None, typer.Option("--month", help="The month, e.g. 2026-10 (default: last month).",
                                              show_default=False)] = None,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Circulate a month's audits and rectification progress to all operations staff, once a month."""
    from opsaudit.i18n import resolve_language, text
    from opsaudit.tasks.circulation import circulate_month, prepare

    settings = settings_for(db, store)
    language = resolve_language(lang.value if lang else None)
    run = prepare(settings, month, None)
    result = circulate_month(run, language)
    if result["again"]:
        typer.echo(text("circulation.again", language, month=result["month"]))
        return
    key = "circulation.sent" if result["recipients"] else "circulation.nobody"
    ours = [path for path in result["files"] if path.endswith(f".{language}.html")]
    typer.echo(text(key, language, month=result["month"], count=len(result["recipients"]),
                    path=(ours or result["files"])[0]))
    _warn(result["unreachable"], language)
    _deliver(run.store, settings, language)

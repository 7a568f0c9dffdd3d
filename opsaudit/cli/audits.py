"""`opsaudit init`, `demo` and `run`: build the store (and a demo company), and run audits."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from opsaudit.cli.app import (
    DbOption,
    LangOption,
    StoreOption,
    app,
    console,
    parse_now,
    quiet_prefect,
    settings_for,
    usage_text,
)
from opsaudit.errors import OpsauditError


class PeriodicAudit(StrEnum):
    cs_weekly = "cs-weekly"
    cs_monthly = "cs-monthly"
    execution_monthly = "execution-monthly"
    planning_quarterly = "planning-quarterly"
    data_quarterly = "data-quarterly"


class AuditName(StrEnum):
    """What `opsaudit run` runs: a periodic audit, a special audit, a spot check, the daily
    rectification tracking or the daily key-task watch."""

    cs_weekly = "cs-weekly"
    cs_monthly = "cs-monthly"
    execution_monthly = "execution-monthly"
    planning_quarterly = "planning-quarterly"
    data_quarterly = "data-quarterly"
    special = "special"
    spot_check = "spot-check"
    rectification_tracking = "rectification-tracking"
    key_task_watch = "key-task-watch"


class AreaName(StrEnum):
    customer_service = "customer_service"
    execution = "execution"
    planning = "planning"
    data_analysis = "data_analysis"


def _preflight(settings, audit: str, period: str | None, now: datetime | None) -> None:
    """Check config, period, source, output folder and store before the flow starts: a mistake is one line."""
    from opsaudit.audit import build_context, preflight

    preflight(build_context(settings, audit, period=period, now=now))


@app.command()
def init(
    demo: Annotated[bool, typer.Option("--demo", help="Also fill the contract tables with demo data.")] = False,
    scale: Annotated[int | None, typer.Option("--scale", min=1000, help="Demo size in tickets (e.g. 1000000).",
                                              show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the demo data.")] = 20261101,
    check_source: Annotated[bool, typer.Option("--check-source",
                                               help="Check the operational database against the contract.")] = False,
    replace: Annotated[bool, typer.Option("--replace",
                                          help="With --demo: drop contract tables that already hold data.")] = False,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Create or upgrade the audit store (and, with --demo, build a demo company)."""
    from opsaudit.db import check_reachable, store_engine
    from opsaudit.i18n import resolve_language, text
    from opsaudit.store.migrate import upgrade

    settings = settings_for(db, store)
    language = resolve_language(lang.value if lang else None)
    if check_source:
        _check_source(settings, language)
        return
    if demo:
        _refuse_to_replace_data(settings.database, replace)
        _build_demo(settings, seed=seed, scale=scale, as_of=None, language=language)
    elif scale is not None:
        raise typer.BadParameter(usage_text("scale_needs_demo"), param_hint="--scale")
    engine = store_engine(settings.store)
    check_reachable(engine, purpose="store")
    revision = upgrade(engine)
    from opsaudit.store.runs import mark_abandoned

    with engine.begin() as conn:
        abandoned = mark_abandoned(conn)
    if abandoned:
        typer.echo(text("cli.store.abandoned", language, count=abandoned))
    typer.echo(text("cli.store.ready", language, revision=revision))


def _check_source(settings, language: str) -> None:
    from opsaudit.db import check_reachable, source_engine
    from opsaudit.i18n import text
    from opsaudit.source import Source, check_source

    source = Source(source_engine(settings.database, timezone=settings.timezone), settings.load_config().source,
                    zone=settings.timezone)
    check_reachable(source.engine, purpose="database")
    problems = check_source(source)
    for problem in problems:
        typer.echo(problem.text(language))
    if problems:
        raise typer.Exit(1)
    typer.echo(text("cli.source_check.complete", language))


def _refuse_to_replace_data(url: str, replace: bool) -> None:
    """The demo drops and recreates the contract tables: never over real data by accident."""
    import sqlalchemy as sa

    from opsaudit.contract import metadata
    from opsaudit.db import check_reachable, create_engine
    from opsaudit.i18n import Message
    from opsaudit.settings import mask_url

    if replace:
        return
    engine = create_engine(url)
    check_reachable(engine, purpose="database")
    inspector = sa.inspect(engine)
    with engine.connect() as conn:
        filled = [name for name, table in metadata.tables.items()
                  if inspector.has_table(name) and conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1))
                  .first() is not None]
    if filled:
        raise OpsauditError(Message.of("error.demo.not_empty", purpose=Message.of("error.purpose.database"),
                                       url=mask_url(url), tables=filled, option="--replace"))


def _build_demo(settings, *, seed: int, scale: int | None, as_of: datetime | None, language: str):
    from opsaudit.db import create_engine
    from opsaudit.demo import build_demo
    from opsaudit.i18n import text

    engine = create_engine(settings.database)
    summary = build_demo(engine, seed=seed, as_of=as_of, total_tickets=scale, progress=sys.stderr.isatty())
    folder = settings.output_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "planted.json").write_text(json.dumps(
        {"seed": summary.seed, "as_of": summary.as_of.isoformat(), "row_counts": summary.row_counts,
         "planted": [p.__dict__ for p in summary.planted]}, ensure_ascii=False, indent=2), encoding="utf-8")
    tables = [text("cli.demo.table", language, table=text(f"contract.table.{table}", language), count=count)
              for table, count in summary.row_counts.items()]
    typer.echo(text("cli.demo.built", language, seed=summary.seed, as_of=summary.as_of, tables=tables))
    return summary


@app.command()
def demo(
    now: Annotated[str | None, typer.Option("--now", help="Fix the clock (ISO timestamp).",
                                            show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the demo data.")] = 20261101,
    lang: LangOption = None,
) -> None:
    """Build a demo company in the embedded database and run every periodic audit on it."""
    from opsaudit.db import store_engine
    from opsaudit.i18n import resolve_language, text
    from opsaudit.store.migrate import upgrade

    quiet_prefect()
    language = resolve_language(lang.value if lang else None)
    settings = settings_for()
    # The demo is for the embedded database only, whatever OPSAUDIT_DATABASE_URL points at.
    settings = settings_for(settings.embedded_database, settings.embedded_database)
    clock = parse_now(now, settings.tz) or datetime.now(settings.tz)
    summary = _build_demo(settings, seed=seed, scale=None, as_of=clock.replace(tzinfo=None), language=language)
    upgrade(store_engine(settings.store))
    from opsaudit.flows.server import prefect_api

    with prefect_api():
        rows = [_run_flow(audit.value, None, clock) for audit in PeriodicAudit]
    _print_run_table(rows, language)
    typer.echo("\n" + text("cli.demo.planted", language, count=len(summary.planted),
                           path=str(settings.output_dir / "demo" / "planted.json"), output=str(settings.output_dir)))


def _run_flow(audit: str, period: str | None, now: datetime | None) -> dict[str, Any]:
    from opsaudit.flows.audits import PERIODIC_FLOWS

    return PERIODIC_FLOWS[audit](period=period, now=now)


def _print_run_table(rows: list[dict[str, Any]], language: str) -> None:
    """What each audit found, in words and figures a manager reads: warnings count the company's
    results too, and a rerun shows its findings as unchanged rather than nothing."""
    from rich.table import Table

    from opsaudit.i18n import format_value, text

    columns = ("audit", "period", "passed", "warning", "insufficient", "problems", "findings")
    table = Table(*(text(f"cli.run.{column}", language) for column in columns))
    for row in rows:
        outcomes, problems, found = row["outcomes"], row["problems"], row["findings"]

        def count(value: int) -> str:
            return format_value(value, "count", language)

        table.add_row(format_value(row["audit"], "enum.audit", language),
                      format_value(row["period"], "period", language), count(outcomes.get("passed", 0)),
                      count(outcomes.get("warning", 0)), count(outcomes.get("insufficient_data", 0)),
                      "/".join(count(problems.get(s, 0)) for s in ("general", "important", "major")),
                      # A finding a special audit referred to is found again, unchanged by it.
                      "/".join((count(found.get("raised", 0)), count(found.get("updated", 0)),
                                count(found.get("unchanged", 0) + found.get("referred", 0)))))
    console().print(table)


def _run_key_task_watch(settings, period: str | None, now: datetime | None, language: str) -> None:
    """`opsaudit run key-task-watch [--now TS]`: the daily watch, once, through Prefect."""
    from opsaudit.cli.app import delivery_line
    from opsaudit.i18n import text
    from opsaudit.key_tasks import prepare_run

    if period is not None:
        raise typer.BadParameter(usage_text("watch_takes_no_period", audit="key-task-watch"), param_hint="--period")
    prepare_run(settings, now)  # one clear line for a bad tasks table, directory or store, before Prefect starts
    from opsaudit.flows.key_task_watch import key_task_watch
    from opsaudit.flows.server import prefect_api

    with prefect_api():
        result = key_task_watch(now=now)
    typer.echo(text("key_tasks.cli.done", language, now=result["now"], overdue=result["overdue"],
                    due_soon=result["due_soon"], already_warned=result["already_warned"],
                    messages=result["messages"]))
    mail = result["mail"]
    typer.echo(delivery_line(language, attempted=mail["attempted"], sent=len(mail["sent"]),
                             waiting=len(mail["waiting"]) + len(mail["failed"])))


@app.command()
def run(
    audit: Annotated[AuditName, typer.Argument(help="The audit to run.")],
    period: Annotated[str | None, typer.Option("--period", help="e.g. 2026-10, 2026Q3, 2026-W46.",
                                               show_default=False)] = None,
    now: Annotated[str | None, typer.Option("--now", help="Fix the clock (ISO timestamp).",
                                            show_default=False)] = None,
    area: Annotated[list[AreaName] | None, typer.Option(
        "--area", help="special: an audit area whose rules run (repeatable).", show_default=False)] = None,
    department: Annotated[list[str] | None, typer.Option(
        "--department", help="special: a department_id audited (repeatable).", show_default=False)] = None,
    first_day: Annotated[str | None, typer.Option("--from", help="special: the first day audited (2026-10-01).",
                                                  show_default=False)] = None,
    last_day: Annotated[str | None, typer.Option("--to", help="special: the last day audited, included.",
                                                 show_default=False)] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="special: the problem or incident it looks into.",
                                               show_default=False)] = None,
    requested_by: Annotated[str | None, typer.Option("--requested-by", show_default=False,
                                                     help="special: staff_id of the person who asked for it.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, max=2**63 - 1, show_default=False,
                                             help="spot-check: re-perform the draw of this seed.")] = None,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Run one audit now, through its Prefect flow.

    special: `opsaudit run special --area A --department D --from DATE --to DATE --reason TEXT`.

    spot-check: draws a key area, a department and a sample of records now and audits the last 30
    days; `--seed N` re-performs the draw of an earlier spot check.
    """
    from opsaudit.cli.special_runs import check_options, run_special, run_spot_check
    from opsaudit.i18n import resolve_language, text

    quiet_prefect()
    settings = settings_for(db, store)
    language = resolve_language(lang.value if lang else None)
    clock = parse_now(now, settings.tz)
    check_options(audit.value, period=period, seed=seed, special=dict(
        areas=[a.value for a in area or []], departments=department or [], first_day=first_day,
        last_day=last_day, reason=reason, requested_by=requested_by))
    if audit is AuditName.rectification_tracking:
        from opsaudit.cli.lifecycle import run_tracking

        run_tracking(settings, period, clock, language)
        return
    if audit is AuditName.key_task_watch:
        _run_key_task_watch(settings, period, clock, language)
        return
    if audit is AuditName.special:
        result = run_special(settings, clock, areas=[a.value for a in area or []], departments=department or [],
                             first_day=first_day, last_day=last_day, reason=reason, requested_by=requested_by,
                             language=language)
    elif audit is AuditName.spot_check:
        result = run_spot_check(settings, clock, seed, language=language)
    else:
        _preflight(settings, audit.value, period, clock)
        from opsaudit.flows.server import prefect_api

        with prefect_api():
            result = _run_flow(audit.value, period, clock)
    _print_run_table([result], language)
    typer.echo(text("cli.run.done", language, run=result["audit_run_id"], path=result["output"]))

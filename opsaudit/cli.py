"""The `opsaudit` command line (interface.md). Exit status: 0 success (problems found are a
success), 1 the audit could not run, 2 bad command-line usage."""

from __future__ import annotations

import csv
import json
import os
import sys
import traceback
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from opsaudit.errors import OpsauditError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Automated operations audits: the audit regulation enforced on every record.")
findings_app = typer.Typer(no_args_is_help=True, help="List and inspect findings.")
qa_app = typer.Typer(no_args_is_help=True, help="Customer-service quality review sheets.")
app.add_typer(findings_app, name="findings")
app.add_typer(qa_app, name="qa")

DbOption = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the operational data.",
                                              show_default=False)]
StoreOption = Annotated[str | None, typer.Option("--store", help="SQLAlchemy URL of the audit store.",
                                                 show_default=False)]


class PeriodicAudit(StrEnum):
    cs_weekly = "cs-weekly"
    cs_monthly = "cs-monthly"
    execution_monthly = "execution-monthly"
    planning_quarterly = "planning-quarterly"
    data_quarterly = "data-quarterly"


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@app.callback()
def _options(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    """Run `opsaudit COMMAND --help` for each command's options."""


def _settings(db: str | None = None, store: str | None = None):
    """Settings with --db/--store applied; they go to the environment so Prefect flows see them too."""
    from opsaudit.settings import load_settings

    if db:
        os.environ["OPSAUDIT_DATABASE_URL"] = db
    if store:
        os.environ["OPSAUDIT_STORE_URL"] = store
    return load_settings()


def _parse_now(now: str | None, tz) -> datetime | None:
    if now is None:
        return None
    try:
        moment = datetime.fromisoformat(now)
    except ValueError:
        raise typer.BadParameter(f"{now!r} is not an ISO timestamp (e.g. 2026-11-02T09:00)",
                                 param_hint="--now") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _check_period(audit: str, period: str | None, settings) -> None:
    """A --period of the audit's own kind (a week for cs-weekly, a quarter for the quarterly audits)."""
    from opsaudit.audit import audit_plan
    from opsaudit.config.loader import load_config
    from opsaudit.periods import parse_period

    if period is None:
        return
    try:
        parsed = parse_period(period)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from None
    expected = audit_plan(load_config(settings.config_dir), audit).period
    if parsed.kind != expected:
        raise typer.BadParameter(f"{audit} audits a {expected}, and {period!r} is a {parsed.kind}",
                                 param_hint="--period")


def _quiet_prefect() -> None:
    """Prefect's log lines go to the dashboard; the terminal gets opsaudit's summary and one-line errors."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if "--debug" not in sys.argv:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def _preflight(settings, audit: str, period: str | None, now: datetime | None) -> None:
    """Check config, period, source and store before the flow starts, so a mistake is one line."""
    from opsaudit.audit import build_context
    from opsaudit.db import check_reachable

    context = build_context(settings, audit, period=period, now=now)
    check_reachable(context.source.engine, purpose="database")
    context.store  # noqa: B018 - connects and checks the schema revision


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
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Create or upgrade the audit store (and, with --demo, build a demo company)."""
    from opsaudit.db import check_reachable, create_engine
    from opsaudit.store.migrate import upgrade

    settings = _settings(db, store)
    if check_source:
        _check_source(settings)
        return
    if demo:
        _refuse_to_replace_data(settings.database, replace)
        _build_demo(settings, seed=seed, scale=scale, as_of=None)
    elif scale is not None:
        raise typer.BadParameter("--scale goes with --demo", param_hint="--scale")
    engine = create_engine(settings.store, purpose="store")
    check_reachable(engine, purpose="store")
    revision = upgrade(engine)
    typer.echo(f"audit store ready at revision {revision}")


def _check_source(settings) -> None:
    from opsaudit.config.loader import load_config
    from opsaudit.db import check_reachable, create_engine
    from opsaudit.source import Source, check_source

    source = Source(create_engine(settings.database), load_config(settings.config_dir).source)
    check_reachable(source.engine, purpose="database")
    problems = check_source(source)
    for line in problems:
        typer.echo(line)
    if problems:
        raise typer.Exit(1)
    typer.echo("the source has every contract table and column")


def _refuse_to_replace_data(url: str, replace: bool) -> None:
    """The demo drops and recreates the contract tables: never over real data by accident."""
    import sqlalchemy as sa

    from opsaudit.contract import metadata
    from opsaudit.db import check_reachable, create_engine
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
        raise OpsauditError(f"database {mask_url(url)}: contract tables already hold data ({', '.join(filled)}); "
                            "add --replace to drop them and build the demo there")


def _build_demo(settings, *, seed: int, scale: int | None, as_of: datetime | None):
    from opsaudit.db import create_engine
    from opsaudit.demo import build_demo

    engine = create_engine(settings.database)
    summary = build_demo(engine, seed=seed, as_of=as_of, total_tickets=scale, progress=sys.stderr.isatty())
    folder = settings.output_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "planted.json").write_text(json.dumps(
        {"seed": summary.seed, "as_of": summary.as_of.isoformat(), "row_counts": summary.row_counts,
         "planted": [p.__dict__ for p in summary.planted]}, ensure_ascii=False, indent=2), encoding="utf-8")
    counts = ", ".join(f"{table} {count:,}" for table, count in summary.row_counts.items())
    typer.echo(f"demo company built (seed {summary.seed}, data to {summary.as_of:%Y-%m-%d}): {counts}")
    return summary


@app.command()
def demo(
    now: Annotated[str | None, typer.Option("--now", help="Fix the clock (ISO timestamp).",
                                            show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the demo data.")] = 20261101,
) -> None:
    """Build a demo company in the embedded database and run every periodic audit on it."""
    from opsaudit.db import create_engine
    from opsaudit.store.migrate import upgrade

    _quiet_prefect()
    settings = _settings()
    # The demo is for the embedded database only, whatever OPSAUDIT_DATABASE_URL points at.
    settings = _settings(settings.embedded_database, settings.embedded_database)
    clock = _parse_now(now, settings.tz) or datetime.now(settings.tz)
    summary = _build_demo(settings, seed=seed, scale=None, as_of=clock.replace(tzinfo=None))
    upgrade(create_engine(settings.store, purpose="store"))
    rows = [_run_flow(audit.value, None, clock) for audit in PeriodicAudit]
    _print_run_table(rows)
    planted = len(summary.planted)
    typer.echo(f"\n{planted} problems were planted in the demo data (see {settings.output_dir / 'demo'}); "
               f"output written to {settings.output_dir}")


def _run_flow(audit: str, period: str | None, now: datetime | None) -> dict[str, Any]:
    from opsaudit.flows.audits import PERIODIC_FLOWS

    return PERIODIC_FLOWS[audit](period=period, now=now)


def _console():
    """A console as wide as the terminal, or 160 columns when output goes to a file or pipe."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def _print_run_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("audit", "period", "passed", "warnings", "insufficient", "problems (g/i/m)", "findings new/updated")
    for row in rows:
        outcomes, problems, found = row["outcomes"], row["problems"], row["findings"]
        table.add_row(row["audit"], row["period"], str(outcomes.get("passed", 0)), str(outcomes.get("warning", 0)),
                      str(outcomes.get("insufficient_data", 0)),
                      f"{problems.get('general', 0)}/{problems.get('important', 0)}/{problems.get('major', 0)}",
                      f"{found['raised']}/{found['updated']}")
    _console().print(table)


@app.command()
def run(
    audit: Annotated[PeriodicAudit, typer.Argument(help="The audit to run.")],
    period: Annotated[str | None, typer.Option("--period", help="e.g. 2026-10, 2026Q3, 2026-W46.",
                                               show_default=False)] = None,
    now: Annotated[str | None, typer.Option("--now", help="Fix the clock (ISO timestamp).",
                                            show_default=False)] = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Run one audit now, through its Prefect flow."""
    _quiet_prefect()
    settings = _settings(db, store)
    clock = _parse_now(now, settings.tz)
    _check_period(audit.value, period, settings)
    _preflight(settings, audit.value, period, clock)
    result = _run_flow(audit.value, period, clock)
    _print_run_table([result])
    typer.echo(f"audit run {result['audit_run_id']}; results in {result['output']}")


@findings_app.command("list")
def findings_list(
    status: Annotated[str | None, typer.Option("--status", show_default=False)] = None,
    severity: Annotated[str | None, typer.Option("--severity", show_default=False)] = None,
    area: Annotated[str | None, typer.Option("--area", show_default=False)] = None,
    audit_run: Annotated[str | None, typer.Option("--audit-run", show_default=False)] = None,
    format: Annotated[Format, typer.Option("--format")] = Format.table,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """List findings."""
    from opsaudit.store.finding_views import FINDING_KEYS, finding_json, list_findings

    settings = _settings(db, store)
    with _store(settings).connect() as conn:
        rows = [finding_json(row, settings.tz) for row in
                list_findings(conn, status=status, severity=severity, area=area, audit_run=audit_run)]
    if format is Format.json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif format is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=FINDING_KEYS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "evidence": json.dumps(row["evidence"], ensure_ascii=False)})
    else:
        _print_findings_table(rows)


def _store(settings):
    from opsaudit.db import check_reachable, create_engine
    from opsaudit.store.migrate import require_current

    engine = create_engine(settings.store, purpose="store")
    check_reachable(engine, purpose="store")
    require_current(engine)
    return engine


def _print_findings_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("id", "severity", "status", "rule", "entity", "period", "owner", "due", "title")
    for row in rows:
        table.add_row(row["id"][:8], row["severity"] + (" (recurring)" if row["recurring"] else ""), row["status"],
                      row["rule_id"], f"{row['entity_type']} {row['entity_id']}", row["period"],
                      row["owner_id"] or "", (row["due_at"] or "")[:10], row["title"])
    _console().print(table)
    typer.echo(f"{len(rows)} findings")


@findings_app.command("show")
def findings_show(
    finding_id: Annotated[str, typer.Argument(metavar="ID", help="A finding id (or an unambiguous prefix).")],
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """One finding with its evidence and its event history."""
    from opsaudit.store.finding_views import events_of, finding_json, get_finding

    settings = _settings(db, store)
    with _store(settings).connect() as conn:
        finding = finding_json(get_finding(conn, finding_id), settings.tz)
        events = events_of(conn, finding["id"], settings.tz)
    evidence = finding.pop("evidence")
    for key, value in finding.items():
        typer.echo(f"{key:>14}: {value}")
    typer.echo("\nevidence:")
    typer.echo(json.dumps({k: v for k, v in evidence.items() if k != "text"}, ensure_ascii=False, indent=2,
                          default=str))
    typer.echo("\nhistory:")
    for event in events:
        change = f" {event['from_status'] or ''}→{event['to_status']}" if event["to_status"] else ""
        note = f" — {event['note']}" if event["note"] else ""
        typer.echo(f"  {event['at']}  {event['actor']}  {event['action']}{change}{note}")


@qa_app.command("import")
def qa_import(
    file: Annotated[Path, typer.Argument(help="A filled review sheet (.csv or .xlsx).")],
    db: DbOption = None,
) -> None:
    """Import a filled QA review sheet into qa_reviews (all rows or none)."""
    from opsaudit.config.loader import load_config
    from opsaudit.db import check_reachable, create_engine
    from opsaudit.qa_import import import_review_sheet
    from opsaudit.source import Source

    settings = _settings(db)
    engine = create_engine(settings.database)
    check_reachable(engine, purpose="database")
    summary = import_review_sheet(engine, file, source=Source(engine, load_config(settings.config_dir).source))
    typer.echo(f"{file}: {summary}")


def main() -> None:
    """Entry point: one-line errors with exit status 1, tracebacks only with --debug."""
    debug = "--debug" in sys.argv
    try:
        app(standalone_mode=True)
    except OpsauditError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"opsaudit: error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # a defect, not a user's mistake: still one line, the rest with --debug
        if debug:
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        typer.echo(f"opsaudit: error: unexpected {type(exc).__name__}: {first} (run with --debug for details)",
                   err=True)
        sys.exit(1)

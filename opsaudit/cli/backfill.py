"""`opsaudit backfill AUDIT --from P1 --to P2`: past periods of a periodic audit, in order, through
one Prefect server, with a progress bar.

Idempotent like every audit of a period: a rerun updates that period's findings and raises none
twice (opsaudit/store/findings.py); each run is kept in the run history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from opsaudit.cli.app import DbOption, LangOption, StoreOption, app, parse_now, quiet_prefect, settings_for
from opsaudit.cli.audits import PeriodicAudit, _preflight, _print_run_table, _run_flow
from opsaudit.periods import Period
from opsaudit.settings import Settings

EXAMPLES = {"week": "2026-W45", "month": "2026-10", "quarter": "2026Q3"}


def periods_between(settings: Settings, audit: str, first: str, last: str, now: datetime | None) -> list[Period]:
    """The audit's periods from `first` to `last`, both included, in order; each mistake a usage
    error naming its option."""
    from opsaudit.audit import audit_plan, local_now, not_ended
    from opsaudit.i18n import text
    from opsaudit.periods import parse_period, shift

    kind = audit_plan(settings.load_config(), audit).period
    bounds: list[Period] = []
    for option, label in (("--from", first), ("--to", last)):
        try:
            period = parse_period(label)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=option) from None
        if period.kind != kind:
            raise typer.BadParameter(text("audit_run.backfill.error.period", settings.language, period=label,
                                          audit=audit, kind=kind, example=EXAMPLES[kind]), param_hint=option)
        bounds.append(period)
    start, end = bounds
    if start > end:
        raise typer.BadParameter(text("audit_run.backfill.error.order", settings.language, first=first, last=last),
                                 param_hint="--to")
    problem = not_ended(settings, end, local_now(settings, now))
    if problem:
        raise typer.BadParameter(problem, param_hint="--to")
    periods = [start]
    while periods[-1] != end:
        periods.append(shift(periods[-1], 1))
    return periods


@app.command()
def backfill(
    audit: Annotated[PeriodicAudit, typer.Argument(help="The periodic audit to run.")],
    first: Annotated[str, typer.Option("--from", help="The first period, e.g. 2026-07, 2026Q1, 2026-W30.",
                                       show_default=False)],
    last: Annotated[str, typer.Option("--to", help="The last period, included; it must have ended.",
                                      show_default=False)],
    now: Annotated[str | None, typer.Option("--now", help="Fix the clock (ISO timestamp).",
                                            show_default=False)] = None,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Run past periods of an audit in order, with a progress bar; a rerun updates, never duplicates."""
    from opsaudit.errors import OpsauditError
    from opsaudit.flows.server import prefect_api
    from opsaudit.i18n import resolve_language, text

    quiet_prefect()
    settings = settings_for(db, store)
    language = resolve_language(lang.value if lang else None)
    clock = parse_now(now, settings.tz)
    periods = periods_between(settings, audit.value, first, last, clock)
    _preflight(settings, audit.value, periods[0].label, clock)
    rows: list[dict[str, Any]] = []
    with prefect_api(), _progress() as progress:
        bar = progress.add_task(text("audit_run.backfill.progress", language, audit=audit.value),
                                total=len(periods))
        for period in periods:
            progress.update(bar, description=f"{audit.value} {period.label}")
            try:
                rows.append(_run_flow(audit.value, period.label, clock))
            except OpsauditError:
                progress.stop()
                typer.echo(text("audit_run.backfill.failed", language, audit=audit.value,
                                period=period.label), err=True)
                raise
            progress.advance(bar)
    _print_run_table(rows, language)
    typer.echo(text("audit_run.backfill.done", language, count=len(periods), first=periods[0].label,
                    last=periods[-1].label))


def _progress() -> Any:
    """A progress bar on stderr, so the run table on stdout stays clean for a pipe."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True))

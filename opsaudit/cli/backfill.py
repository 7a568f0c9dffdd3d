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


def periods_between(settings: Settings, audit: str, first: str, last: str, now: datetime | None,
                    language: str) -> list[Period]:
    """The audit's periods from `first` to `last`, both included, in order; each mistake a usage
    error naming its option, in `language`."""
    from opsaudit.audit import audit_plan, local_now, not_ended
    from opsaudit.i18n import text
    from opsaudit.periods import LABEL_EXAMPLES, parse_period, shift

    kind = audit_plan(settings.load_config(), audit).period
    bounds: list[Period] = []
    for option, label in (("--from", first), ("--to", last)):
        try:
            period = parse_period(label)
        except ValueError:
            key = "error.period.not_a_period" if label.strip() else "error.period.empty"
            raise typer.BadParameter(text(key, language, value=label.strip(), examples=list(LABEL_EXAMPLES)),
                                     param_hint=option) from None
        if period.kind != kind:
            raise typer.BadParameter(text("audit_run.backfill.error.period", language, period=label,
                                          audit=audit, kind=kind, example=EXAMPLES[kind]), param_hint=option)
        bounds.append(period)
    start, end = bounds
    if start > end:
        raise typer.BadParameter(text("audit_run.backfill.error.order", language, first=first, last=last),
                                 param_hint="--to")
    problem = not_ended(settings, end, local_now(settings, now))
    if problem:
        raise typer.BadParameter(problem.text(language), param_hint="--to")
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
    asked = periods_between(settings, audit.value, first, last, clock, language)
    periods = with_data(settings, audit.value, asked, clock, language)
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


def with_data(settings: Settings, audit: str, periods: list[Period], now: datetime | None,
              language: str) -> list[Period]:
    """The periods that end after the source's first record, saying in one line which were skipped.

    A period before the company's data began is no missing feed but a time before the system: an
    auditor asking for "everything since 2016" wants the periods with data audited, not a major
    "no data" finding, an alert and a draft report for each empty one. A gap inside the data still
    is such a finding. Only periods all of which lie before the data leave nothing to audit: a
    usage error naming the first period with data.
    """
    from opsaudit.audit import build_context
    from opsaudit.checks.quality_config import load_rules
    from opsaudit.checks.quality_suites import first_record, plausible
    from opsaudit.db import check_reachable
    from opsaudit.errors import UsageError
    from opsaudit.i18n import text
    from opsaudit.periods import containing

    context = build_context(settings, audit, period=periods[-1].label, now=now)
    check_reachable(context.source.engine, purpose="database")
    bounds = plausible(load_rules(), context.now)
    found = first_record(context.source, context.tables_read(), bounds.earliest if bounds else None)
    if found is None:
        return periods   # no dated record at all: every period's emptiness is a finding
    column, at = found
    kept = [period for period in periods if period.end > at]
    if not kept:
        start = containing(periods[0].kind, at).label
        raise UsageError(text("validation.backfill.nothing_to_audit", language, first=periods[0].label,
                              last=periods[-1].label, column=column, at=at, start=start, option="--from"))
    if len(kept) < len(periods):
        skipped = periods[:len(periods) - len(kept)]
        typer.echo(text("validation.backfill.skipped", language, first=skipped[0].label, last=skipped[-1].label,
                        count=len(skipped), column=column, at=at))
    return kept


def _progress() -> Any:
    """A progress bar on stderr, so the run table on stdout stays clean for a pipe."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True))

"""`opsaudit run special` and `opsaudit run spot-check`: their options checked, their flows run, and
what a person needs to know about them printed after the run's summary (the reason and scope of a
special audit; the draw of a spot check and how to re-perform it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer

from opsaudit.settings import Settings

# The special audit's fields as the command line names them.
OPTIONS = {"areas": "--area", "departments": "--department", "first_day": "--from", "last_day": "--to",
           "reason": "--reason", "requested_by": "--requested-by"}


def check_options(audit: str, *, period: str | None, seed: int | None, special: dict[str, Any]) -> None:
    """Each option goes with its audit: a usage error (exit 2) names the one that does not."""
    from opsaudit.cli.app import usage_text

    given = [OPTIONS[name] for name, value in special.items() if value]
    if audit != "special" and given:
        raise typer.BadParameter(usage_text("goes_with", command="opsaudit run special", audit=audit),
                                 param_hint=given[0])
    if audit != "spot-check" and seed is not None:
        raise typer.BadParameter(usage_text("goes_with", command="opsaudit run spot-check", audit=audit),
                                 param_hint="--seed")
    if audit in ("special", "spot-check") and period:
        key = "special_takes_days" if audit == "special" else "spot_check_takes_days"
        raise typer.BadParameter(usage_text(key, audit=audit), param_hint="--period")


def run_special(settings: Settings, now: datetime | None, *, language: str, **fields: Any) -> dict[str, Any]:
    """Check the request as the flow would, run the `special` flow, and print its reason and scope."""
    from opsaudit.special import RequestError, parse_request, prepare

    try:
        request = parse_request({name: value for name, value in fields.items() if value})
        prepare(settings, request, now)
    except RequestError as exc:
        raise typer.BadParameter(exc.problem.text(language), param_hint=OPTIONS.get(exc.field, exc.field)) from None
    from opsaudit.flows.server import prefect_api
    from opsaudit.flows.special import special
    from opsaudit.i18n import text

    with prefect_api():
        result = special(request=request, now=now)
    scope = result["special"]
    typer.echo(text("audit_run.special", language, reason=scope["reason"], areas=[
        text(f"enum.area.{area}", language) for area in scope["areas"]], departments=scope["departments"],
        period=result["period"]))
    return result


def run_spot_check(settings: Settings, now: datetime | None, seed: int | None, *, language: str) -> dict[str, Any]:
    """Draw (or re-perform the draw of `seed`) and audit, then print the draw."""
    from opsaudit.cli.app import open_store
    from opsaudit.db import check_reachable, source_engine
    from opsaudit.flows.server import prefect_api
    from opsaudit.flows.spot_check import spot_check

    check_reachable(source_engine(settings.database, timezone=settings.timezone), purpose="database")
    open_store(settings)
    with prefect_api():
        result = spot_check(seed=seed, now=now)
    for line in draw_lines(result["draw"], result["period"], language):
        typer.echo(line)
    return result


def draw_lines(draw: dict[str, Any], period: str, language: str) -> list[str]:
    """The draw and the command that re-performs it."""
    from opsaudit.i18n import text
    from opsaudit.spot_check import reperform_command

    return [text("audit_run.spot_check.drawn", language, seed=draw["seed"], area=draw["area"],
                 department=draw["department_id"], period=period, population=draw["population"],
                 records=draw["records"], size=draw["sample_size"]),
            text("audit_run.spot_check.reperform", language, command=reperform_command(draw["seed"]))]

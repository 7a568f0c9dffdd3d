"""`opsaudit schedules` and `opsaudit serve`: the deployments on the regulation's calendar."""

from __future__ import annotations

import json
import socket
from contextlib import closing
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import typer

from opsaudit.cli.app import DbOption, LangOption, StoreOption, app, console, open_store, quiet_prefect, settings_for
from opsaudit.errors import OpsauditError


class ScheduleFormat(StrEnum):
    table = "table"
    json = "json"


def _registered(settings):
    """The deployments from the registry, on the configured calendar."""
    from opsaudit.config.loader import load_config
    from opsaudit.flows.deployments import deployments

    return deployments(settings, load_config(settings.config_dir))


def _print_schedules(specs, now: datetime, language: str) -> None:
    """The calendar as people read it: the audit in words, the next run with its weekday; the
    deployment's name, cron, tags and parameters as Prefect shows them."""
    from rich.table import Table

    from opsaudit.flows.deployments import fire_times
    from opsaudit.i18n import format_value, text

    columns = ("deployment", "audit", "cron", "timezone", "next_run", "tags", "parameters")
    table = Table(*(text(f"cli.schedules.column.{column}", language) for column in columns))
    for spec in specs:
        upcoming = fire_times(spec, now, count=1)
        table.add_row(spec.name, format_value(spec.audit, "enum.audit", language),
                      spec.cron or text("cli.schedules.on_demand", language), spec.timezone,
                      text("cli.schedules.next_run", language, when=upcoming[0]) if upcoming else "—",
                      ", ".join(spec.tags),
                      json.dumps(dict(spec.parameters), ensure_ascii=False) if spec.parameters else "")
    console().print(table)


@app.command()
def schedules(format: Annotated[ScheduleFormat, typer.Option("--format")] = ScheduleFormat.table,
              lang: LangOption = None) -> None:
    """The deployments and their schedules, as `opsaudit serve` registers them."""
    from opsaudit.i18n import resolve_language

    settings = settings_for()
    specs = _registered(settings)
    if format is ScheduleFormat.json:
        typer.echo(json.dumps([spec.as_json() for spec in specs], ensure_ascii=False, indent=2))
    else:
        _print_schedules(specs, datetime.now(settings.tz), resolve_language(lang.value if lang else None))


def _require_free_port(port: int) -> None:
    """A clear line when the UI port is taken, instead of the server's start-up failure."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        # As the server binds: connections of a server that just stopped (TIME_WAIT) do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise OpsauditError(f"port {port} on 127.0.0.1 is in use: choose another with --port, "
                                "or set PREFECT_API_URL to serve against a running Prefect server") from None


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                      help="Port of the local Prefect server and its UI.")] = 4200,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Register every deployment with its schedule and run them until stopped (Ctrl-C).

    Without PREFECT_API_URL: a local Prefect server with its UI on 127.0.0.1:PORT, stopped with it.

    With PREFECT_API_URL: the deployments are served against that server (PORT is not used).
    """
    from opsaudit.db import check_reachable, create_engine
    from opsaudit.flows.deployments import serve as serve_deployments
    from opsaudit.flows.server import configured_api_url, prefect_api
    from opsaudit.i18n import resolve_language, text

    quiet_prefect()
    settings = settings_for(db, store)
    language = resolve_language(lang.value if lang else None)
    specs = _registered(settings)
    # A daemon whose every run fails is worse than one that does not start: check what runs need.
    check_reachable(create_engine(settings.database, purpose="database"), purpose="database")
    open_store(settings)
    if not configured_api_url():
        _require_free_port(port)
    with prefect_api(port=port, full=True) as api_url:
        from prefect.settings import PREFECT_UI_URL

        typer.echo(text("cli.schedules.ui", language, product="Prefect", url=PREFECT_UI_URL.value() or api_url,
                        api=api_url))
        _print_schedules(specs, datetime.now(settings.tz), language)
        serve_deployments(specs, on_registered=lambda: typer.echo(
            text("cli.schedules.serving", language, count=len(specs), keys="Ctrl-C")))
    typer.echo(text("cli.schedules.stopped", language))

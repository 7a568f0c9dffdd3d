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
from opsaudit.i18n.render import Message


class ScheduleFormat(StrEnum):
    table = "table"
    json = "json"


def _registered(settings):
    """The deployments from the registry, on the configured calendar."""
    from opsaudit.config.loader import load_config
    from opsaudit.flows.deployments import deployments

    return deployments(settings, load_config(settings.config_dir))


def _print_schedules(specs, now: datetime, language: str) -> None:
    """The calendar as people read it, fitting 80 columns: the deployment's name as Prefect shows
    it, never cut; beside it the audit in words, the cron and time zone, the next run with its
    weekday, the tags and the parameters."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 1, 0))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for spec in specs:
        table.add_row(spec.name, "\n".join(escape(line) for line in _schedule_lines(spec, now, language)))
    console().print(table)


def _schedule_lines(spec, now: datetime, language: str) -> list[str]:
    from opsaudit.flows.deployments import fire_times
    from opsaudit.i18n import format_value, text

    def pair(column: str, value: str) -> str:
        return text("label.pair", language, label=text(f"cli.schedules.column.{column}", language), value=value)

    upcoming = fire_times(spec, now, count=1)
    lines = [format_value(spec.audit, "enum.audit", language),
             " · ".join((spec.cron or text("cli.schedules.on_demand", language), spec.timezone)),
             pair("next_run", text("cli.schedules.next_run", language, when=upcoming[0]) if upcoming else "—")]
    if spec.tags:
        lines.append(pair("tags", ", ".join(spec.tags)))
    if spec.parameters:
        lines.append(pair("parameters", json.dumps(dict(spec.parameters), ensure_ascii=False)))
    return lines


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
            raise OpsauditError(Message.of("error.port_in_use", port=port, option="--port",
                                           setting="PREFECT_API_URL")) from None


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                      help="Port of the local Prefect server and its UI.")] = 4200,
    web_port: Annotated[int, typer.Option("--web-port", min=1, max=65535,
                                          help="Port of the web pages (opsaudit web) on 127.0.0.1.")] = 8400,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Register every deployment with its schedule and run them until stopped (Ctrl-C).

    Without PREFECT_API_URL: a local Prefect server with its UI on 127.0.0.1:PORT, stopped with it.

    With PREFECT_API_URL: the deployments are served against that server (PORT is not used).

    The web pages (opsaudit web) are served beside them on 127.0.0.1:WEB_PORT.
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
    from opsaudit.cli.web import serving_in_background, web_server

    pages = web_server(settings, "127.0.0.1", web_port)
    with prefect_api(port=port, full=True) as api_url, serving_in_background(pages):
        typer.echo(text("cli.web.serving", language, url=f"http://127.0.0.1:{web_port}", address=settings.web_url,
                        keys="Ctrl-C"))
        from prefect.settings import PREFECT_UI_URL

        typer.echo(text("cli.schedules.ui", language, product="Prefect", url=PREFECT_UI_URL.value() or api_url,
                        api=api_url))
        _print_schedules(specs, datetime.now(settings.tz), language)
        serve_deployments(specs, on_registered=lambda: typer.echo(
            text("cli.schedules.serving", language, count=len(specs), keys="Ctrl-C")))
    typer.echo(text("cli.schedules.stopped", language))

"""The `opsaudit` application object, the options every command shares, and the entry point.

Exit status: 0 success (problems found are a success), 1 the audit could not run, 2 bad
command-line usage. Each command group lives in its own module of this package.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import typer

from opsaudit.errors import OpsauditError, UsageError
from opsaudit.i18n.catalogue import Language
from opsaudit.signals import ask_to_stop

try:  # typer 0.26 and newer carry their own copy of click
    from typer._click.exceptions import NoArgsIsHelpError as NoArgsIsHelp
    from typer._click.exceptions import UsageError as ClickUsageError
except ImportError:
    from click.exceptions import NoArgsIsHelpError as NoArgsIsHelp
    from click.exceptions import UsageError as ClickUsageError

def _flags_as_flags() -> None:
    """typer 0.29 shows a flag's type beside it (`--debug <bool>`), as if it took a value; a flag
    takes none, so its help shows none."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_as_flags()
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Automated operations audits: the audit regulation enforced on every record.")

DbOption = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the operational data.",
                                              show_default=False)]
StoreOption = Annotated[str | None, typer.Option("--store", help="SQLAlchemy URL of the audit store.",
                                                 show_default=False)]


LangOption = Annotated[Language | None, typer.Option(
    "--lang", help="Language of what is printed (default OPSAUDIT_LANGUAGE).", show_default=False)]


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _show_version(value: bool) -> None:
    if value:
        from opsaudit import __version__

        typer.echo(f"opsaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", is_eager=True,
                                          callback=_show_version)] = False,
) -> None:
    """Run `opsaudit COMMAND --help` for each command's options."""


def settings_for(db: str | None = None, store: str | None = None):
    """Settings with --db/--store applied; they go to the environment so Prefect flows see them too."""
    from opsaudit.settings import load_settings

    if db:
        os.environ["OPSAUDIT_DATABASE_URL"] = db
    if store:
        os.environ["OPSAUDIT_STORE_URL"] = store
    return load_settings()


def parse_now(now: str | None, tz) -> datetime | None:
    """--now as an aware instant; a naive value is local time in OPSAUDIT_TIMEZONE."""
    if now is None:
        return None
    try:
        moment = datetime.fromisoformat(now)
    except ValueError:
        raise typer.BadParameter(f"{now!r} is not an ISO timestamp (e.g. 2026-11-02T09:00)",
                                 param_hint="--now") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def quiet_prefect() -> None:
    """Prefect's log lines go to the dashboard; the terminal gets opsaudit's summary and one-line errors."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if "--debug" not in sys.argv:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def console():
    """A console as wide as the terminal, or 160 columns when output goes to a file or pipe."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def delivery_line(language: str, *, attempted: bool, sent: int, waiting: int) -> str:
    """What a delivery of the outbox did, in one line: sent and still in the outbox (pending, or
    given up on), or all kept for want of a mail server."""
    from opsaudit.i18n import text

    if attempted:
        return text("cli.delivery.sent", language, sent=sent, waiting=waiting)
    return text("cli.delivery.kept", language, waiting=waiting, setting="OPSAUDIT_SMTP_HOST")


def open_store(settings):
    """The store engine, reachable and at the current schema revision."""
    from opsaudit.db import check_reachable, create_engine
    from opsaudit.store.migrate import require_current

    engine = create_engine(settings.store, purpose="store", create=False)  # reading never creates a store
    check_reachable(engine, purpose="store")
    require_current(engine)
    return engine


def _interrupt(signum: int, _frame: object) -> None:
    ask_to_stop(signum)   # remembered, in case Python drops the exception below (opsaudit/signals.py)
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """Entry point: every error is one line; exit 1 when the audit cannot run, 2 for bad usage.
    Tracebacks only with --debug."""
    debug = "--debug" in sys.argv
    # SIGTERM unwinds like Ctrl-C, so a run records how it ended and its Prefect server stops.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = app(standalone_mode=False)
    except ClickUsageError as exc:
        if isinstance(exc, NoArgsIsHelp):
            sys.exit(2)  # the help is printed already
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        message = " ".join(exc.format_message().replace("Value error, ", "").split())  # one line
        _fail(f"{message}{where}", 2, debug)
    except UsageError as exc:
        _fail(str(exc), 2, debug)
    except OpsauditError as exc:
        _fail(str(exc), 1, debug)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("opsaudit: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # `opsaudit findings list | head`: the reader has what it wanted; say nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as exc:  # a defect, not a user's mistake: still one line, the rest with --debug
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(f"unexpected {type(exc).__name__}: {first} (run with --debug for details)", 1, debug)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    typer.echo(f"opsaudit: error: {message}", err=True)
    sys.exit(code)

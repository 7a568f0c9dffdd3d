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
import typer.main

# typer 0.26 and newer carry their own copy of click, whose messages are English only (no gettext):
# main() words its usage errors from the catalogue instead.
from typer._click import Context
from typer._click import formatting as click_formatting
from typer._click.exceptions import BadOptionUsage, BadParameter, MissingParameter, NoSuchOption
from typer._click.exceptions import NoArgsIsHelpError as NoArgsIsHelp
from typer._click.exceptions import UsageError as ClickUsageError

from opsaudit.errors import OpsauditError, UsageError
from opsaudit.i18n.catalogue import Language
from opsaudit.signals import ask_to_stop


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
        raise typer.BadParameter(usage_text("not_a_timestamp", value=now), param_hint="--now") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def quiet_prefect() -> None:
    """Prefect's log lines go to the dashboard; the terminal gets opsaudit's summary and one-line errors."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if "--debug" not in sys.argv:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


FILE_WIDTH = 160  # output to a file or pipe, when COLUMNS does not say: wide enough that lines seldom wrap


def console():
    """A console as wide as the terminal; for a file or pipe, COLUMNS wide when it is set, else
    FILE_WIDTH (rich alone would read COLUMNS, but fall back to 80 columns)."""
    from rich.console import Console

    columns = os.environ.get("COLUMNS", "").strip()
    # rich reads COLUMNS itself, before the terminal's size.
    out = Console() if sys.stdout.isatty() or columns.isdigit() else Console(width=FILE_WIDTH)
    out.on_broken_pipe = _quiet_broken_pipe  # rich's own exits with status 1
    return out


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

    _require_store_file(settings.store)
    engine = create_engine(settings.store, purpose="store", create=False)  # reading never creates a store
    check_reachable(engine, purpose="store")
    require_current(engine)
    return engine


def _require_store_file(url: str) -> None:
    """An embedded store that is not there yet: say how to make one, in the reader's language."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from opsaudit.errors import StoreError
    from opsaudit.i18n import text
    from opsaudit.settings import mask_url

    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or parsed.query.get("mode") == "memory":
        return
    if not Path(database.removeprefix("file:")).expanduser().is_file():
        raise StoreError(text("cli.store.missing", cli_language(sys.argv[1:]), url=mask_url(url),
                              init="opsaudit init", demo="opsaudit demo"))


def _interrupt(signum: int, _frame: object) -> None:
    ask_to_stop(signum)   # remembered, in case Python drops the exception below (opsaudit/signals.py)
    raise KeyboardInterrupt(f"signal {signum}")


def cli_language(argv: list[str]) -> str:
    """The language of help pages and usage errors: `--lang` on this command line, else
    OPSAUDIT_LANGUAGE; zh-CN when the settings cannot be read (the command itself says why)."""
    from opsaudit.i18n import LANGUAGES, resolve_language

    for index, arg in enumerate(argv):
        value = argv[index + 1] if arg == "--lang" and index + 1 < len(argv) else arg.removeprefix("--lang=")
        if (arg == "--lang" or arg.startswith("--lang=")) and value in LANGUAGES:
            return value
    try:
        return resolve_language(None)
    except OpsauditError:
        return Language.zh_CN.value


def usage_text(key: str, **values: object) -> str:
    """A usage error's words (`cli_help.error.<key>`) in the language of this command line."""
    from opsaudit.i18n import text

    return text(f"cli_help.error.{key}", cli_language(sys.argv[1:]), **values)


def localise_help(command, language: str, path: tuple[str, ...] = ()) -> None:
    """Every command's and option's help, and the help pages' own words, from the catalogue in
    `language`. A command or option the catalogue lacks keeps its English help (test_i18n finds it)."""
    from typer import rich_utils

    from opsaudit.i18n import has_message, text

    name = " ".join(path) or "opsaudit"
    if has_message(f"cli_help.command.{name}", language):
        command.help, command.short_help = text(f"cli_help.command.{name}", language), None
    params = [*command.params, command.get_help_option(Context(command))]
    for param in (param for param in params if param is not None):
        for key in (f"cli_help.command_option.{name}.{param.name}", f"cli_help.option.{param.name}"):
            if has_message(key, language):
                param.help = text(key, language)
                break
    for sub_name, sub in getattr(command, "commands", {}).items():
        localise_help(sub, language, (*path, sub_name))
    if not path:
        rich_utils.ARGUMENTS_PANEL_TITLE = text("cli_help.panel.arguments", language)
        rich_utils.OPTIONS_PANEL_TITLE = text("cli_help.panel.options", language)
        rich_utils.COMMANDS_PANEL_TITLE = text("cli_help.panel.commands", language)
        rich_utils.DEFAULT_STRING = text("cli_help.default", language, value="{}")  # typer fills in the {}
        rich_utils.REQUIRED_LONG_STRING = text("cli_help.required", language)
        _usage_prefix(text("cli_help.usage", language))


def _usage_prefix(prefix: str) -> None:
    """click writes `Usage: ` before every usage line; the reader's word instead."""
    formatter = click_formatting.HelpFormatter
    write_usage = getattr(formatter.write_usage, "__wrapped__", formatter.write_usage)

    def localised(self, prog: str, args: str = "", prefix_: str | None = None) -> None:
        write_usage(self, prog, args, prefix if prefix_ is None else prefix_)

    localised.__wrapped__ = write_usage  # type: ignore[attr-defined]
    formatter.write_usage = localised  # type: ignore[method-assign]


def usage_message(exc: ClickUsageError, language: str) -> str:
    """click's usage error in the reader's language, in one line, naming the option or command."""
    from opsaudit.i18n import text

    def error(key: str, **values: object) -> str:
        return text(f"cli_help.error.{key}", language, **values)

    if isinstance(exc, MissingParameter):
        kind = exc.param_type or (exc.param.param_type_name if exc.param is not None else "parameter")
        return error(f"missing.{kind}", name=_param_name(exc))
    if isinstance(exc, BadParameter):
        return error("invalid", option=_param_name(exc), reason=_reason(exc, language))
    if isinstance(exc, NoSuchOption):
        guesses = error("did_you_mean", names=sorted(exc.possibilities)) if exc.possibilities else ""
        return error("no_such_option", name=exc.option_name) + guesses
    if isinstance(exc, BadOptionUsage):
        key = "takes_no_value" if "does not take a value" in exc.message else "needs_value"
        return error(key, name=exc.option_name)
    import re

    # The plain UsageErrors click raises, by their fixed English words (typer/_click/core.py).
    if found := re.fullmatch(r"No such command '(.*)'\.(?: Did you mean (.*)\?)?", exc.message):
        guesses = [name.strip("'") for name in found[2].split(", ")] if found[2] else []
        return error("no_such_command", name=found[1]) + (error("did_you_mean", names=guesses) if guesses else "")
    if exc.message == "Missing command.":
        return error("missing_command")
    if found := re.fullmatch(r"Got unexpected extra argument\(s\) \((.*)\)", exc.message):
        return error("extra_arguments", arguments=found[1])
    return exc.format_message()


def _param_name(exc: BadParameter) -> str:
    """The option as it is typed (--actor), or the argument's name (AUDIT)."""
    if exc.param_hint is not None:
        return exc.param_hint if isinstance(exc.param_hint, str) else " / ".join(exc.param_hint)
    if exc.param is None:
        return ""
    return " / ".join(exc.param.opts) if exc.param.param_type_name == "option" else exc.param.name.upper()


def _reason(exc: BadParameter, language: str) -> str:
    """Why a value was refused. opsaudit's own refusals (with a param_hint) are worded already;
    typer's conversions are worded from what pydantic says was wrong."""
    from pydantic import ValidationError

    from opsaudit.i18n import text

    if exc.param_hint is not None or not isinstance(exc.__cause__, ValidationError):
        return exc.message
    problem = exc.__cause__.errors()[0]
    value = problem.get("input")
    choices = getattr(getattr(exc.param, "type_descriptor", None), "choices", None)
    if choices:
        names = [getattr(choice, "value", choice) for choice in choices]
        return text("cli_help.error.one_of", language, value=value, choices=names)
    if problem["type"] == "int_parsing":
        return text("cli_help.error.not_integer", language, value=value)
    if problem["type"] in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bounds = {"ge": "≥", "le": "≤", "gt": ">", "lt": "<"}
        allowed = ", ".join(f"{bounds[name]} {limit}" for name, limit in (problem.get("ctx") or {}).items()
                            if name in bounds)
        return text("cli_help.error.range", language, value=value, range=allowed)
    return exc.message


def main() -> None:
    """Entry point: every error is one line; exit 1 when the audit cannot run, 2 for bad usage.
    Tracebacks only with --debug. Help pages and usage errors are in the reader's language."""
    debug = "--debug" in sys.argv
    # SIGTERM unwinds like Ctrl-C, so a run records how it ended and its Prefect server stops.
    signal.signal(signal.SIGTERM, _interrupt)
    language = cli_language(sys.argv[1:])
    command = typer.main.get_command(app)
    localise_help(command, language)
    try:
        code = command.main(standalone_mode=False)
    except ClickUsageError as exc:
        if isinstance(exc, NoArgsIsHelp):
            sys.exit(2)  # the help is printed already
        from opsaudit.i18n import text

        where = text("cli_help.error.see_help", language, command=exc.ctx.command_path) if exc.ctx is not None else ""
        message = " ".join(usage_message(exc, language).split())  # one line
        _fail(f"{message}{where}", 2, debug, language)
    except UsageError as exc:
        _fail(exc.text(language), 2, debug, language)
    except OpsauditError as exc:
        _fail(exc.text(language), 1, debug, language)
    except (KeyboardInterrupt, typer.Abort):
        from opsaudit.i18n import text

        typer.echo(f"opsaudit: {text('cli_help.error.interrupted', language)}", err=True)
        sys.exit(130)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except SystemExit as exc:
        # typer answers a closed pipe with a silent exit status 1 (typer/core.py); a reader that
        # stopped reading is no failure.
        if isinstance(exc.__context__, BrokenPipeError):
            _quiet_broken_pipe()
        raise
    except Exception as exc:  # a defect, not a user's mistake: still one line, the rest with --debug
        from opsaudit.i18n import text

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(text("cli_help.error.unexpected", language, kind=type(exc).__name__, detail=first), 1, debug, language)
    sys.exit(code if isinstance(code, int) else 0)


def _quiet_broken_pipe() -> None:
    """`opsaudit findings list | head -1`: the reader has what it wanted; exit 0 and say nothing,
    also when Python flushes what is left of stdout on the way out."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)


def _fail(message: str, code: int, debug: bool, language: str) -> None:
    """`opsaudit: 错误：…` / `opsaudit: error: …`: one line, in the reader's language."""
    from opsaudit.i18n import text

    if debug:
        traceback.print_exc()
    typer.echo(f"opsaudit: {text('cli_help.error.line', language, message=message)}", err=True)
    sys.exit(code)

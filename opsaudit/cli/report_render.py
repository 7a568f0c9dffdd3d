"""`opsaudit reports render RUN_ID [--lang]`: an audit run's report written again, in a language.

The lead registers `render` on the `reports` group (opsaudit/cli/reports.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from opsaudit.cli.app import LangOption, StoreOption, open_store, settings_for


def render(
    run_id: Annotated[str, typer.Argument(help="The audit run's id, or an unambiguous start of it.",
                                          show_default=False)],
    lang: LangOption = None,
    store: StoreOption = None,
) -> None:
    """Write an audit run's report (HTML, PDF, findings CSV) beside its results under OPSAUDIT_OUTPUT_DIR."""
    from opsaudit.i18n import resolve_language, text
    from opsaudit.reports.render import run_folder, write_report

    language = resolve_language(lang.value if lang else None)
    settings = settings_for(None, store)
    engine = open_store(settings)
    folder, full_id = run_folder(engine, settings, run_id)
    files = write_report(engine, settings, full_id, language, folder)
    typer.echo(text("report.cli.written", language))
    for path in (files.html, files.pdf, files.csv, files.json):
        typer.echo(f"  {path}")

"""`opsaudit qa`: customer-service quality review sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opsaudit.cli.app import DbOption, LangOption, app, settings_for

qa_app = typer.Typer(no_args_is_help=True, help="Customer-service quality review sheets.")
app.add_typer(qa_app, name="qa")

@qa_app.command("import")
def qa_import(
    file: Annotated[Path, typer.Argument(help="A filled review sheet (.csv or .xlsx), in either language.")],
    db: DbOption = None,
    lang: LangOption = None,
) -> None:
    """Import a filled QA review sheet into qa_reviews (all rows or none)."""
    from opsaudit.db import check_reachable, create_engine
    from opsaudit.errors import InputError
    from opsaudit.i18n import Message, resolve_language
    from opsaudit.qa_import import import_review_sheet
    from opsaudit.source import Source

    settings = settings_for(db)
    language = resolve_language(lang.value if lang else None)
    if not file.is_file():
        raise InputError(Message.of("error.file.not_found", path=str(file)))
    # The one writer of the operational database, on purpose: it adds rows to qa_reviews only.
    engine = create_engine(settings.database, create=False)
    check_reachable(engine, purpose="database")
    source = Source(engine, settings.load_config().source, zone=settings.timezone)
    summary = import_review_sheet(engine, file, source=source, language=language)
    typer.echo(summary.sentence(language))

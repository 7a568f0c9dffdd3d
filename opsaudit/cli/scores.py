"""`opsaudit scores`: the month's department and staff scores (seed 000 §7), for HR."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from typing import Annotated

import typer

from opsaudit.cli.app import DbOption, Format, StoreOption, app, console, open_store, settings_for, usage_text
from opsaudit.i18n import Language

SEVERITIES = ("general", "important", "major")
CSV_COLUMNS = ("entity_type", "entity_id", "name", "department_id", "score", *SEVERITIES, "overdue", "deducted",
               "deductions")


@app.command()
def scores(
    period: Annotated[str | None, typer.Option("--period", help="The month, e.g. 2026-10 (default: last month).",
                                               show_default=False)] = None,
    format: Annotated[Format, typer.Option("--format")] = Format.table,
    lang: Annotated[Language | None, typer.Option("--lang", help="Language of the table and CSV texts "
                                                  "(default OPSAUDIT_LANGUAGE).", show_default=False)] = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """The month's scores per department and per responsible staff member: start at 100, minus
    points per problem found and per overdue rectification (config/thresholds.yaml `scoring`)."""
    from opsaudit import periods
    from opsaudit.i18n import resolve_language
    from opsaudit.scores import month, scores_for
    from opsaudit.store.roles import load_directory

    settings = settings_for(db, store)
    language = resolve_language(lang.value if lang else None)
    now = datetime.now(settings.tz)
    span = month(period) if period is not None else periods.previous("month", now.replace(tzinfo=None))
    if span.start > now.replace(tzinfo=None):
        raise typer.BadParameter(usage_text("not_begun", period=span.label), param_hint="--period")
    config = settings.load_config()
    directory = load_directory(settings, config)
    with open_store(settings).connect() as conn:
        results = scores_for(conn, span, scoring=config.thresholds.scoring, zone=settings.tz, now=now,
                             directory=directory, language=language)
    if format is Format.json:
        typer.echo(json.dumps([score.as_json(settings.tz) for score in results], ensure_ascii=False, indent=2))
        return
    rows = [_row(score, directory, language) for score in results]
    if format is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        _print_table(rows, span.label, language)


def _row(score, directory, language: str) -> dict[str, object]:
    from opsaudit.i18n import text
    from opsaudit.scores import describe

    if score.entity_type == "staff":
        person = directory.people.get(score.entity_id)
        name = person.name if person else ""
        # A person's department, as a manager reads it: 客服一部（CS1）.
        department = directory.department_label(score.department_id, language) if score.department_id else ""
    else:
        known = directory.departments.get(score.entity_id)
        name = (known.name or "") if known else ""
        # A department's own place in the company: the department it belongs to.
        parent = known.parent_id if known else None
        department = directory.department_label(parent, language) if parent else ""
    return {"entity_type": score.entity_type, "entity_id": score.entity_id, "name": name,
            "department_id": score.department_id or "", "department": department, "score": score.score,
            **{severity: score.count("problem", severity) for severity in SEVERITIES},
            "overdue": score.count("overdue"), "deducted": sum(d.points for d in score.deductions),
            "deductions": text("format.list_separator", language).join(describe(d, language)
                                                                        for d in score.deductions)}


def _print_table(rows: list[dict[str, object]], period: str, language: str) -> None:
    """The departments, then the people, each a table that fits 80 columns: the id never cut,
    the names wrapped, the figures under short headings."""
    from opsaudit.i18n import text

    out = console()
    for entity_type in ("department", "staff"):
        shown = [row for row in rows if row["entity_type"] == entity_type]
        if shown:
            out.print(text(f"scores.heading.{entity_type}", language), style="bold", highlight=False)
            out.print(_score_table(shown, language))
            out.print()
    # A sentence: wrapped between words to the terminal, as the tables are.
    out.print(text("scores.summary", language, period=period,
                   departments=sum(row["entity_type"] == "department" for row in rows),
                   staff=sum(row["entity_type"] == "staff" for row in rows)), highlight=False, markup=False)


def _score_table(rows: list[dict[str, object]], language: str):
    from rich.table import Table

    from opsaudit.i18n import format_value, text

    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    table.add_column(text("scores.column.entity_id", language), no_wrap=True)
    for name in ("name", "department"):
        table.add_column(text(f"scores.column.{name}", language), overflow="fold", ratio=1)
    for name in ("score", *SEVERITIES, "overdue", "deducted"):
        table.add_column(text(f"scores.short.{name}", language), justify="right", no_wrap=True)
    for row in rows:
        figures = (row[name] for name in ("score", *SEVERITIES, "overdue", "deducted"))
        table.add_row(str(row["entity_id"]), str(row["name"]), str(row["department"]),
                      *(format_value(value, "count", language) for value in figures))
    return table

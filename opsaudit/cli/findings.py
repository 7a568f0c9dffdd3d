"""`opsaudit findings list` and `show`: findings as a manager reads them, in their language.

The list fits an 80-column terminal without cutting the id, filters and sorts in the database,
and exports JSON, CSV (with a BOM, for Excel on Chinese Windows) and a styled XLSX workbook.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsaudit.cli.app import DbOption, LangOption, StoreOption, app, console, open_store, settings_for, usage_text
from opsaudit.i18n.findings import labelled

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

findings_app = typer.Typer(no_args_is_help=True, help="List, inspect and act on findings.")
app.add_typer(findings_app, name="findings")

TABLE_LIMIT = 100  # a terminal list beyond this is not read; filters and --limit say what to show


class ListFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


class ShowFormat(StrEnum):
    text = "text"
    json = "json"


class Sort(StrEnum):
    severity = "severity"
    due = "due"
    found = "found"
    period = "period"
    department = "department"
    owner = "owner"
    rule = "rule"


SEVERITY_HELP = "major, important or general (or 重大问题, 重要问题, 一般问题)."
STATUS_HELP = ("open, plan_submitted, plan_approved, in_progress, submitted, verified, closed or withdrawn "
               "(or their Chinese names, e.g. 待整改).")
AREA_HELP = "customer_service, execution, planning, data_analysis or data_quality (or 客户服务 ...)."
AUDIT_HELP = ("cs-weekly, cs-monthly, execution-monthly, planning-quarterly, data-quarterly, special, spot-check "
              "or manual.")
# The CSV's columns: the finding's own, flattened (sample ids joined, no evidence blob), plus names.
CSV_KEYS = ("id", "audit", "audit_run_id", "area", "rule_id", "period", "entity_type", "entity_id",
            "department_id", "department_name", "severity", "status", "title", "description", "observed", "target",
            "population", "failures", "found_at", "due_at", "plan_due_at", "owner_id", "owner_name", "recurring",
            "sample_ids", "query")


@dataclass
class Names:
    """People's and departments' names from the operational database, when it can be read."""

    staff: dict[str, str] = field(default_factory=dict)
    departments: dict[str, str] = field(default_factory=dict)

def load_names(settings) -> Names:
    """Names for the ids a finding holds. The store may be read where the operational database is
    not reachable: then the ids stand alone."""
    import sqlalchemy as sa

    from opsaudit.db import source_engine
    from opsaudit.errors import OpsauditError
    from opsaudit.source import Source

    try:
        source = Source(source_engine(settings.database, timezone=settings.timezone), settings.load_config().source)
    except OpsauditError:
        return Names()
    s, d = source.table("staff"), source.table("departments")
    try:
        with source.engine.connect() as conn:
            staff = {row.staff_id: row.name for row in conn.execute(sa.select(s.c.staff_id, s.c.name))}
            departments = {row.department_id: row.name
                           for row in conn.execute(sa.select(d.c.department_id, d.c.name))}
    except sa.exc.SQLAlchemyError:
        return Names()
    finally:
        source.engine.dispose()
    return Names(staff, departments)


def _code(option: str, value: str | None, codes: tuple[str, ...], enum: str) -> str | None:
    """`value` as its code: the code itself, or its name in either language (重大问题, 重大, major)."""
    from opsaudit.store.finding_views import code_of

    if value is None:
        return None
    code = code_of(value, codes, enum)
    if code is None:
        raise typer.BadParameter(usage_text("one_of", value=value, choices=list(codes)), param_hint=option)
    return code


def _rule(value: str | None) -> str | None:
    """A rule id of the catalogue or `manual`, or a prefix ending with a dot (`cs.`)."""
    from opsaudit.i18n import rule_ids
    from opsaudit.store.findings import MANUAL

    if value is None:
        return None
    known = (*rule_ids(), MANUAL)
    if value in known or (value.endswith(".") and any(rule.startswith(value) for rule in known)):
        return value
    raise typer.BadParameter(usage_text("not_a_rule", value=value), param_hint="--rule")


def _period(value: str | None) -> str | None:
    from opsaudit.periods import parse_period

    if value is None:
        return None
    try:
        return parse_period(value).label
    except ValueError:
        raise typer.BadParameter(usage_text("not_a_period", value=value), param_hint="--period") from None


def _known(value: str | None, option: str, known: dict[str, str | None], language: str) -> str | None:
    """`value` as one of the `known` ids (id -> name): the id in any case, or the name when only
    one has it; a usage error otherwise."""
    if value is None:
        return None
    wanted = value.strip().casefold()
    for matches in ([key for key in known if key == value], [key for key in known if key.casefold() == wanted],
                    [key for key, name in known.items() if name and name.casefold() == wanted]):
        if len(matches) == 1:
            return matches[0]
    if option == "--department":
        from opsaudit.i18n import format_value

        shown = format_value([labelled(name, key, language) for key, name in sorted(known.items())], "list", language)
        raise typer.BadParameter(usage_text("unknown_department", value=value, known=shown), param_hint=option)
    raise typer.BadParameter(usage_text("unknown_owner", value=value), param_hint=option)


def _stored(conn, column) -> dict[str, str | None]:
    """The ids a column of the findings holds, for when the operational database names none."""
    import sqlalchemy as sa

    return dict.fromkeys(conn.execute(sa.select(column).where(column.is_not(None)).distinct()).scalars())


@findings_app.command("list")
def findings_list(
    status: Annotated[str | None, typer.Option("--status", help=STATUS_HELP, show_default=False)] = None,
    severity: Annotated[str | None, typer.Option("--severity", help=SEVERITY_HELP, show_default=False)] = None,
    area: Annotated[str | None, typer.Option("--area", help=AREA_HELP, show_default=False)] = None,
    audit: Annotated[str | None, typer.Option("--audit", help=AUDIT_HELP, show_default=False)] = None,
    audit_run: Annotated[str | None, typer.Option("--audit-run", help="An audit run id, or its first characters.",
                                                  show_default=False)] = None,
    department: Annotated[str | None, typer.Option("--department", help="A department_id.",
                                                   show_default=False)] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="The owner's staff_id.", show_default=False)] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="A rule id, or a prefix such as cs.",
                                             show_default=False)] = None,
    period: Annotated[str | None, typer.Option("--period", help="e.g. 2026-10, 2026Q3, 2026-W46.",
                                               show_default=False)] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only findings past their deadline and not closed.")]
    = False,
    recurring: Annotated[bool, typer.Option("--recurring", help="Only recurring findings.")] = False,
    sort: Annotated[Sort, typer.Option("--sort", help="Order of the list; ties go to the most severe.")]
    = Sort.severity,
    limit: Annotated[int | None, typer.Option("--limit", min=0, show_default=False,
                                              help=f"At most this many (0: all). A table shows {TABLE_LIMIT} "
                                                   "unless told.")] = None,
    format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
    output: Annotated[Path | None, typer.Option("--output", help="Where --format xlsx writes the workbook.",
                                                show_default=False)] = None,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """List findings, most severe first."""
    from opsaudit.i18n import resolve_language
    from opsaudit.store.finding_views import (
        SEVERITIES,
        STATUSES,
        FindingFilter,
        count_findings,
        list_findings,
        resolve_run,
    )
    from opsaudit.store.schema import findings

    settings = settings_for(db, store)
    language = resolve_language(lang.value if lang else None)
    where = FindingFilter(
        status=_code("--status", status, STATUSES, "finding_status"),
        severity=_code("--severity", severity, SEVERITIES, "severity"),
        area=_code("--area", area, ("customer_service", "execution", "planning", "data_analysis", "data_quality"),
                   "area"),
        audit=_code("--audit", audit, ("cs-weekly", "cs-monthly", "execution-monthly", "planning-quarterly",
                                       "data-quarterly", "special", "spot-check", "manual"), "audit"),
        rule=_rule(rule), period=_period(period),
        overdue_at=datetime.now(settings.tz) if overdue else None, recurring=recurring)
    if audit_run is not None and not audit_run.strip():
        raise typer.BadParameter(usage_text("empty"), param_hint="--audit-run")
    _check_output(output)
    shown = limit if limit is not None else (TABLE_LIMIT if format is ListFormat.table else 0)
    names = load_names(settings)
    with open_store(settings).connect() as conn:
        where = FindingFilter(**{
            **where.__dict__,
            "department": _known(department, "--department", {**_stored(conn, findings.c.department_id),
                                                                **names.departments}, language),
            "owner": _known(owner, "--owner", {**_stored(conn, findings.c.owner_id), **names.staff}, language),
            "audit_run": resolve_run(conn, audit_run.strip()) if audit_run else None})
        rows = list_findings(conn, where, sort=sort.value, limit=shown or None)
        total = count_findings(conn, where) if shown and len(rows) == shown else len(rows)
    if format is ListFormat.json:
        _print_json(rows, settings.tz, language, output)
    elif format is ListFormat.csv and output is None:
        write_csv(rows, settings.tz, language, names)
    elif format is ListFormat.csv:
        with output.open("w", encoding="utf-8", newline="") as out:
            write_csv(rows, settings.tz, language, names, out)
        _exported(len(rows), output, language)
    elif format is ListFormat.xlsx:
        _write_xlsx(rows, settings, language, names, output)
    else:
        _print_table(rows, total, settings.tz, language, names)


def _check_output(output: Path | None) -> None:
    """--output goes into a folder that is there: a mistyped folder is a usage error, never a tree
    of new folders."""
    if output is not None and not output.parent.is_dir():
        raise typer.BadParameter(usage_text("no_folder", folder=str(output.parent)), param_hint="--output")


def _print_json(rows, zone, language: str, output: Path | None) -> None:
    from opsaudit.store.finding_views import finding_json

    data = json.dumps([finding_json(row, zone, language) for row in rows], ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(data)
        return
    output.write_text(data + "\n", encoding="utf-8")
    _exported(len(rows), output, language)


def _exported(count: int, path: Path, language: str) -> None:
    from opsaudit.i18n import text

    typer.echo(text("cli.findings.exported", language, count=count, path=str(path)))


def readable(row, zone, language: str, names: Names) -> dict[str, Any]:
    """A finding's fields as a person reads them, beside the interface's JSON."""
    from opsaudit.i18n import text
    from opsaudit.store.finding_views import finding_json, instant

    data = finding_json(row, zone, language)
    facts = row["facts"] or {}
    evidence = data["evidence"] or {}
    return {**data,
            "department_name": names.departments.get(row["department_id"] or "") or facts.get("department_name"),
            "owner_name": names.staff.get(row["owner_id"] or ""),
            "severity_label": text(f"enum.severity.{row['severity']}", language),
            "status_label": text(f"enum.finding_status.{row['status']}", language),
            "plan_due_at": instant(row["plan_due_at"], zone),
            "failures": facts.get("failures", (evidence.get("counts") or {}).get("records")),
            "sample_ids": evidence.get("sample_ids") or [],
            "query": evidence.get("query")}


def write_csv(rows, zone, language: str, names: Names, out=None) -> None:
    """The findings as CSV for Excel, to `out` (default standard output); the web's download too."""
    # A BOM: Excel on Chinese Windows reads UTF-8 only with one.
    out = out or sys.stdout
    out.write("\ufeff")
    writer = csv.DictWriter(out, fieldnames=CSV_KEYS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        values = readable(row, zone, language, names)
        writer.writerow({**values, "sample_ids": " ".join(values["sample_ids"])})


def _write_xlsx(rows, settings, language: str, names: Names, output: Path | None) -> None:
    from opsaudit.reports.findings_workbook import write_findings_workbook

    path = output or settings.output_dir / f"findings-{datetime.now(settings.tz):%Y%m%d-%H%M%S}.xlsx"
    write_findings_workbook(path, [readable(row, settings.tz, language, names) for row in rows], language)
    _exported(len(rows), path, language)


SEVERITY_STYLE = {"major": "bold red", "important": "yellow", "general": ""}


def _print_table(rows, total: int, zone, language: str, names: Names) -> None:
    """Two columns: the full id, never cut; beside it what a manager needs, wrapped to the terminal."""
    from rich.markup import escape
    from rich.table import Table

    from opsaudit.i18n import text

    if not rows:
        typer.echo(text("cli.findings.none", language))
        return
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 1, 0))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    now = datetime.now(zone)
    for row in rows:
        values = readable(row, zone, language, names)
        table.add_row(row["id"], "\n".join(escape(line) for line in _lines(values, now, language)),
                      style=SEVERITY_STYLE[row["severity"]] or None)
    console().print(table)
    key = "cli.findings.shown" if total > len(rows) else "cli.findings.total"
    typer.echo(text(key, language, shown=len(rows), total=total))


def _lines(values: dict[str, Any], now: datetime, language: str) -> list[str]:
    from opsaudit.i18n import format_value, text
    from opsaudit.store.findings import ENDED

    separator = " · "
    due = datetime.fromisoformat(values["due_at"])
    status = [values["severity_label"], values["status_label"], format_value(values["period"], "period", language),
              text("cli.findings.due", language, due=values["due_at"])]
    if values["plan_due_at"] and values["status"] == "open":
        status.append(text("cli.findings.plan_due", language, due=values["plan_due_at"]))
    if due < now and values["status"] not in ENDED:
        status.append(text("cli.findings.overdue", language))
    if values["recurring"]:
        status.append(text("field.recurring", language))
    owner = text("cli.findings.owner", language, owner=labelled(values["owner_name"], values["owner_id"], language)) \
        if values["owner_id"] else text("cli.findings.no_owner", language)
    department = labelled(values["department_name"], values["department_id"], language)
    where = [part for part in (department, owner, values["rule_id"]) if part]
    return [separator.join(status), values["title"], separator.join(where)]


@findings_app.command("show")
def findings_show(
    finding_id: Annotated[str, typer.Argument(metavar="ID", help="A finding id (or an unambiguous prefix).")],
    format: Annotated[ShowFormat, typer.Option("--format")] = ShowFormat.text,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """One finding as a manager reads it: what went wrong, how bad, who owns it by when, the
    evidence an auditor can rerun, and its history."""
    from opsaudit.i18n import resolve_language
    from opsaudit.store.finding_views import events_of, get_finding, last_cause

    if not finding_id.strip():
        raise typer.BadParameter(usage_text("empty"), param_hint="ID")
    settings = settings_for(db, store)
    language = resolve_language(lang.value if lang else None)
    with open_store(settings).connect() as conn:
        row = get_finding(conn, finding_id.strip())
        if format is ShowFormat.json:
            shown = show_json(conn, row, settings, language, load_names(settings))
            typer.echo(json.dumps(shown, ensure_ascii=False, indent=2, default=str))
            return
        events = events_of(conn, row["id"], settings.tz)
        previous = last_cause(conn, row, settings.tz)
    names = load_names(settings)
    values = readable(row, settings.tz, language, names)
    from opsaudit.cli.finding_text import print_finding

    print_finding(values, row, events, _handling(row, settings, language), language, names.staff, previous)


def show_json(conn: Connection, row, settings, language: str, names: Names) -> dict[str, Any]:
    """`findings show --format json` and the web's /api/findings/<id>, both read here so that they
    cannot differ: the finding as a person reads it, what its severity requires, the root cause
    recorded the last time it was found (finding_views.last_cause; null unless it recurs), and its
    events with the door each came through and what each recorded (finding_views.event_json)."""
    from opsaudit.store.finding_views import event_json, events_of, last_cause

    values = readable(row, settings.tz, language, names)
    values["handling"] = _handling(row, settings, language)
    values["previous_cause"] = last_cause(conn, row, settings.tz)
    values["events"] = [event_json(event) for event in events_of(conn, row["id"], settings.tz)]
    return values


def _handling(row, settings, language: str) -> str:
    """What the finding's severity requires (audit-rules §3), with the configured deadlines."""
    from opsaudit.i18n import text

    deadlines = settings.load_config().thresholds.deadlines
    days = {"general": deadlines.general, "important": deadlines.important, "major": deadlines.major}
    return text(f"handling.{row['severity']}", language, deadline=days[row["severity"]],
                plan_deadline=deadlines.major_plan)

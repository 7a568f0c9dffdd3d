"""`opsaudit findings`: list and inspect findings."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Any

import typer

from opsaudit.cli.app import DbOption, Format, StoreOption, app, console, open_store, settings_for

findings_app = typer.Typer(no_args_is_help=True, help="List and inspect findings.")
app.add_typer(findings_app, name="findings")


@findings_app.command("list")
def findings_list(
    status: Annotated[str | None, typer.Option("--status", show_default=False)] = None,
    severity: Annotated[str | None, typer.Option("--severity", show_default=False)] = None,
    area: Annotated[str | None, typer.Option("--area", show_default=False)] = None,
    audit_run: Annotated[str | None, typer.Option("--audit-run", show_default=False)] = None,
    format: Annotated[Format, typer.Option("--format")] = Format.table,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """List findings."""
    from opsaudit.store.finding_views import FINDING_KEYS, finding_json, list_findings

    settings = settings_for(db, store)
    with open_store(settings).connect() as conn:
        rows = [finding_json(row, settings.tz) for row in
                list_findings(conn, status=status, severity=severity, area=area, audit_run=audit_run)]
    if format is Format.json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif format is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=FINDING_KEYS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "evidence": json.dumps(row["evidence"], ensure_ascii=False)})
    else:
        _print_findings_table(rows)


def _print_findings_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("id", "severity", "status", "rule", "entity", "period", "owner", "due", "title")
    for row in rows:
        table.add_row(row["id"][:8], row["severity"] + (" (recurring)" if row["recurring"] else ""), row["status"],
                      row["rule_id"], f"{row['entity_type']} {row['entity_id']}", row["period"],
                      row["owner_id"] or "", (row["due_at"] or "")[:10], row["title"])
    console().print(table)
    typer.echo(f"{len(rows)} findings")


@findings_app.command("show")
def findings_show(
    finding_id: Annotated[str, typer.Argument(metavar="ID", help="A finding id (or an unambiguous prefix).")],
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """One finding with its evidence and its event history."""
    from opsaudit.store.finding_views import events_of, finding_json, get_finding

    settings = settings_for(db, store)
    with open_store(settings).connect() as conn:
        finding = finding_json(get_finding(conn, finding_id), settings.tz)
        events = events_of(conn, finding["id"], settings.tz)
    evidence = finding.pop("evidence")
    for key, value in finding.items():
        typer.echo(f"{key:>14}: {value}")
    typer.echo("\nevidence:")
    typer.echo(json.dumps({k: v for k, v in evidence.items() if k != "text"}, ensure_ascii=False, indent=2,
                          default=str))
    typer.echo("\nhistory:")
    for event in events:
        change = f" {event['from_status'] or ''}→{event['to_status']}" if event["to_status"] else ""
        note = f" — {event['note']}" if event["note"] else ""
        typer.echo(f"  {event['at']}  {event['actor']}  {event['action']}{change}{note}")


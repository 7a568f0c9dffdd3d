"""`opsaudit findings ACTION ID --actor STAFF_ID`: a finding through its rectification lifecycle,
a major finding's special meeting and task force, and `opsaudit run rectification-tracking`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from opsaudit.cli.app import DbOption, StoreOption, delivery_line, open_store, settings_for, usage_text
from opsaudit.cli.findings import findings_app
from opsaudit.i18n import Language

if TYPE_CHECKING:
    from opsaudit.reports.recipients import Directory
    from opsaudit.settings import Settings

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="A finding id (or an unambiguous prefix).")]
ActorOption = Annotated[str, typer.Option("--actor", help="staff_id of the person taking the action.",
                                          show_default=False)]
NoteOption = Annotated[str | None, typer.Option("--note", help="What to record with the action.",
                                                show_default=False)]
EvidenceOption = Annotated[str | None, typer.Option("--evidence", metavar="PATH_OR_URL",
                                                    help="A file or a URL showing the work.", show_default=False)]
ToOption = Annotated[str | None, typer.Option("--to", metavar="STAFF_ID", help="The new owner (assign).",
                                              show_default=False)]
LangOption = Annotated[Language | None, typer.Option(
    "--lang", help="Language of the messages (default OPSAUDIT_LANGUAGE).", show_default=False)]

HELP = {
    "assign": "Give the finding a new owner (--to): the operations manager or the department's head.",
    "submit-plan": "Submit the rectification plan: the owner or the department's head.",
    "approve-plan": "Approve the rectification plan: the operations manager or a deputy.",
    "reject-plan": "Send the plan back with --note: the operations manager or a deputy.",
    "start": "Start the rectification (a general problem may start at once): the owner or the department's head.",
    "submit": "Submit the rectification with --evidence: the owner or the department's head.",
    "reject": "Return the rectification with --note: an auditor of the operations department.",
    "verify": "Verify the rectification: an auditor of the operations department.",
    "close": "Close the verified finding: an auditor of the operations department.",
    "reopen": "Reopen a closed finding with --note: an auditor or the operations manager.",
}


def _act(action: str, finding_id: str, actor: str, note: str | None, evidence: str | None, to: str | None,
         lang: Language | None, db: str | None, store: str | None) -> None:
    from opsaudit.i18n import text
    from opsaudit.store import lifecycle

    request = lifecycle.Request(action, actor, note=note, evidence=evidence, to=to, channel="cli",
                                os_user=os_user())
    lifecycle.check_inputs(lifecycle.ACTIONS[action], request)
    settings, language, directory = _setup(lang, db, store)
    with open_store(settings).begin() as conn:
        done = lifecycle.perform(conn, finding_id, request, directory, now=datetime.now(settings.tz),
                                 language=language)
    who = directory.person_label(actor, language)
    if done.action == "assign":
        typer.echo(text("rectification.done.assigned", language, id=done.finding_id[:8], actor=who,
                        previous=directory.person_label(done.previous_owner_id, language),
                        owner=directory.person_label(done.owner_id, language)))
    else:
        typer.echo(text("rectification.done.moved", language, id=done.finding_id[:8], action=done.action, actor=who,
                        from_status=done.from_status, to_status=done.to_status))


def _command(action: str) -> Callable[..., None]:
    def command(finding_id: IdArgument, actor: ActorOption, note: NoteOption = None, evidence: EvidenceOption = None,
                to: ToOption = None, lang: LangOption = None, db: DbOption = None, store: StoreOption = None) -> None:
        _act(action, finding_id, actor, note, evidence, to, lang, db, store)

    command.__doc__ = HELP[action]
    return command


for _action in HELP:
    findings_app.command(_action)(_command(_action))


@findings_app.command("special-meeting")
def special_meeting(
    finding_id: IdArgument,
    actor: ActorOption,
    held_on: Annotated[datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="The day it was held.",
                                              show_default=False)],
    note: NoteOption = None,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Record a major finding's special meeting: the operations manager or a deputy."""
    from opsaudit.i18n import text
    from opsaudit.store import lifecycle

    settings, language, directory = _setup(lang, db, store)
    with open_store(settings).begin() as conn:
        handling = lifecycle.record_special_meeting(conn, finding_id, actor=actor, held_on=held_on.date(), note=note,
                                                    directory=directory, now=datetime.now(settings.tz),
                                                    language=language, door=("cli", os_user()))
    typer.echo(text("rectification.done.meeting", language, id=handling.finding_id[:8], held_on=handling.meeting_on,
                    actor=directory.person_label(actor, language)))


@findings_app.command("task-force")
def task_force(
    finding_id: IdArgument,
    actor: ActorOption,
    lead: Annotated[str, typer.Option("--lead", metavar="STAFF_ID", help="Who leads it.", show_default=False)],
    members: Annotated[list[str] | None, typer.Option("--member", metavar="STAFF_ID",
                                                      help="A member (repeat the option).")] = None,
    note: NoteOption = None,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Record a major finding's rectification task force: the operations manager or a deputy."""
    from opsaudit.i18n import text
    from opsaudit.store import lifecycle

    settings, language, directory = _setup(lang, db, store)
    with open_store(settings).begin() as conn:
        handling = lifecycle.record_task_force(conn, finding_id, actor=actor, lead=lead, members=tuple(members or ()),
                                               note=note, directory=directory, now=datetime.now(settings.tz),
                                               language=language, door=("cli", os_user()))
    typer.echo(text("rectification.done.task_force", language, id=handling.finding_id[:8],
                    actor=directory.person_label(actor, language),
                    lead=directory.person_label(handling.task_force_lead, language),
                    members=[directory.person_label(member, language) for member in handling.task_force_members]))


def os_user() -> str | None:
    """Who runs this command on the machine, recorded beside the --actor they name."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return None


def _setup(lang: Language | None, db: str | None, store: str | None) -> tuple[Settings, str, Directory]:
    """Settings, the language of the messages, and who is who."""
    from opsaudit.i18n import resolve_language
    from opsaudit.store.roles import load_directory

    settings = settings_for(db, store)
    language = resolve_language(lang.value if lang else None)
    return settings, language, load_directory(settings, settings.load_config())



def run_tracking(settings: Settings, period: str | None, now: datetime | None, language: str) -> None:
    """`opsaudit run rectification-tracking [--now TS]`: the daily flow, once, through Prefect."""
    from opsaudit.i18n import text
    from opsaudit.tracking import prepare_run

    if period is not None:
        raise typer.BadParameter(usage_text("tracking_takes_no_period", audit="rectification-tracking"),
                                 param_hint="--period")
    prepare_run(settings, now)  # one clear line for a bad store or directory, before Prefect starts
    from opsaudit.flows.rectification import rectification_tracking
    from opsaudit.flows.server import prefect_api

    with prefect_api():
        result = rectification_tracking(now=now)
    typer.echo(text("cli.tracking.done", language, now=result["now"], reminded=result["reminded"],
                    escalated=result["escalated"]))
    week = result["progress_report"]
    typer.echo(text("cli.tracking.report", language, week=week) if week else text("cli.tracking.no_report", language))
    mail = result["mail"]
    typer.echo(delivery_line(language, attempted=mail["attempted"], sent=len(mail["sent"]),
                             waiting=len(mail["waiting"]) + len(mail["failed"])))

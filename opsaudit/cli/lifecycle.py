"""`opsaudit findings ACTION ID --actor STAFF_ID`: a finding through its rectification lifecycle,
the audit team lead's regrade and withdrawal, a problem an auditor records by hand (`findings add`),
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
SEVERITY_HELP = "major, important or general (or 重大问题, 重要问题, 一般问题)."
CauseOption = Annotated[str | None, typer.Option("--cause", help="The root cause (an important or major finding).",
                                                 show_default=False)]
PreventionOption = Annotated[str | None, typer.Option(
    "--prevention", help="What keeps it from coming back (an important or major finding).", show_default=False)]

HELP = {
    "assign": "Give the finding a new owner (--to): the operations manager or the department's head.",
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
         lang: Language | None, db: str | None, store: str | None, **judged: str | None) -> None:
    """One action; `judged`: the severity of a regrade, the cause and prevention of a plan."""
    from opsaudit.i18n import text
    from opsaudit.manual import alert_if_major
    from opsaudit.reports.plan_mail import Mailing
    from opsaudit.reports.recipients import not_told
    from opsaudit.store import lifecycle

    request = lifecycle.Request(action, actor, note=note, evidence=evidence, to=to, channel="cli",
                                os_user=os_user(), **judged)
    lifecycle.check_inputs(lifecycle.ACTIONS[action], request)
    settings, language, directory = _setup(lang, db, store)
    config = settings.load_config()
    now = datetime.now(settings.tz)
    engine = open_store(settings)
    with engine.begin() as conn:
        done = lifecycle.perform(conn, finding_id, request, directory, now=now, language=language,
                                 deadlines=config.thresholds.deadlines, mailing=Mailing(settings, config.recipients))
        alerted = alert_if_major(conn, done.finding_id, directory, settings, config, now=now) \
            if action == "regrade" else None
    who = directory.person_label(actor, language)
    if action == "regrade":
        change = done.recorded
        typer.echo(text("judgment.done.regraded", language, id=done.finding_id[:8], old=change["severity"]["from"],
                        new=change["severity"]["to"], due=change["due_at"]["to"].astimezone(settings.tz),
                        actor=who))
    elif done.action == "assign":
        typer.echo(text("rectification.done.assigned", language, id=done.finding_id[:8], actor=who,
                        previous=directory.person_label(done.previous_owner_id, language),
                        owner=directory.person_label(done.owner_id, language)))
    else:
        typer.echo(text("rectification.done.moved", language, id=done.finding_id[:8], action=done.action, actor=who,
                        from_status=done.from_status, to_status=done.to_status))
    for note in done.mailed.notes:  # who the plan's mail could not reach, for whoever keeps the staff table
        typer.echo(f"opsaudit: {not_told(note, language)}", err=True)
    if (alerted and alerted.messages) or done.mailed.messages:
        _deliver(engine, settings, language)


def _deliver(engine, settings: Settings, language: str) -> None:
    """Send the alert or the plan's mail now, as an audit does; without a mail server, or when the
    server fails, it waits in the outbox (`opsaudit outbox retry`)."""
    from opsaudit.reports.delivery import deliver_pending

    report = deliver_pending(engine, settings)
    typer.echo(delivery_line(language, attempted=report.attempted, sent=len(report.sent),
                             waiting=len(report.waiting) + len(report.failed)))


def _command(action: str) -> Callable[..., None]:
    def command(finding_id: IdArgument, actor: ActorOption, note: NoteOption = None, evidence: EvidenceOption = None,
                to: ToOption = None, lang: LangOption = None, db: DbOption = None, store: StoreOption = None) -> None:
        _act(action, finding_id, actor, note, evidence, to, lang, db, store)

    command.__doc__ = HELP[action]
    return command


for _action in HELP:
    findings_app.command(_action)(_command(_action))


@findings_app.command("submit-plan")
def submit_plan(finding_id: IdArgument, actor: ActorOption, note: NoteOption = None, evidence: EvidenceOption = None,
                cause: CauseOption = None, prevention: PreventionOption = None, lang: LangOption = None,
                db: DbOption = None, store: StoreOption = None) -> None:
    """Submit the rectification plan, with its root cause and prevention for an important or major
    finding: the owner or the department's head."""
    _act("submit-plan", finding_id, actor, note, evidence, None, lang, db, store, cause=cause, prevention=prevention)


@findings_app.command("regrade")
def regrade(finding_id: IdArgument, actor: ActorOption,
            severity: Annotated[str | None, typer.Option("--severity", help=SEVERITY_HELP, show_default=False)] = None,
            note: NoteOption = None, evidence: EvidenceOption = None, lang: LangOption = None, db: DbOption = None,
            store: StoreOption = None) -> None:
    """Give a finding not closed another severity by its real impact, with --note: the audit team lead."""
    _act("regrade", finding_id, actor, note, evidence, None, lang, db, store, severity=severity)


@findings_app.command("withdraw")
def withdraw(finding_id: IdArgument, actor: ActorOption, note: NoteOption = None, evidence: EvidenceOption = None,
             lang: LangOption = None, db: DbOption = None, store: StoreOption = None) -> None:
    """Withdraw a finding raised wrongly, with --note: the audit team lead."""
    _act("withdraw", finding_id, actor, note, evidence, None, lang, db, store)


@findings_app.command("add")
def add(
    actor: ActorOption,
    area: Annotated[str, typer.Option("--area", help="customer_service, execution, planning or data_analysis.",
                                      show_default=False)],
    department: Annotated[str, typer.Option("--department", help="The responsible department's id.",
                                            show_default=False)],
    severity: Annotated[str, typer.Option("--severity", help=SEVERITY_HELP, show_default=False)],
    title: Annotated[str, typer.Option("--title", help="The problem in a few words.", show_default=False)],
    description: Annotated[str, typer.Option("--description", help="What was found, where and how.",
                                             show_default=False)],
    entity_type: Annotated[str | None, typer.Option("--entity-type", help="What it is about (default: department).",
                                                    show_default=False)] = None,
    entity_id: Annotated[str | None, typer.Option("--entity-id", help="Its id (default: the department's).",
                                                  show_default=False)] = None,
    evidence: Annotated[list[str] | None, typer.Option("--evidence", metavar="PATH_OR_URL",
                                                       help="A file or a URL (repeat the option).")] = None,
    lang: LangOption = None,
    db: DbOption = None,
    store: StoreOption = None,
) -> None:
    """Record a problem found on site, in an interview or in documents: an auditor of the
    operations department."""
    from opsaudit.i18n import text
    from opsaudit.manual import ManualFinding, add_manual_finding
    from opsaudit.store.finding_views import get_finding
    from opsaudit.store.times import from_db

    request = ManualFinding(actor, area, department, severity, title, description, entity_type, entity_id,
                            tuple(evidence or ()), channel="cli", os_user=os_user())
    settings, language, directory = _setup(lang, db, store)
    config = settings.load_config()
    engine = open_store(settings)
    with engine.begin() as conn:
        finding_id, alerted = add_manual_finding(conn, request, directory, settings, config,
                                                 now=datetime.now(settings.tz), language=language)
        row = get_finding(conn, finding_id)
    typer.echo(text("judgment.done.added", language, id=finding_id, severity=row["severity"],
                    owner=directory.person_label(row["owner_id"], language) or text("alert.unassigned", language),
                    due=from_db(row["due_at"], settings.tz)))
    if alerted.messages:
        _deliver(engine, settings, language)


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

"""The mail of a rectification plan's steps (interface.md, "The web": every mail that asks someone
to act links to the page where they act): a plan submitted asks those who may approve it to approve
or reject it; a plan rejected asks those who may submit it (the owner and the head of the finding's
department) to write it again, with the rejection note.

The lifecycle says who is asked (the roles of the action the mail asks for, `store.lifecycle.ASKS`);
this module writes one mail per person, in the language config/recipients.yaml gives them, else
OPSAUDIT_LANGUAGE, into the outbox in the caller's transaction. The key is the step's event, so a
refused step queues nothing and a step is never mailed twice, while a plan submitted again after
its rejection is mailed anew. Whoever cannot be told (no e-mail address) is a note, as for alerts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, RowMapping

from opsaudit.config.models import Recipients
from opsaudit.i18n.render import Message
from opsaudit.reports import outbox
from opsaudit.reports.outbox import OutgoingMail
from opsaudit.reports.recipients import Directory, Recipient, RecipientList, note, resolve
from opsaudit.reports.rectification import Body, Writer
from opsaudit.settings import Settings, load_settings
from opsaudit.store.roles import Role, holders
from opsaudit.store.times import from_db
from opsaudit.web.links import finding_url

KEY = "plan:"
# The steps that mail, and the words of their mail (plan_mail.<kind> in the catalogue).
KINDS: Mapping[str, str] = {"submit-plan": "submitted", "reject-plan": "rejected"}


@dataclass(frozen=True)
class Mailing:
    """What a plan's mail needs beyond the finding: the settings (OPSAUDIT_WEB_URL starts the link,
    OPSAUDIT_LANGUAGE is the language of whom no list names one, OPSAUDIT_TIMEZONE dates the
    deadlines) and config/recipients.yaml, whose entries say which language a person reads."""

    settings: Settings
    recipients: Recipients = field(default_factory=Recipients)

    @classmethod
    def of(cls, settings: Settings | None = None) -> Mailing:
        """For `settings` (the environment's when None) and their configuration."""
        settings = settings or load_settings()
        return cls(settings, settings.load_config().recipients)


@dataclass(frozen=True)
class Step:
    """A plan's step as its event recorded it: the action, the event's id, who took it, the note
    (a rejection's reasons) and what the plan states (`cause`, `prevention`)."""

    action: str
    event_id: int
    actor: str
    note: str | None = None
    recorded: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mailed:
    """What a step queued: the outbox messages, and who should have been told but cannot be."""

    messages: tuple[int, ...] = ()
    notes: tuple[Message, ...] = ()


def queue(conn: Connection, finding: RowMapping, step: Step, asked: tuple[Role, ...], directory: Directory,
          mailing: Mailing, *, now: datetime) -> Mailed:
    """Enqueue the step's mail to each active person who holds one of the `asked` roles for the
    finding, but the actor, each once and in their language."""
    found = _asked(directory, finding, asked, actor=step.actor)
    settings = mailing.settings
    writer = Writer(directory, settings.tz, {}, web=settings)
    url = finding_url(settings, finding["id"])
    ids = [outbox.enqueue(conn, compose(writer, finding, step, recipient,
                                        language_of(mailing.recipients, recipient) or settings.language, url),
                          now=now)
           for recipient in found.recipients]
    return Mailed(tuple(ids), found.notes)


def _asked(directory: Directory, finding: RowMapping, roles: tuple[Role, ...], *, actor: str) -> RecipientList:
    """The people asked to act, with the role each is asked in; when nobody active holds any of
    the roles, a note for each."""
    party = {"owner_id": finding["owner_id"], "department_id": finding["department_id"]}
    named: dict[str, Message] = {}
    for role in roles:
        for person in holders(directory, role, **party):
            named.setdefault(person.staff_id, Message.of(f"rectification.role.{role.value}"))
    if not named:
        return RecipientList(notes=tuple(note("nobody_in_role", role=Message.of(f"rectification.role.{role.value}"))
                                         for role in roles))
    named.pop(actor, None)  # the one who acted knows
    return resolve(directory, named=named)


def language_of(config: Recipients, recipient: Recipient) -> str | None:
    """The language an entry of recipients.yaml (any list) gives the person, by staff_id or address."""
    listed = [entry for entries in (*config.reports.values(), config.alerts, config.circulation) for entry in entries]
    return next((entry.language for entry in listed if entry.language and (
        (entry.staff_id is not None and entry.staff_id == recipient.staff_id)
        or (entry.email or "").lower() == recipient.email.lower())), None)


def compose(writer: Writer, finding: RowMapping, step: Step, recipient: Recipient, language: str,
            url: str) -> OutgoingMail:
    """The mail: what was done and what is asked, the finding (its title with what it is about and
    its period, department, severity, owner, deadlines), what the plan states or why it was
    rejected, and the finding's page (`url`)."""
    from opsaudit.i18n import format_value, text

    kind = KINDS[step.action]
    directory, zone = writer.directory, writer.zone
    title = writer.title(finding, language)
    plan_due = from_db(finding["plan_due_at"], zone)
    fields = [
        ("field.title", title),
        ("field.department", directory.department_label(finding["department_id"], language)),
        ("field.severity", text(f"enum.severity.{finding['severity']}", language)),
        ("field.owner", writer.person(finding["owner_id"], language)),
        ("field.plan_due_at", format_value(plan_due, "date", language) if plan_due else None),
        ("field.due_at", format_value(from_db(finding["due_at"], zone), "date", language)),
        ("plan_mail.field.cause", step.recorded.get("cause")),
        ("plan_mail.field.prevention", step.recorded.get("prevention")),
        (f"plan_mail.{kind}.note", (step.note or "").strip() or None),
    ]
    body = Body(language).paragraph(text(f"plan_mail.{kind}.intro", language, name=recipient.name or recipient.email,
                                         actor=writer.person(step.actor, language)))
    for key, value in fields:
        if value:
            body.paragraph(text("rectification.mail.field", language, name=text(key, language), value=value))
    body.link(url).paragraph(text("rectification.mail.footer", language))
    return OutgoingMail(dedupe_key=f"{KEY}{step.action}:{finding['id']}:{step.event_id}:"
                                   f"{recipient.staff_id or recipient.email}",
                        kind="notice", recipients=(recipient.address,),
                        subject=text(f"plan_mail.{kind}.subject", language, title=title),
                        body_text=body.text(), body_html=body.html())

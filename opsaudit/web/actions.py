"""The web's forms, each declared once: the fields it asks for and which it cannot go without;
for an action on a finding, also the action (its row of the lifecycle table: the states it starts
from and who may take it) and the store function that carries it out. The page shows the
declared fields, the POST reads and checks them by the same declaration and hands them to that
function by name; the function decides, as it does for the command line.

Adding an action's form is one entry of FORMS: `on_lifecycle(name, *field names)` for a row of
`lifecycle.ACTIONS`, `on_major(...)` for a major problem's step, or an `ActionForm` with its own
`Perform`. NEW_FINDING is the form of a problem an auditor records by hand (`findings add`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Connection, RowMapping

from opsaudit.config.models import Deadlines
from opsaudit.i18n import text
from opsaudit.manual import AREAS, ENTITY_TYPES
from opsaudit.reports.plan_mail import Mailing
from opsaudit.reports.recipients import Directory, Person
from opsaudit.store import lifecycle
from opsaudit.store.finding_views import SEVERITIES
from opsaudit.store.roles import Role
from opsaudit.web.views import may_take


class Kind(enum.StrEnum):
    """How a field is asked for and read."""

    LINE = "line"          # one line, its spaces and breaks run together; empty is None
    TEXT = "text"          # a few lines; empty is None
    CHOICE = "choice"      # one code picked among the field's options (the store function checks it)
    DATE = "date"          # a day from the finding's discovery to today
    PERSON = "person"      # one staff_id, typed or picked from the field's choices
    PEOPLE = "people"      # several staff_ids, ticked among the field's choices
    SEVERITY = "severity"  # general, important or major
    FILE = "file"          # an upload, kept by its SHA-256 and handed on as its path
    FILES = "files"        # several uploads, each kept as a FILE's: a tuple
    LINKS = "links"        # web addresses (http or https), one a line: a tuple


Choices = Callable[[RowMapping, Directory], list[Person]]
# A CHOICE field's options in the reader's language: (code, label), in the order shown.
Options = Callable[[Directory, str], list[tuple[str, str]]]
LINK = re.compile(r"^https?://\S+$", re.IGNORECASE)


@dataclass(frozen=True)
class Field:
    """One input: its name is the form field's and the store function's keyword."""

    name: str
    kind: Kind
    choices: Choices | None = None  # whom a PERSON or PEOPLE field offers
    options: Options | None = None  # what a CHOICE field offers


def _department_but_owner(row: RowMapping, directory: Directory) -> list[Person]:
    """Who may take the finding over: its department's active people but its owner."""
    return [person for person in directory.people.values() if person.active
            and person.department_id == row["department_id"] and person.staff_id != row["owner_id"]]


def _department_and_operations(row: RowMapping, directory: Directory) -> list[Person]:
    """Who rectifies a major problem together: the active people of the finding's department and
    of the operations department, the finding's department first."""
    departments = [row["department_id"], *sorted(directory.operations_departments())]
    return sorted((person for person in directory.people.values()
                   if person.active and person.department_id in departments),
                  key=lambda person: (departments.index(person.department_id), person.staff_id))


def _enum(name: str, codes: tuple[str, ...]) -> Options:
    """Codes of the catalogue's `enum.<name>`, each labelled in the reader's language."""
    return lambda _directory, language: [(code, text(f"enum.{name}.{code}", language)) for code in codes]


def _departments(directory: Directory, language: str) -> list[tuple[str, str]]:
    """Every department of the directory by its name (and id), in the order of their ids."""
    return [(code, directory.department_label(code, language)) for code in sorted(directory.departments)]


FIELDS: Mapping[str, Field] = {one.name: one for one in (
    Field("note", Kind.TEXT), Field("cause", Kind.TEXT), Field("prevention", Kind.TEXT),
    Field("severity", Kind.SEVERITY), Field("evidence", Kind.FILE), Field("held_on", Kind.DATE),
    Field("to", Kind.PERSON, _department_but_owner), Field("lead", Kind.PERSON, _department_and_operations),
    Field("members", Kind.PEOPLE, _department_and_operations),
    Field("area", Kind.CHOICE, options=_enum("area", AREAS)), Field("department", Kind.CHOICE, options=_departments),
    Field("title", Kind.LINE), Field("description", Kind.TEXT),
    Field("entity_type", Kind.CHOICE, options=_enum("entity_type", ENTITY_TYPES)), Field("entity_id", Kind.LINE),
    Field("files", Kind.FILES), Field("links", Kind.LINKS),
)}


def fields(*names: str) -> tuple[Field, ...]:
    return tuple(FIELDS[name] for name in names)


@dataclass(frozen=True)
class Doer:
    """Who acts, on the directory as it is now, when, in which language, through which door; and
    the configured deadlines, from which a regrade recomputes the finding's."""

    actor: str
    directory: Directory
    now: datetime
    language: str
    deadlines: Deadlines
    door: tuple[str, str | None] = ("web", None)
    mailing: Mailing | None = None  # what a plan's mail needs: the web's settings and recipients


# store(conn, finding_id, doer, the fields' values by name): carries the action out or refuses it.
Perform = Callable[[Connection, str, Doer, dict[str, Any]], object]
ALWAYS = SEVERITIES


@dataclass(frozen=True)
class Form:
    """What a form asks for (in the order shown), and which fields it cannot go without on which
    severities of its finding."""

    fields: tuple[Field, ...]
    required: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def uploads(self) -> bool:
        return any(one.kind in (Kind.FILE, Kind.FILES) for one in self.fields)

    def requires(self, name: str, severity: str | None) -> bool:
        """Whether the field must be filled in on a finding of `severity`; with None (a finding
        not recorded yet), whether it must be on any."""
        needed = self.required.get(name, ())
        return severity in needed if severity is not None else bool(needed)


@dataclass(frozen=True, kw_only=True)
class ActionForm(Form):
    """One action's form: who may take it and when (its lifecycle Action), on which severities,
    and the store function that carries it out."""

    action: lifecycle.Action
    perform: Perform
    severities: tuple[str, ...] = SEVERITIES

    @property
    def name(self) -> str:
        return self.action.name


def on_lifecycle(name: str, *names: str, required: Mapping[str, tuple[str, ...]] | None = None) -> ActionForm:
    """The form of a row of `lifecycle.ACTIONS`, carried out by `lifecycle.perform`; the option the
    action cannot go without (`needs`) is always required, and `required` adds others."""
    action = lifecycle.ACTIONS[name]
    return ActionForm(fields(*names), {**({action.needs: ALWAYS} if action.needs else {}), **(required or {})},
                      action=action, perform=_lifecycle(name))


def _lifecycle(name: str) -> Perform:
    """`lifecycle.perform` with the fields as the Request's."""

    def perform(conn: Connection, finding_id: str, doer: Doer, values: dict[str, Any]) -> object:
        channel, os_user = doer.door
        request = lifecycle.Request(name, doer.actor, channel=channel, os_user=os_user, **values)
        return lifecycle.perform(conn, finding_id, request, doer.directory, now=doer.now, language=doer.language,
                                 deadlines=doer.deadlines, mailing=doer.mailing)

    return perform


def on_major(action: lifecycle.Action, store: Callable[..., object], *names: str, required: tuple[str, ...]
             ) -> ActionForm:
    """A major finding's step, carried out by `store(conn, finding_id, actor=…, directory=…, now=…,
    language=…, door=…, **fields)` (lifecycle.record_special_meeting, record_task_force)."""

    def perform(conn: Connection, finding_id: str, doer: Doer, values: dict[str, Any]) -> object:
        return store(conn, finding_id, actor=doer.actor, directory=doer.directory, now=doer.now,
                     language=doer.language, door=doer.door, **values)

    return ActionForm(fields(*names), dict.fromkeys(required, ALWAYS), action=action, perform=perform,
                      severities=("major",))


# In the order the page shows them: the step the finding waits for, a major problem's meeting and
# task force, then the audit lead's judgement, handing the finding over, reopening it.
FORMS: Mapping[str, ActionForm] = {form.name: form for form in (
    on_lifecycle("submit-plan", "cause", "prevention", "note", "evidence",
                 required=dict.fromkeys(("cause", "prevention"), lifecycle.NEEDS_CAUSE)),
    on_lifecycle("approve-plan", "note"),
    on_lifecycle("reject-plan", "note"),
    on_lifecycle("start", "note"),
    on_lifecycle("submit", "note", "evidence"),
    on_lifecycle("verify", "note"),
    on_lifecycle("reject", "note"),
    on_lifecycle("close", "note"),
    on_major(lifecycle.SPECIAL_MEETING, lifecycle.record_special_meeting, "held_on", "note", required=("held_on",)),
    on_major(lifecycle.TASK_FORCE, lifecycle.record_task_force, "lead", "members", "note", required=("lead",)),
    on_lifecycle("regrade", "severity", "note", required={"severity": ALWAYS}),
    on_lifecycle("withdraw", "note"),
    on_lifecycle("assign", "to", "note"),
    on_lifecycle("reopen", "note"),
)}


# A problem an auditor records by hand (`findings add`, seed 000 §5.2), carried out by
# `manual.add_manual_finding`; the entity defaults to the department itself.
NEW_FINDING = Form(fields("area", "department", "severity", "title", "description", "entity_type", "entity_id",
                          "files", "links"),
                   dict.fromkeys(("area", "department", "severity", "title", "description"), ALWAYS))


class BadValue(Exception):
    """A field the form needs that is missing (`value` None) or not of its kind."""

    def __init__(self, field: str, value: str | None) -> None:
        super().__init__(field, value)
        self.field, self.value = field, value

    def text(self, language: str) -> str:
        """The page's one line: fill in the field, or its value is not valid."""
        label = text(f"web.field.{self.field}", language)
        if self.value is None:
            return text("web.error.needs", language, field=label)
        return text("web.error.value", language, field=label, value=self.value)


def read(form: Form, posted: Any, severity: str | None = None) -> dict[str, Any]:
    """The declared fields' values from the posted form data (Starlette's FormData): text
    stripped (empty is None), a date, a tuple of staff_ids, a severity code, an uploaded file (None
    when none was chosen) or a tuple of them, a tuple of links. BadValue for a field required on a
    finding of `severity` (None: a finding not recorded yet) left empty, or a value not of its kind."""
    values: dict[str, Any] = {}
    for asked in form.fields:
        if asked.kind is Kind.PEOPLE:
            value: Any = tuple(dict.fromkeys(v.strip() for v in posted.getlist(asked.name) if v.strip()))
        elif asked.kind is Kind.FILE:
            given = posted.get(asked.name)
            value = given if getattr(given, "filename", None) else None
        elif asked.kind is Kind.FILES:
            value = tuple(given for given in posted.getlist(asked.name) if getattr(given, "filename", None))
        elif asked.kind is Kind.LINKS:
            value = _links(asked, str(posted.get(asked.name) or ""))
        else:
            value = _one(asked, str(posted.get(asked.name) or "").strip())
        if not value and form.requires(asked.name, severity):
            raise BadValue(asked.name, None)
        values[asked.name] = value
    return values


def _links(asked: Field, given: str) -> tuple[str, ...]:
    """One web address a line, each once; anything else is no link (never a path on the server)."""
    links = tuple(dict.fromkeys(line.strip() for line in given.splitlines() if line.strip()))
    for link in links:
        if not LINK.match(link):
            raise BadValue(asked.name, link)
    return links


def _one(asked: Field, given: str) -> Any:
    if not given:
        return None
    if asked.kind is Kind.LINE:
        return " ".join(given.split())
    if asked.kind is Kind.DATE:
        try:
            return date.fromisoformat(given)
        except ValueError:
            raise BadValue(asked.name, given) from None
    if asked.kind is Kind.SEVERITY and given not in SEVERITIES:
        raise BadValue(asked.name, given)
    return given


def shown(form: Form, directory: Directory, language: str, *, severity: str | None, row: RowMapping | None = None,
          values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """What a page shows of a form's fields: each with its kind, whether it is required on a
    finding of `severity`, the people or options it offers, and the value it shows (a regrade's
    current severity; what was sent, when a form comes back with what to correct)."""
    return [{"name": asked.name, "kind": asked.kind.value, "required": form.requires(asked.name, severity),
             "choices": asked.choices(row, directory) if asked.choices and row is not None else [],
             "options": asked.options(directory, language) if asked.options else [],
             "value": (values or {}).get(asked.name)}
            for asked in form.fields]


def offered(row: RowMapping, roles: frozenset[Role]) -> list[ActionForm]:
    """The forms someone with `roles` on the finding may send now, in the order of FORMS."""
    return [form for form in FORMS.values()
            if row["severity"] in form.severities and may_take(form.action, row, roles)]

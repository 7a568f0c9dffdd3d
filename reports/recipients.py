"""Who receives a mail, by role: from the staff and departments tables and config/recipients.yaml.

Roles (seed 000 §2, §5.3, §6): the operations manager (the first active `manager` of
OPSAUDIT_OPERATIONS_DEPARTMENT by staff_id) and deputies (`deputy_manager`), the head of a
department (`departments.head_id`), executives (role `executive`), the audit lead
(OPSAUDIT_AUDIT_LEAD, or the first `auditor` of the operations department) and the operations
staff (everyone active in the operations department and the departments under it).

Someone who should receive a mail but cannot (no e-mail address, not in the staff table, no
longer active) is named in the result's notes; the mail still goes to everyone else. Notes and
reasons are catalogue messages (recipients.*), written in the reader's language when shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import sqlalchemy as sa

from opsaudit.config.models import Recipient as ConfiguredRecipient
from opsaudit.config.models import Recipients
from opsaudit.errors import SourceError
from opsaudit.i18n.findings import labelled
from opsaudit.i18n.render import Message, text
from opsaudit.reports.outbox import Address, is_address
from opsaudit.settings import Settings
from opsaudit.source import Source, missing_tables


class Role(StrEnum):
    OPERATIONS_MANAGER = "operations manager"
    DEPUTY = "deputy manager"
    DEPARTMENT_HEAD = "department head"
    EXECUTIVE = "executive"
    AUDIT_LEAD = "audit lead"
    OPERATIONS_STAFF = "operations staff"

    @property
    def message(self) -> Message:
        return Message.of(f"recipients.role.{self.name.lower()}")


def reason(key: str, /, **values: object) -> Message:
    """Why someone receives a mail, beyond a role: recipients.reason.<key> (owner, auditor, ...)."""
    return Message.of(f"recipients.reason.{key}", **values)


def note(key: str, /, **values: object) -> Message:
    """Why someone who should receive a mail does not: recipients.note.<key>."""
    return Message.of(f"recipients.note.{key}", **values)


def not_told(note: Message | str, language: str) -> str:
    """未通知：… — one note as a line of a task log or the terminal."""
    return text("recipients.not_told", language, note=note.text(language) if isinstance(note, Message) else note)


@dataclass(frozen=True)
class Person:
    """A row of the staff table."""

    staff_id: str
    name: str
    department_id: str
    role: str
    email: str | None
    active: bool

    def label(self, language: str) -> str:
        """王芳（S007）: the person by name and staff ID, in the reader's language; by ID alone
        when the staff table gives no other name."""
        return labelled(self.name, self.staff_id, language) or self.staff_id


@dataclass(frozen=True)
class Recipient:
    """An address that receives the mail, why, and in which language when the config says so."""

    email: str
    name: str | None = None
    staff_id: str | None = None
    language: str | None = None
    reasons: tuple[Message, ...] = ()

    @property
    def address(self) -> Address:
        return Address(self.email, self.name, self.staff_id)


@dataclass(frozen=True)
class RecipientList:
    """The recipients of one mail, each address once, and who could not be reached."""

    recipients: tuple[Recipient, ...] = ()
    notes: tuple[Message, ...] = ()

    @property
    def addresses(self) -> tuple[Address, ...]:
        return tuple(recipient.address for recipient in self.recipients)

    def by_language(self, default: str) -> dict[str, tuple[Address, ...]]:
        """The addresses grouped by the language their mail is written in (`default` when unset)."""
        groups: dict[str, list[Address]] = {}
        for recipient in self.recipients:
            groups.setdefault(recipient.language or default, []).append(recipient.address)
        return {language: tuple(addresses) for language, addresses in groups.items()}


@dataclass(frozen=True)
class Department:
    department_id: str
    parent_id: str | None
    head_id: str | None
    name: str | None = None


@dataclass(frozen=True)
class Directory:
    """The staff and departments tables, read once, and the roles found in them."""

    people: Mapping[str, Person]
    departments: Mapping[str, Department]
    operations_department: str
    audit_lead_id: str | None = None
    notes: tuple[Message, ...] = ()

    @classmethod
    def load(cls, source: Source, settings: Settings) -> Directory:
        """Read the directory through the source mapping; a missing table is a note, not an error."""
        missing = missing_tables(source, ("staff", "departments"))
        notes = tuple(note("missing_table", table=source.physical_name(name))
                      for name in sorted(missing))
        people = {} if "staff" in missing else _read_staff(source)
        departments = {} if "departments" in missing else _read_departments(source)
        return cls(people, departments, settings.operations_department, settings.audit_lead, notes)

    def _active(self, role: str, department_id: str | None = None) -> tuple[Person, ...]:
        """The active people with role (in department_id), in staff_id order."""
        return tuple(p for p in self.people.values() if p.active and p.role == role
                     and (department_id is None or p.department_id == department_id))

    def operations_manager(self) -> Person | None:
        return next(iter(self._active("manager", self.operations_department)), None)

    def deputies(self) -> tuple[Person, ...]:
        return self._active("deputy_manager", self.operations_department)

    def executives(self) -> tuple[Person, ...]:
        return self._active("executive")

    def audit_lead(self) -> Person | None:
        """OPSAUDIT_AUDIT_LEAD when set (even if that person is unusable: the notes will say so)."""
        if self.audit_lead_id is not None:
            return self.people.get(self.audit_lead_id)
        return next(iter(self._active("auditor", self.operations_department)), None)

    def department(self, department_id: str) -> Message | str:
        """客服三部（CS3）: a department by name and id, in the reader's language; by id alone
        when the table gives no other name."""
        known = self.departments.get(department_id)
        if known and known.name and known.name != department_id:
            return Message.of("label.named", name=known.name, id=department_id)
        return department_id

    def person_label(self, staff_id: str | None, language: str) -> str | None:
        """A person written out (Person.label), or the ID as given when the staff table lacks it."""
        person = self.people.get(staff_id or "")
        return person.label(language) if person else staff_id

    def department_label(self, department_id: str | None, language: str) -> str:
        """The department written out (see department); the whole company when there is none."""
        if department_id is None:
            return text("circulation.company", language)
        found = self.department(department_id)
        return found.text(language) if isinstance(found, Message) else found

    def operations_departments(self) -> set[str]:
        """The operations department and every department under it."""
        found = {self.operations_department}
        frontier = [self.operations_department]
        while frontier:
            parent = frontier.pop()
            for department in self.departments.values():
                if department.parent_id == parent and department.department_id not in found:
                    found.add(department.department_id)
                    frontier.append(department.department_id)
        return found

    def operations_staff(self) -> tuple[Person, ...]:
        departments = self.operations_departments()
        return tuple(p for p in self.people.values() if p.active and p.department_id in departments)


def _read_staff(source: Source) -> dict[str, Person]:
    """Every person of the staff table, in staff_id order."""
    s = source.table("staff")
    query = sa.select(s.c.staff_id, s.c.name, s.c.department_id, s.c.role, s.c.email, s.c.active)
    people: dict[str, Person] = {}
    for row in _read(source, "staff", query.order_by(s.c.staff_id)):
        email = row.email.strip() if row.email and row.email.strip() else None
        people[row.staff_id] = Person(row.staff_id, row.name, row.department_id, row.role, email, bool(row.active))
    return people


def _read_departments(source: Source) -> dict[str, Department]:
    d = source.table("departments")
    rows = _read(source, "departments", sa.select(d.c.department_id, d.c.parent_id, d.c.head_id, d.c.name))
    return {row.department_id: Department(row.department_id, row.parent_id, row.head_id, row.name) for row in rows}


def _read(source: Source, table: str, query: sa.Select) -> list[sa.Row]:
    try:
        with source.engine.connect() as conn:
            return list(conn.execute(query))
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise SourceError(Message.of("error.source.unreadable", table=source.shown_name(table),
                                     what=Message.of("error.source.recipients"), reason=reason)) from None


@dataclass
class _Collector:
    """Gathers recipients once per address (reasons merged) and the notes on those who cannot be reached."""

    recipients: dict[str, Recipient] = field(default_factory=dict)
    notes: list[Message] = field(default_factory=list)

    def add_person(self, person: Person, why: Message, language: str | None = None) -> None:
        who = {"name": person.name or person.staff_id, "staff_id": person.staff_id, "reason": why}
        if not person.active:
            self.note("inactive", **who)
        elif person.email is None:
            self.note("no_email", **who)
        elif not is_address(person.email):
            self.note("bad_email", **who, email=person.email)
        else:
            self.add(Recipient(person.email, person.name, person.staff_id, language, (why,)))

    def note(self, key: str, /, **values: object) -> None:
        self.notes.append(note(key, **values))

    def add(self, recipient: Recipient) -> None:
        key = recipient.email.lower()
        known = self.recipients.get(key)
        if known is None:
            self.recipients[key] = recipient
            return
        self.recipients[key] = Recipient(
            known.email, known.name or recipient.name, known.staff_id or recipient.staff_id,
            known.language or recipient.language, known.reasons + tuple(r for r in recipient.reasons
                                                                         if r not in known.reasons))

    def result(self) -> RecipientList:
        return RecipientList(tuple(self.recipients.values()), tuple(dict.fromkeys(self.notes)))


def resolve(directory: Directory, *, roles: Iterable[Role] = (), departments: Iterable[str] = (),
            named: Mapping[str, Message] | None = None, configured: Iterable[ConfiguredRecipient] = (),
            where: str = "config/recipients.yaml") -> RecipientList:
    """The people in `roles` (department heads: of `departments`), the staff `named` (staff_id:
    why, e.g. a finding's owner) and the configured recipients, `where` naming their list."""
    collector = _Collector(notes=list(directory.notes))
    for role in roles:
        _add_role(collector, directory, Role(role), tuple(departments))
    for staff_id, why in (named or {}).items():
        if staff_id in directory.people:
            collector.add_person(directory.people[staff_id], why)
        else:
            collector.note("not_in_staff", reason=why, staff_id=staff_id)
    listed = reason("configured", place=where)
    for entry in configured:
        if entry.email:
            if is_address(entry.email):
                name = directory.people[entry.staff_id].name if entry.staff_id in directory.people else None
                collector.add(Recipient(entry.email, name, entry.staff_id, entry.language, (listed,)))
            else:
                collector.note("bad_address", reason=listed, email=entry.email)
        elif entry.staff_id in directory.people:
            collector.add_person(directory.people[entry.staff_id], listed, entry.language)
        else:
            collector.note("not_in_staff", reason=listed, staff_id=entry.staff_id)
    return collector.result()


def _add_role(collector: _Collector, directory: Directory, role: Role, departments: tuple[str, ...]) -> None:
    ops = directory.department(directory.operations_department)
    if role is Role.OPERATIONS_MANAGER:
        _add_one(collector, directory.operations_manager(), role,
                 note("no_operations_manager", department=ops, setting="OPSAUDIT_OPERATIONS_DEPARTMENT"))
    elif role is Role.AUDIT_LEAD:
        missing = (note("audit_lead_not_in_staff", staff_id=directory.audit_lead_id, setting="OPSAUDIT_AUDIT_LEAD")
                   if directory.audit_lead_id else note("no_auditor", department=ops))
        _add_one(collector, directory.audit_lead(), role, missing)
    elif role is Role.DEPARTMENT_HEAD:
        for department_id in departments:
            _add_head(collector, directory, department_id)
    else:
        people = {Role.DEPUTY: directory.deputies, Role.EXECUTIVE: directory.executives,
                  Role.OPERATIONS_STAFF: directory.operations_staff}[role]()
        if not people:
            collector.note("nobody_in_role", role=role.message)
        for person in people:
            collector.add_person(person, role.message)


def _add_one(collector: _Collector, person: Person | None, role: Role, missing: Message) -> None:
    if person is None:
        collector.notes.append(missing)
    else:
        collector.add_person(person, role.message)


def _add_head(collector: _Collector, directory: Directory, department_id: str) -> None:
    label = directory.department(department_id)
    department = directory.departments.get(department_id)
    if department is None:
        collector.note("unknown_department", department=label)
        return
    head = reason("department_head", department=department.name or department_id)  # 客服二部负责人
    if department.head_id is None:
        collector.note("no_head", department=label, column="departments.head_id")
    elif department.head_id not in directory.people:
        collector.note("not_in_staff", reason=head, staff_id=department.head_id)
    else:
        collector.add_person(directory.people[department.head_id], head)


def report_recipients(directory: Directory, config: Recipients, audit: str, *, departments: Iterable[str] = (),
                      major: bool = False) -> RecipientList:
    """An approved audit report: the operations manager and deputies, the heads of `departments`,
    executives when it holds a major problem, and recipients.yaml `reports.<audit>`."""
    roles = [Role.OPERATIONS_MANAGER, Role.DEPUTY, Role.DEPARTMENT_HEAD] + ([Role.EXECUTIVE] if major else [])
    return resolve(directory, roles=roles, departments=departments, configured=config.reports.get(audit, ()),
                   where=f"config/recipients.yaml: reports.{audit}")


def report_languages(config: Recipients, audit: str, default: str) -> list[str]:
    """The languages an audit's report is written in: OPSAUDIT_LANGUAGE's first, then every
    other language a recipient in recipients.yaml `reports.<audit>` reads."""
    wanted = {entry.language for entry in config.reports.get(audit, ()) if entry.language}
    return [default, *sorted(wanted - {default})]


def draft_recipients(directory: Directory) -> RecipientList:
    """A draft report awaiting review: the audit lead."""
    return resolve(directory, roles=[Role.AUDIT_LEAD])


def alert_recipients(directory: Directory, config: Recipients, department_id: str | None) -> RecipientList:
    """A major problem's immediate alert: the operations manager and deputies, the head of the
    responsible department, executives, and recipients.yaml `alerts`."""
    roles = [Role.OPERATIONS_MANAGER, Role.DEPUTY, Role.DEPARTMENT_HEAD, Role.EXECUTIVE]
    return resolve(directory, roles=roles, departments=[department_id] if department_id else [],
                   configured=config.alerts, where="config/recipients.yaml: alerts")


def circulation_recipients(directory: Directory, config: Recipients) -> RecipientList:
    """The monthly circulation (通报): all operations staff, and recipients.yaml `circulation`."""
    return resolve(directory, roles=[Role.OPERATIONS_STAFF], configured=config.circulation,
                   where="config/recipients.yaml: circulation")

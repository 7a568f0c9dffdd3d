"""Who is who for a finding's lifecycle (interface.md, "The rectification lifecycle").

The roles come from the staff and departments tables, read through the source mapping
(`reports.recipients.Directory`), and from the settings:
- the operations manager (the first active `manager` of OPSAUDIT_OPERATIONS_DEPARTMENT) and the
  deputies (its active `deputy_manager`s);
- the auditors: the active `auditor`s of that department;
- the audit team lead (OPSAUDIT_AUDIT_LEAD, else the first auditor of that department), who
  reviews reports and may regrade or withdraw any finding (seed 000 §6.1);
- the head of the finding's department (`departments.head_id`), when active;
- the finding's owner, when active.
"""

from __future__ import annotations

from enum import StrEnum

from opsaudit.config.loader import Config
from opsaudit.db import check_reachable, source_engine
from opsaudit.errors import SourceError
from opsaudit.i18n.render import Message
from opsaudit.reports.recipients import Directory, Person
from opsaudit.settings import Settings
from opsaudit.source import Source, missing_tables


class Role(StrEnum):
    OWNER = "owner"
    DEPARTMENT_HEAD = "department_head"
    OPERATIONS_MANAGER = "operations_manager"
    DEPUTY = "deputy"
    AUDITOR = "auditor"
    EXECUTIVE = "executive"
    AUDIT_LEAD = "audit_lead"


def load_directory(settings: Settings, config: Config) -> Directory:
    """The staff and departments tables of the operational database, read once (read-only).

    Without them nobody can be told apart, so a missing table is an error here, not a note.
    """
    source = Source(source_engine(settings.database, timezone=settings.timezone), config.source,
                    zone=settings.timezone)
    check_reachable(source.engine, purpose="database")
    missing = sorted(missing_tables(source, ("departments", "staff")))
    if missing:
        absent = Message.of("error.source.missing_table", table=source.physical_name(missing[0]), contract=missing[0])
        raise SourceError(Message.of("error.source.directory_table", purpose=Message.of("error.purpose.database"),
                                     problem=absent))
    directory = Directory.load(source, settings)
    lead = directory.people.get(settings.audit_lead or "")
    if lead is not None:
        settings.check_audit_lead(lead.role, lead.department_id)
    return directory


def holders(directory: Directory, role: Role, *, owner_id: str | None, department_id: str | None) \
        -> tuple[Person, ...]:
    """The active people who hold `role` for a finding owned by `owner_id` in `department_id`."""
    if role is Role.OWNER:
        people: tuple[Person | None, ...] = (directory.people.get(owner_id or ""),)
    elif role is Role.DEPARTMENT_HEAD:
        department = directory.departments.get(department_id or "")
        people = (directory.people.get(department.head_id or "") if department else None,)
    elif role is Role.OPERATIONS_MANAGER:
        people = (directory.operations_manager(),)
    elif role is Role.DEPUTY:
        people = directory.deputies()
    elif role is Role.EXECUTIVE:
        people = directory.executives()
    elif role is Role.AUDIT_LEAD:
        people = (directory.audit_lead(),)
    else:
        people = tuple(person for person in directory.people.values() if person.role == "auditor"
                       and person.department_id == directory.operations_department)
    return tuple(person for person in people if person is not None and person.active)


def roles_of(directory: Directory, staff_id: str, *, owner_id: str | None, department_id: str | None) \
        -> frozenset[Role]:
    """Every role `staff_id` holds for the finding."""
    return frozenset(role for role in Role
                     if any(person.staff_id == staff_id
                            for person in holders(directory, role, owner_id=owner_id, department_id=department_id)))

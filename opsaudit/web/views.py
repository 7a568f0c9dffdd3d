"""What a person sees and what waits for them, as SQL conditions read off the lifecycle's own
table (`lifecycle.ACTIONS`) and the roles (`store.roles`): the web decides nothing of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from opsaudit.errors import InputError
from opsaudit.reports.recipients import Directory
from opsaudit.store import lifecycle
from opsaudit.store.finding_views import SORTS, FindingFilter, get_finding
from opsaudit.store.roles import Role
from opsaudit.store.schema import findings
from opsaudit.store.times import to_db
from opsaudit.web.context import NotFound, Visitor

# The steps that wait for someone: a plan to write or approve, a fix to make, submit or verify, a
# verified finding to close. assign and reopen are always open to their holders and wait for nobody.
WORK = ("submit-plan", "approve-plan", "reject-plan", "start", "submit", "verify", "reject", "close")
WORK_PAGE = 50  # findings per page of my work: only those shown are worded


def visible(visitor: Visitor) -> list[sa.ColumnElement[bool]]:
    """interface.md: everything for the operations department and executives; otherwise one's own
    department's findings and the company-wide ones."""
    if visitor.sees_all:
        return []
    return [sa.or_(findings.c.department_id == visitor.person.department_id, findings.c.department_id.is_(None))]


def may_see(visitor: Visitor, row: RowMapping) -> bool:
    return visitor.sees_all or row["department_id"] in (None, visitor.person.department_id)


def visible_finding(conn: Connection, visitor: Visitor, finding_id: str) -> RowMapping:
    """The finding by id (or unambiguous prefix) when this person may see it; NotFound otherwise."""
    try:
        row = get_finding(conn, finding_id)
    except InputError:
        raise NotFound() from None
    if not may_see(visitor, row):
        raise NotFound()
    return row


def _scope(role: Role, visitor: Visitor) -> sa.ColumnElement[bool] | None:
    """The findings on which the visitor holds role, as a condition; None when on none."""
    if role is Role.OWNER:
        return findings.c.owner_id == visitor.staff_id
    if role is Role.DEPARTMENT_HEAD:
        headed = [d.department_id for d in visitor.directory.departments.values() if d.head_id == visitor.staff_id]
        return findings.c.department_id.in_(headed) if headed else None
    return sa.true() if role in visitor.standing_roles else None


def work_condition(visitor: Visitor) -> sa.ColumnElement[bool]:
    """The findings on which the visitor may take one of the WORK steps now."""
    options = []
    for name in WORK:
        action = lifecycle.ACTIONS[name]
        state = sa.or_(findings.c.status.in_(action.sources),
                       sa.and_(findings.c.severity == "general", findings.c.status.in_(action.general_sources)))
        for role in action.roles:
            scope = _scope(role, visitor)
            if scope is not None:
                options.append(sa.and_(state, scope))
    return sa.and_(sa.or_(*options) if options else sa.false(), *visible(visitor))


@dataclass(frozen=True)
class Work:
    """One page of my work: the findings waiting for me (overdue first, WORK_PAGE at most), and
    the counts of them all."""

    rows: list[RowMapping]
    total: int
    overdue: int


def my_work(conn: Connection, visitor: Visitor, now: datetime, page: int = 1) -> Work:
    """Two statements whatever the number of findings: the counts, then the rows of `page`."""
    condition = work_condition(visitor)
    late = findings.c.due_at < to_db(now)
    total, overdue = conn.execute(sa.select(sa.func.count(), sa.func.count().filter(late))
                                  .select_from(findings).where(condition)).one()
    rows = conn.execute(sa.select(findings).where(condition)
                        .order_by(sa.case((late, 0), else_=1), findings.c.due_at, *SORTS["severity"], findings.c.id)
                        .limit(WORK_PAGE).offset((page - 1) * WORK_PAGE)).mappings().all()
    return Work(list(rows), int(total), int(overdue or 0))


def allowed_actions(row: RowMapping, visitor: Visitor, names: tuple[str, ...] | None = None) -> list[str]:
    """The lifecycle actions the visitor may take on the finding now: the state and the roles that
    `lifecycle.check_allowed` asks for, with the visitor's roles found once per page, not once per
    action and row (the visitor is an active person, which check_allowed asks first)."""
    roles = visitor.roles_on(row)
    return [name for name in names or tuple(lifecycle.ACTIONS) if may_take(lifecycle.ACTIONS[name], row, roles)]


def may_take(action: lifecycle.Action, row: RowMapping, roles: frozenset[Role]) -> bool:
    """Whether someone with `roles` on the finding may take `action` in the finding's state."""
    sources = action.sources + (action.general_sources if row["severity"] == "general" else ())
    return row["status"] in sources and bool(roles & set(action.roles))


def page_of(conn: Connection, visitor: Visitor, where: FindingFilter, *, page: int, size: int,
            sort: str = "severity") -> tuple[list[RowMapping], int]:
    """One page of the visible findings that match, and how many match in all."""
    conditions = [*where.where(), *visible(visitor)]
    total = conn.execute(sa.select(sa.func.count()).select_from(findings).where(*conditions)).scalar_one()
    query = sa.select(findings).where(*conditions).order_by(*SORTS[sort], findings.c.period, findings.c.rule_id,
                                                            findings.c.entity_id)
    rows = conn.execute(query.limit(size).offset((page - 1) * size)).mappings().all()
    return list(rows), int(total)


def all_matching(conn: Connection, visitor: Visitor, where: FindingFilter) -> list[RowMapping]:
    """Every visible finding that matches, for a download."""
    conditions = [*where.where(), *visible(visitor)]
    query = sa.select(findings).where(*conditions).order_by(*SORTS["severity"], findings.c.period,
                                                            findings.c.rule_id, findings.c.entity_id)
    return list(conn.execute(query).mappings())


def names_of(directory: Directory) -> Any:
    """The CLI's Names (people's and departments' names) from the directory already read."""
    from opsaudit.cli.findings import Names

    return Names({p.staff_id: p.name for p in directory.people.values()},
                 {d.department_id: d.name or d.department_id for d in directory.departments.values()})

"""Special audits (专项稽查, seed 000 §4.1): started by a person for a major problem or incident,
with a stated reason and scope: audit areas, departments and a date range.

The request is one pydantic model, the `special` flow's parameter, so the Prefect UI offers it as
a typed form; the command line builds the same model. Every mistake is one line naming the field:
`RequestError.field` lets the command line name its option instead.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails

from opsaudit.audit import AuditContext, local_now, not_ended, preflight, scoped_context
from opsaudit.checks.scope import Scope
from opsaudit.config.models import Area
from opsaudit.errors import SourceError, UsageError
from opsaudit.i18n.render import Message
from opsaudit.periods import Period, date_range
from opsaudit.settings import Settings
from opsaudit.source import Source, missing_tables

AUDIT = "special"


class RequestError(UsageError):
    """A special audit's request that cannot be right, naming the field at fault; `problem` says
    what is wrong with it, worded in the reader's language when it is read."""

    def __init__(self, field: str, problem: Message) -> None:
        super().__init__(Message.of("error.special.request", field=field, problem=problem))
        self.field = field
        self.problem = problem

    def __reduce__(self) -> tuple[type[RequestError], tuple[str, Message]]:
        # Prefect keeps a failed run's exception: it is rebuilt from the field and the problem.
        return type(self), (self.field, self.problem)


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _filled(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError(Message.of("error.special.empty"))
    return _stripped(value)


DepartmentId = Annotated[str, BeforeValidator(_filled), Field(min_length=1, max_length=64)]


class SpecialAudit(BaseModel):
    """A special audit as a person asks for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    areas: list[Area] = Field(min_length=1, title="Audit areas", description="The areas whose rules run.")
    departments: list[DepartmentId] = Field(
        min_length=1, title="Departments", description="department_id of each department audited.")
    first_day: date = Field(title="From", description="The first day audited.")
    last_day: date = Field(title="To", description="The last day audited (included); it must have ended.")
    reason: str = Field(min_length=1, max_length=2000, title="Reason",
                        description="The major problem or incident the special audit looks into.")
    requested_by: DepartmentId | None = Field(
        default=None, title="Requested by", description="staff_id of the person who asked for the special audit.")

    @field_validator("areas", "departments")
    @classmethod
    def _once_each(cls, values: list[str]) -> list[str]:
        return sorted(set(values))

    @field_validator("reason", mode="before")
    @classmethod
    def _stated(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError(Message.of("error.special.empty_reason"))
        return _stripped(value)

    @field_validator("last_day")
    @classmethod
    def _not_before_first_day(cls, value: date, info: ValidationInfo) -> date:
        first = info.data.get("first_day")
        if first is not None and value < first:
            raise ValueError(Message.of("error.special.before_first_day", last=value.isoformat(),
                                        first=first.isoformat()))
        return value

    @property
    def period(self) -> Period:
        return date_range(self.first_day, self.last_day)

    def as_json(self) -> dict[str, Any]:
        """What the run records: the reason and the scope."""
        return {"reason": self.reason, "areas": list(self.areas), "departments": list(self.departments),
                "from": self.first_day.isoformat(), "to": self.last_day.isoformat(),
                "requested_by": self.requested_by}


def parse_request(value: Any) -> SpecialAudit:
    """The request from the model itself or its JSON (the Prefect API); RequestError when invalid."""
    try:
        return SpecialAudit.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = [str(part) for part in error["loc"]]
        raise RequestError(location[0] if location else "request", _problem(error)) from None


def _problem(error: ErrorDetails) -> Message:
    """What pydantic found wrong with a field, as a catalogue message; in a list, which value."""
    kind, value, context = error["type"], error.get("input"), error.get("ctx") or {}
    cause = context.get("error")
    if isinstance(cause, ValueError) and cause.args and isinstance(cause.args[0], Message):
        # One of a list's values, named unless it is blank (then "is empty" says it all).
        named = len(error["loc"]) > 1 and isinstance(value, str) and bool(value.strip())
        return Message.of("error.special.item", value=value, problem=cause.args[0]) if named else cause.args[0]
    if kind == "missing":
        return Message.of("error.special.required")
    if kind == "extra_forbidden":
        return Message.of("error.special.unknown_field")
    if kind == "model_type":
        return Message.of("error.special.not_a_request")
    if kind.startswith("date_"):
        return Message.of("error.special.not_a_date", value=value, example="2026-10-01")
    if kind in ("literal_error", "enum"):
        return Message.of("error.special.not_one_of", value=value,
                          choices=re.findall(r"'([^']*)'", str(context.get("expected", ""))))
    if kind == "too_short":
        return Message.of("error.special.empty")
    if kind == "string_too_long":
        return Message.of("error.special.too_long", limit=context.get("max_length"))
    return Message.of("error.special.invalid", detail=error["msg"])


def unknown_departments(source: Source, departments: list[str]) -> list[str]:
    """The given department ids the departments table does not have."""
    if missing_tables(source, ("departments",)):
        raise _missing_table("departments", "departments")
    d = source.table("departments")
    with source.engine.connect() as conn:
        known = set(conn.execute(sa.select(d.c.department_id).where(d.c.department_id.in_(departments))).scalars())
    return [department for department in departments if department not in known]


def prepare(settings: Settings, request: SpecialAudit, now: datetime | None = None) -> AuditContext:
    """The special audit's context, checked before anything is written: the range has ended, the
    departments exist, and the source, output folder and store are fit (audit.preflight)."""
    period = request.period
    problem = not_ended(settings, period, local_now(settings, now))
    if problem:
        raise RequestError("last_day", problem)
    context = scoped_context(settings, AUDIT, "special", request.areas, period,
                             Scope(departments=tuple(request.departments)), now=now,
                             parameters={"special": request.as_json()})
    preflight(context)
    unknown = unknown_departments(context.source, request.departments)
    if unknown:
        raise RequestError("departments", Message.of("error.special.unknown_department", value=unknown[0]))
    if request.requested_by and not known_staff(context.source, request.requested_by):
        raise RequestError("requested_by", Message.of("error.special.unknown_staff", value=request.requested_by))
    return context


def known_staff(source: Source, staff_id: str) -> bool:
    """Whether the staff table has `staff_id`."""
    if missing_tables(source, ("staff",)):
        raise _missing_table("staff", "requested_by")
    s = source.table("staff")
    with source.engine.connect() as conn:
        return conn.execute(sa.select(s.c.staff_id).where(s.c.staff_id == staff_id)).first() is not None


def _missing_table(table: str, field: str) -> SourceError:
    """The source lacks the directory table that checks the request's `field`."""
    return SourceError(Message.of("error.special.no_table", purpose=Message.of("error.purpose.database"), table=table,
                                  field=field))

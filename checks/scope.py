"""What part of the operational data an audit covers: every department, or some (a special
audit), and every record, or a drawn sample of one table's records (a spot check).

The metric builders apply the scope to their window and to their population, so a result, a
finding, its samples and its re-runnable evidence query all cover the same records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement


@dataclass(frozen=True)
class Scope:
    """Departments (none: all of them) and a sample of one table's record ids (none: all records)."""

    departments: tuple[str, ...] = ()
    sample_table: str | None = None
    sample_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.sample_ids and self.sample_table is None:
            raise ValueError("a sample of record ids needs the table it was drawn from")

    @property
    def restricted(self) -> bool:
        """Whether the audit covers less than all of the data."""
        return bool(self.departments) or self.sample_table is not None

    def condition(self, department: ColumnElement[Any], **records: ColumnElement[Any]) -> ColumnElement[bool]:
        """The rows in scope, given the relation's department column and, per table a sample may be
        drawn from, the column holding that table's record id (`tickets=t.c.ticket_id`)."""
        terms: list[ColumnElement[bool]] = []
        if self.departments:
            terms.append(department.in_(self.departments))
        if self.sample_table is not None:
            if self.sample_table not in records:
                # A rule that cannot be narrowed to the sample would silently audit everything.
                raise ValueError(f"this metric cannot be restricted to a sample of {self.sample_table}")
            terms.append(records[self.sample_table].in_(self.sample_ids))
        return sa.and_(sa.true(), *terms)

    def as_json(self) -> dict[str, Any]:
        return {"departments": list(self.departments), "sample_table": self.sample_table,
                "sample_size": len(self.sample_ids)}


EVERYTHING = Scope()

"""What a check produces: a result per rule and entity, judged as passed, warning, failed at a
severity, or insufficient data. A failed check is a result, never an exception."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"
    INSUFFICIENT_DATA = "insufficient_data"


class Severity(StrEnum):
    GENERAL = "general"
    IMPORTANT = "important"
    MAJOR = "major"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def raised(self) -> Severity:
        """One level higher (major stays major), for recurring problems."""
        return _ORDER[min(self.rank + 1, len(_ORDER) - 1)]


_ORDER = (Severity.GENERAL, Severity.IMPORTANT, Severity.MAJOR)
_RANK = {severity: index for index, severity in enumerate(_ORDER)}


@dataclass(frozen=True)
class CheckResult:
    """One rule judged on one entity for one period."""

    rule_id: str
    area: str
    entity_type: str
    entity_id: str
    outcome: Outcome
    severity: Severity | None = None
    department_id: str | None = None
    owner_id: str | None = None
    observed: float | None = None
    target: float | None = None
    population: int | None = None
    # Values for the finding's text (e.g. days_late, priority) and the evidence.
    facts: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def is_problem(self) -> bool:
        return self.outcome is Outcome.FAILED

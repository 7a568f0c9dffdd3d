"""What a check produces: a result per rule and entity, judged as passed, warning, failed at a
severity, or insufficient data. A failed check is a result, never an exception."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, overload

# Values JSON takes as they are; facts and evidence hold thousands of them per run.
PLAIN_TYPES = frozenset({str, int, float, bool})


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


class ResultSet(Sequence[CheckResult]):
    """An audit's results as they pass between Prefect tasks.

    Prefect walks lists and dataclasses given to a task object by object, to find upstream
    futures; an audit of 2,000 agents has thousands of results, and that walk cost more than the
    audit. A plain sequence class is passed as one object, and its repr tells the dashboard
    what it holds.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[CheckResult] = ()) -> None:
        self._items = tuple(items)

    @overload
    def __getitem__(self, index: int) -> CheckResult: ...

    @overload
    def __getitem__(self, index: slice) -> ResultSet: ...

    def __getitem__(self, index: int | slice) -> CheckResult | ResultSet:
        return ResultSet(self._items[index]) if isinstance(index, slice) else self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self._items)

    def __add__(self, other: Iterable[CheckResult]) -> ResultSet:
        return ResultSet((*self._items, *other))

    def recorded(self) -> ResultSet:
        """The results once their findings hold the evidence: without the labelled sample
        records (thousands of rows in an audit of 2,000 agents), with their ids and figures."""
        return ResultSet(replace(r, evidence={k: v for k, v in r.evidence.items() if k != "samples"})
                         if "samples" in r.evidence else r for r in self._items)

    def __repr__(self) -> str:
        outcomes = Counter(result.outcome.value for result in self._items)
        counts = ", ".join(f"{count:,} {outcome}" for outcome, count in sorted(outcomes.items()))
        return f"ResultSet({len(self._items):,} results: {counts or 'none'})"

"""What a check produces: a result per rule and entity, judged as passed, warning, failed at a
severity, or insufficient data. A failed check is a result, never an exception."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, overload

# Values JSON takes as they are; facts and evidence hold thousands of them per run.
PLAIN_TYPES = frozenset({str, int, float, bool})
# Evidence that lives with the finding, for the auditor: the records and the SQL to rerun.
FINDING_ONLY = ("samples", "query", "records_query")


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


@dataclass(frozen=True, slots=True)
class Samples:
    """A finding's labelled offending records as one small table: the rule's column names and a
    row of plain values per record, the record's id first.

    An audit of 2,000 agents holds thousands of findings with 20 records each; a dict per record
    would cost several times the memory, so records() makes them only when the evidence is written.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    @property
    def ids(self) -> list[str]:
        return [str(row[0]) for row in self.rows]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


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

    def release_evidence(self) -> None:
        """Once their findings are recorded, drop what only the findings keep (FINDING_ONLY:
        thousands of labelled records and queries in an audit of 2,000 agents); ids and figures stay.

        Prefect keeps every task's inputs and result until the flow ends, so a smaller copy would
        free nothing: the evidence is dropped from the results themselves, wherever they are held.
        """
        for result in self._items:
            for key in FINDING_ONLY:
                result.evidence.pop(key, None)

    def __repr__(self) -> str:
        outcomes = Counter(result.outcome.value for result in self._items)
        counts = ", ".join(f"{count:,} {outcome}" for outcome, count in sorted(outcomes.items()))
        return f"ResultSet({len(self._items):,} results: {counts or 'none'})"

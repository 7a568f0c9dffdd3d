"""Judge a computed metric against its rule: passed, warning, failed at a severity, or
insufficient data (audit-rules.md section 3)."""

from __future__ import annotations

from opsaudit.checks.results import Outcome, Severity
from opsaudit.checks.spec import Rule

# Shares are compared after rounding, so 0.9 - 0.85 counts as the 5 points it is.
PRECISION = 9


def miss(rule: Rule, observed: float) -> float:
    """How far the observed value is on the wrong side of the target (negative: on the right side)."""
    assert rule.target is not None
    gap = rule.target - observed if rule.op == "at_least" else observed - rule.target
    return round(gap, PRECISION)


def grade(rule: Rule, observed: float | None, population: int) -> tuple[Outcome, Severity | None]:
    """The outcome of an aggregate rule for one entity, its severity capped at the rule's maximum
    (one agent's shortfall is at most important by default, audit-rules §3)."""
    if observed is None or population < rule.min_population:
        return Outcome.INSUFFICIENT_DATA, None
    shortfall = miss(rule, observed)
    if shortfall > 0:
        return Outcome.FAILED, min(_severity_of(rule, shortfall), Severity(rule.max_severity), key=lambda s: s.rank)
    if _in_warning_band(rule, -shortfall):
        return Outcome.WARNING, None
    return Outcome.PASSED, None


def _severity_of(rule: Rule, shortfall: float) -> Severity:
    general_max, important_max = rule.bands
    if shortfall <= round(general_max, PRECISION):
        return Severity.GENERAL
    if shortfall <= round(important_max, PRECISION):
        return Severity.IMPORTANT
    return Severity.MAJOR


def _in_warning_band(rule: Rule, margin: float) -> bool:
    """Within the band (edge included) on the right side of the target; a 100% target has none."""
    assert rule.target is not None
    if rule.unit == "rate" and rule.op == "at_least" and rule.target >= 1:
        return False
    return margin <= round(rule.warning_band, PRECISION)

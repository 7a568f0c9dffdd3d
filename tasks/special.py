"""The first step of a special audit as a Prefect task: its scope checked and resolved."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsaudit.audit import AuditContext
from opsaudit.settings import load_settings
from opsaudit.special import SpecialAudit, prepare


@task(cache_policy=NO_CACHE)
def resolve_special(request: SpecialAudit, now: datetime | None) -> AuditContext:
    """Check that the range has ended and the departments exist, then the source, output folder and
    store; the audit's context."""
    context = prepare(load_settings(), request, now)
    get_run_logger().info("special audit of %s in %s, %s: %s", ", ".join(request.areas),
                          ", ".join(request.departments), context.period.label, request.reason)
    return context

"""The first step of a special audit as a Prefect task: its scope checked and resolved."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from opsaudit.audit import AuditContext
from opsaudit.errors import OpsauditError
from opsaudit.i18n import text
from opsaudit.settings import load_settings
from opsaudit.special import SpecialAudit, prepare
from opsaudit.tasks.audit import refused


@task(cache_policy=NO_CACHE)
def resolve_special(request: SpecialAudit, now: datetime | None) -> AuditContext | State:
    """Check that the range has ended and the departments exist, then the source, output folder and
    store; the audit's context, or the Failed state that says in one line what is wrong."""
    try:
        settings = load_settings()
        context = prepare(settings, request, now)
    except OpsauditError as exc:
        return refused(exc)
    language = settings.language
    get_run_logger().info(text("audit_run.special", language, reason=request.reason, areas=[
        text(f"enum.area.{area}", language) for area in request.areas], departments=list(request.departments),
        period=context.period.label))
    return context

"""The first step of a special audit as a Prefect task: its scope checked and resolved."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Failed

from opsaudit.audit import AuditContext
from opsaudit.errors import OpsauditError
from opsaudit.i18n import text
from opsaudit.settings import load_settings
from opsaudit.special import SpecialAudit, prepare


def refused(error: OpsauditError) -> State:
    """A run or task ended by `error`, a mistake in what was asked or a source unfit for it: Failed,
    with the error's one line as the message the dashboard shows, and no traceback in its log."""
    return Failed(message=str(error), data=error)


@task(cache_policy=NO_CACHE)
def resolve_special(request: SpecialAudit, now: datetime | None) -> AuditContext | State:
    """Check that the range has ended and the departments exist, then the source, output folder and
    store; the audit's context, or the Failed state that says in one line what is wrong."""
    settings = load_settings()
    try:
        context = prepare(settings, request, now)
    except OpsauditError as exc:
        return refused(exc)
    language = settings.language
    get_run_logger().info(text("audit_run.special", language, reason=request.reason, areas=[
        text(f"enum.area.{area}", language) for area in request.areas], departments=list(request.departments),
        period=context.period.label))
    return context

"""The special audit flow (专项稽查, seed 000 §4.1): run on demand, from `opsaudit run special` or
as a custom run of the `special` deployment in the Prefect UI.

The request is a pydantic model, so the UI offers a typed form and the API refuses an unknown
area. Prefect's own parameter check is off: a mistake it would report as a multi-line validation
error (an empty reason, dates the wrong way round) is reported by the flow itself, in one line
naming the field, before any task runs; unknown departments and a range that has not ended are
the first task's one line. Either ends the run Failed with that line as the state message the
dashboard shows, and no traceback in its log: it is a person's mistake, not a defect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State

from opsaudit.errors import UsageError, option_error
from opsaudit.flows.audits import run_audit
from opsaudit.flows.labels import add_tags, area_tags
from opsaudit.i18n.render import Message
from opsaudit.special import AUDIT, RequestError, SpecialAudit, parse_request
from opsaudit.tasks.audit import refusal, refused
from opsaudit.tasks.special import resolve_special


def special_run_name() -> str:
    """`special 2026-10-01..2026-10-31`: the audit and the days it covers."""
    from prefect.runtime import flow_run

    try:
        return f"{AUDIT} {parse_request(flow_run.parameters.get('request')).period.label}"
    except RequestError:
        return AUDIT  # the flow reports what is wrong with the request


def tag_with_areas(flow: Any, flow_run: Any, state: Any) -> None:
    """On-running hook: the kind and the areas as tags, for runs started any way."""
    try:
        request = parse_request(flow_run.parameters.get("request"))
    except RequestError:
        return
    add_tags(flow_run.id, flow_run.tags, ["special", *area_tags(request.areas)])


def moment(value: datetime | str | None) -> datetime | None:
    """`now` as given: a datetime from Python, an ISO string from the Prefect API."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise option_error("now", Message.of("cli_help.error.not_a_timestamp", value=value)) from None


@flow(name="special", description="Special audit (专项稽查): the chosen areas' rules on a date range, for the "
                                  "chosen departments, with the stated reason.",
      flow_run_name=special_run_name, on_running=[tag_with_areas], validate_parameters=False)
def special(request: SpecialAudit, now: datetime | None = None) -> dict[str, Any] | State:
    """Run a special audit of the request's areas and departments on its days; its summary.

    Args:
        request: the areas, departments, first and last day, and the reason of the special audit.
        now: fixes the clock (a test, a re-run); the last day must have ended by then.
    """
    try:
        checked, clock = parse_request(request), moment(now)
    except UsageError as exc:
        return refused(exc)
    resolved = resolve_special(checked, clock, return_state=True)
    return refusal(resolved) or run_audit(resolved.result())

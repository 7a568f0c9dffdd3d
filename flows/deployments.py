"""The deployments `opsaudit serve` registers: every flow with its calendar from config/.

Adding a flow is one entry in REGISTRY: its name, where the flow lives, and the key of
config/audits.yaml that holds its cron, or the cron of its own settings (the key-task watch's). An
entry with neither runs only on demand. Each cron is checked with the cron parser Prefect's own
scheduler uses, in OPSAUDIT_TIMEZONE.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any

from opsaudit.config.loader import Config
from opsaudit.flows.labels import area_tags
from opsaudit.flows.server import SERVE_PID
from opsaudit.settings import Settings

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment
    from prefect.runner import Runner


@dataclass(frozen=True)
class Entry:
    """One deployable flow: its audit name, where its flow is, and where its calendar is."""

    audit: str
    flow: str  # "module:attribute", imported only when the flow is served
    cron_key: str | None = None  # dotted key in config/audits.yaml; None: `cron`
    kind: str = "periodic"  # the audit kind, a tag on its runs
    parameters: Mapping[str, Any] = field(default_factory=dict)
    cron: str | None = None  # without a cron key: the calendar from the flow's own settings; None: on demand
    areas: tuple[str, ...] = ()  # the areas of a flow config/audits.yaml does not list, as dashboard tags


REGISTRY: tuple[Entry, ...] = (
    Entry("cs-weekly", "opsaudit.flows.audits:cs_weekly", "audits.cs-weekly.cron"),
    Entry("cs-monthly", "opsaudit.flows.audits:cs_monthly", "audits.cs-monthly.cron"),
    Entry("execution-monthly", "opsaudit.flows.audits:execution_monthly", "audits.execution-monthly.cron"),
    Entry("planning-quarterly", "opsaudit.flows.audits:planning_quarterly", "audits.planning-quarterly.cron"),
    Entry("data-quarterly", "opsaudit.flows.audits:data_quarterly", "audits.data-quarterly.cron"),
    Entry("special", "opsaudit.flows.special:special", kind="special"),
    # Ticks daily; each tick decides at random whether to audit that day.
    Entry("spot-check", "opsaudit.flows.spot_check:spot_check", "spot_check.cron", kind="spot_check",
          parameters={"decide": True}),
    Entry("rectification-tracking", "opsaudit.flows.rectification:rectification_tracking",
          "rectification_tracking.cron", kind="tracking"),
    Entry("circulation", "opsaudit.flows.circulation:monthly_circulation", "circulation.cron", kind="circulation"),
    Entry("key-task-watch", "opsaudit.flows.key_task_watch:key_task_watch", kind="watch",
          cron_key="key_task_watch.cron", areas=("execution",)),
)


@dataclass(frozen=True)
class Deployment:
    """A deployment as registered with Prefect: the flow, its cron (None: on demand) and defaults."""

    name: str
    audit: str
    flow: str
    cron: str | None
    timezone: str
    parameters: Mapping[str, Any]
    tags: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """The shape interface.md fixes for `opsaudit schedules --format json`."""
        return {"name": self.name, "audit": self.audit, "cron": self.cron, "timezone": self.timezone,
                "parameters": dict(self.parameters)}


def _lookup(data: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def cron_of(entry: Entry, config: Config) -> str | None:
    """The entry's cron from config/audits.yaml (validated when the file was read), else its own, or
    None for an on-demand flow."""
    if entry.cron_key is None:
        return entry.cron
    return _lookup(config.audits.model_dump(mode="json"), entry.cron_key)


def deployments(settings: Settings, config: Config, registry: Sequence[Entry] = REGISTRY) -> list[Deployment]:
    """Every registered flow as a deployment, on its configured calendar in OPSAUDIT_TIMEZONE."""
    plans = config.audits.audits
    result = []
    for entry in registry:
        plan = plans.get(entry.audit)  # type: ignore[call-overload]
        tags = (entry.kind, *area_tags(plan.areas if plan is not None else entry.areas))
        result.append(Deployment(name=entry.audit, audit=entry.audit, flow=entry.flow,
                                 cron=cron_of(entry, config), timezone=settings.timezone,
                                 parameters=dict(entry.parameters), tags=tags))
    return result


def fire_times(deployment: Deployment, start: datetime, *, end: datetime | None = None,
               count: int | None = None) -> list[datetime]:
    """When Prefect's scheduler runs the deployment from `start`: up to `end` (inclusive) or the
    next `count` times, in the deployment's timezone; none for an on-demand deployment."""
    from prefect.server.schemas.schedules import CronSchedule

    if deployment.cron is None:
        return []
    schedule = CronSchedule(cron=deployment.cron, timezone=deployment.timezone)
    return list(asyncio.run(schedule.get_dates(n=count, start=start, end=end)))


def load_flow(reference: str) -> Flow:
    """The Prefect flow at "module:attribute"."""
    module, _, attribute = reference.partition(":")
    return getattr(import_module(module), attribute)


def runner_deployment(deployment: Deployment) -> RunnerDeployment:
    """The deployment as Prefect's runner registers it, its flow found by module path on any machine."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    schedule = Cron(deployment.cron, timezone=deployment.timezone) if deployment.cron else None
    return load_flow(deployment.flow).to_deployment(
        name=deployment.name, schedule=schedule, parameters=dict(deployment.parameters),
        tags=list(deployment.tags), entrypoint_type=EntrypointType.MODULE_PATH)


async def _serve_until_stopped(runner: Runner) -> None:
    """Run the runner until SIGINT, then cancel its flow runs gracefully and stop it.

    Cancelling the event loop instead (what Ctrl-C does to `prefect.serve`) kills in-flight flow
    runs with SIGKILL: they stay Running in Prefect and their audit runs are never closed. Asked
    to cancel, a run is told so and gets SIGTERM: Prefect records it Cancelled, the flow records
    its audit run interrupted.
    """
    import anyio

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    async with anyio.create_task_group() as group:
        group.start_soon(runner.start)
        await stop.wait()
        while not runner.started:  # stopped while still starting: its stop needs it started
            await asyncio.sleep(0.1)
        await runner.astop()


def serve(deployments: Sequence[Deployment], on_registered: Callable[[], None] = lambda: None) -> None:
    """Register the deployments with the Prefect API in use, call `on_registered`, and run them on
    schedule until Ctrl-C or SIGTERM.

    Stopping cancels the flow runs in progress and pauses the schedules, so that a shared server
    does not pile up runs nobody picks up (the next `serve` resumes them).
    """
    from prefect.runner import Runner

    class StopOnSigterm(Runner):
        def handle_sigterm(self, *_: Any) -> None:
            # Prefect's own handler calls the async stop() from inside the loop and never awaits
            # it: take the Ctrl-C path instead.
            signal.raise_signal(signal.SIGINT)

    # The flow run processes the runner starts end with this one (server.die_with_server).
    os.environ[SERVE_PID] = str(os.getpid())
    runner = StopOnSigterm(pause_on_shutdown=True)
    for deployment in deployments:
        runner.add_deployment(runner_deployment(deployment))
    on_registered()
    asyncio.run(_serve_until_stopped(runner))

"""For tests that run audits through Prefect: the small company on a SQLite file, a runner for a
registered deployment, and what a run shows on the dashboard, read through the Prefect client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa


def sqlite_company(folder: Path, monkeypatch: Any) -> tuple[str, sa.Engine]:
    """test_flows' small company in `folder`/ops.db with its store, as OPSAUDIT_DATABASE_URL."""
    from test_flows import small_company

    from opsaudit.store.migrate import upgrade

    database = f"sqlite:///{folder / 'ops.db'}"
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", database)
    engine = sa.create_engine(database)
    small_company(engine)
    upgrade(engine)
    return database, engine


def flow_run(flow_run_id: Any) -> Any:
    """The flow run as the API has it: its name, tags and final state."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def artifacts(flow_run_id: Any) -> dict[str, Any]:
    """The run's artifacts by key."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {artifact.key: artifact for artifact in found}


def run_logs(flow_run_id: Any) -> list[str]:
    """The run's log lines as the dashboard lists them (its tasks' too), oldest first."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10, at_exit=False)   # the lines go to the API in batches
    with get_client(sync_client=True) as client:
        found = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in found]


def run_of(state: Any) -> Any:
    """The flow run behind a state returned by calling a flow with return_state=True."""
    return flow_run(state.state_details.flow_run_id)


def serving(name: str) -> Any:
    """A Prefect runner with the registered deployment `name` (from flows/deployments.py) added to
    the API in use: `asyncio.run(runner.start(run_once=True))` runs what is due."""
    from prefect.runner import Runner

    from opsaudit.config.loader import load_config
    from opsaudit.flows.deployments import deployments, runner_deployment
    from opsaudit.settings import load_settings

    settings = load_settings()
    [spec] = [d for d in deployments(settings, load_config(settings.config_dir)) if d.name == name]
    runner = Runner(pause_on_shutdown=False)
    runner.add_deployment(runner_deployment(spec))
    return runner

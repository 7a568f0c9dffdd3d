"""Deployments served for real: through the Prefect API in the test harness, and `opsaudit serve` as
a person starts it, with its own server and UI or against a running server."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from dashboard import artifacts
from test_flows import small_company

from opsaudit.config.loader import load_config
from opsaudit.flows.deployments import REGISTRY, deployments, runner_deployment
from opsaudit.flows.server import free_port
from opsaudit.periods import previous
from opsaudit.settings import load_settings
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import audit_runs

STARTUP = 300.0   # a loaded two-core machine starts a full Prefect server slowly
RUN_TIMEOUT = 600.0


def read_deployments(api_url: str) -> dict[str, object]:
    """Every deployment on the server, by name."""
    from prefect import get_client
    from prefect.client.schemas.sorting import DeploymentSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        return {d.name: d for d in client.read_deployments(limit=100, sort=DeploymentSort.NAME_ASC)}


def run_and_wait(api_url: str, name: str, timeout: float = RUN_TIMEOUT, parameters: dict | None = None):
    """Run a deployment on the server at api_url; timeout 0 returns once the run is created."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return run_deployment(name, timeout=timeout, poll_interval=2, parameters=parameters)


def wait_for_status(database: str, audit: str, status: str, timeout: float = RUN_TIMEOUT) -> str | None:
    """Wait until the audit's latest run in the store has `status`; its error."""
    engine = sa.create_engine(database)
    deadline = time.monotonic() + timeout
    query = (sa.select(audit_runs.c.status, audit_runs.c.error).where(audit_runs.c.audit == audit)
             .order_by(audit_runs.c.started_at.desc()).limit(1))
    try:
        while True:
            with engine.connect() as conn:
                row = conn.execute(query).first()
            if row is not None and row.status == status or time.monotonic() >= deadline:
                assert row is not None and row.status == status, row
                return row.error
            time.sleep(0.5)
    finally:
        engine.dispose()


def descendants(pid: int) -> set[int]:
    """The processes started by pid, and theirs (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = set(), [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.add(child)
            queue.append(child)
    return found


def alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


# The line that says the deployments are served, in either language (the web's line comes first).
SERVES = re.compile("个部署并开始按计划运行|deployments registered and served")


@contextmanager
def serving(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`opsaudit serve ARGS` until it says it serves; the block must stop it."""
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "opsaudit", "serve", *args], env=env, stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STARTUP
        while not SERVES.search(log.read_text(errors="replace")):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, f"serve did not start in {STARTUP:.0f} s"
            time.sleep(0.5)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@contextmanager
def writes_held(path: Path) -> Iterator[None]:
    """Hold the SQLite file's write lock (readers go on: the store is in WAL mode)."""
    import sqlite3

    connection = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def stop(process: subprocess.Popen[bytes], log: Path) -> str:
    """Ctrl-C, as a person stops serve; its output."""
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 0, log.read_text(errors="replace")
    return log.read_text(errors="replace")


def serve_env(tmp_path: Path, database: str, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    return {**env, "OPSAUDIT_DATABASE_URL": database, "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra}


@pytest.mark.usefixtures("prefect_harness")
def test_a_deployment_run_through_the_api_audits_the_period_before_its_schedule(tmp_path, monkeypatch):
    """A run the scheduler would make (no parameters, due 1 November 08:00) audits October."""
    import asyncio

    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.runner import Runner

    database = f"sqlite:///{tmp_path / 'ops.db'}"
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", database)
    engine = sa.create_engine(database)
    small_company(engine)
    upgrade(engine)
    settings = load_settings()
    spec = next(d for d in deployments(settings, load_config(settings.config_dir)) if d.name == "cs-monthly")
    runner = Runner(pause_on_shutdown=False)
    runner.add_deployment(runner_deployment(spec))
    due = datetime(2026, 11, 1, 8, tzinfo=ZoneInfo("Asia/Shanghai"))
    flow_run = run_deployment("cs-monthly/cs-monthly", scheduled_time=due, timeout=0)
    asyncio.run(runner.start(run_once=True))   # picks up the due run and waits for it
    with get_client(sync_client=True) as client:
        finished = client.read_flow_run(flow_run.id)
    assert finished.state.is_completed(), finished.state
    assert finished.name == "cs-monthly 2026-10"
    assert {"periodic", "area:customer_service"} <= set(finished.tags)
    with engine.connect() as conn:
        recorded = conn.execute(sa.select(audit_runs.c.audit, audit_runs.c.period, audit_runs.c.status,
                                          audit_runs.c.flow_run_id)).all()
    assert [tuple(row) for row in recorded] == [("cs-monthly", "2026-10", "succeeded", str(flow_run.id))]


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_started_by_calling_the_flow_is_named_and_tagged_the_same(tmp_path, monkeypatch):
    """`opsaudit run` calls the flow: no deployment gives it tags, the flow's hook does."""
    from prefect import get_client

    from opsaudit.flows.audits import execution_monthly

    database = f"sqlite:///{tmp_path / 'ops.db'}"
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", database)
    engine = sa.create_engine(database)
    small_company(engine)
    upgrade(engine)
    state = execution_monthly(now=datetime(2026, 11, 1, 9), return_state=True)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
    assert flow_run.state.is_completed()
    assert flow_run.name == "execution-monthly 2026-10"
    assert "area:execution" in flow_run.tags


@pytest.mark.usefixtures("prefect_harness")
def test_serve_uses_the_server_prefect_api_url_names(tmp_path):
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    database = f"sqlite:///{tmp_path / 'ops.db'}"
    subprocess.run([sys.executable, "-m", "opsaudit", "init", "--db", database], check=True, capture_output=True)
    # The web beside the deployments reads who is who: the directory tables, empty here.
    from opsaudit.contract import departments, metadata, staff

    metadata.create_all(sa.create_engine(database), tables=[departments, staff])
    log = tmp_path / "serve.log"
    env = serve_env(tmp_path, database, PREFECT_API_URL=api_url)
    with serving(["--lang", "en"], env, log) as process:
        assert f"Prefect UI: {api_url.removesuffix('/api')}" in log.read_text()
        served = read_deployments(api_url)
        assert {"cs-weekly", "cs-monthly", "execution-monthly", "planning-quarterly", "data-quarterly"} <= set(served)
        assert not served["cs-weekly"].paused
        assert not [pid for pid in descendants(process.pid) if b"uvicorn" in command_line(pid)]   # no own server
        output = stop(process, log)
    assert output.rstrip().endswith("Stopped.")
    # A served deployment stops being scheduled when nobody serves it any more.
    assert read_deployments(api_url)["cs-weekly"].paused


def test_serve_runs_the_calendar_on_its_own_server_and_stops_cleanly(tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    database = f"sqlite:///{tmp_path / 'ops.db'}"
    env = serve_env(tmp_path, database)
    subprocess.run([sys.executable, "-m", "opsaudit", "init", "--demo"], env=env, check=True, capture_output=True,
                   cwd=tmp_path, timeout=600)
    expected = json.loads(subprocess.run([sys.executable, "-m", "opsaudit", "schedules", "--format", "json"], env=env,
                                         check=True, capture_output=True, text=True).stdout)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "serve.log"
    with serving(["--port", str(port)], env, log) as process:
        assert f"Prefect控制台：http://127.0.0.1:{port}" in log.read_text()
        assert "个部署并开始按计划运行，按Ctrl-C停止。" in log.read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200   # the UI
        served = read_deployments(api_url)
        assert sorted(served) == sorted(row["name"] for row in expected)
        for row in expected:
            deployment = served[row["name"]]
            assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules] == (
                [(row["cron"], row["timezone"], True)] if row["cron"] else [])
            assert deployment.entrypoint == next(e.flow for e in REGISTRY if e.audit == row["audit"]).replace(":", ".")

        flow_run = run_and_wait(api_url, "cs-monthly/cs-monthly")
        assert flow_run.state.is_completed(), flow_run.state
        last_month = previous("month", datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None))
        assert flow_run.name == f"cs-monthly {last_month.label}"

        # A special audit as a person starts it in the UI: a custom run of `special`, and its artifacts.
        days = {"first_day": last_month.start.date().isoformat(),
                "last_day": (last_month.end - timedelta(days=1)).date().isoformat()}
        special = run_and_wait(api_url, "special/special", parameters={"request": {
            "areas": ["customer_service"], "departments": ["CS2"], "reason": "online complaints", **days}})
        assert special.state.is_completed(), special.state
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            shown = artifacts(special.id)
        assert {"special-summary", "special-findings", "special-report"} <= set(shown)
        assert "- **专项稽查原因**：online complaints" in shown["special-summary"].data

        # Stopped in the middle of an audit, serve cancels it: the store records it interrupted.
        run_and_wait(api_url, "data-quarterly/data-quarterly", timeout=0)
        wait_for_status(database, "data-quarterly", "running")
        started = descendants(process.pid)
        assert [pid for pid in started if b"uvicorn" in command_line(pid)], "serve started no Prefect server"
        # The audit's next write waits for the store meanwhile, so that it cannot finish first on a busy machine.
        # Ctrl-C only once it waits there: a SIGTERM that Python handles inside a weakref callback, as
        # importing Great Expectations runs thousands of, is printed as ignored, and the audit would
        # stop only at its next step (stop_if_told), after the write this test holds.
        with writes_held(tmp_path / "ops.db"):
            time.sleep(15)
            process.send_signal(signal.SIGINT)   # Ctrl-C, as a person stops serve
            time.sleep(10)
        assert process.wait(timeout=120) == 0, log.read_text(errors="replace")
        output = log.read_text(errors="replace")
    assert output.rstrip().endswith("已停止运行。")
    assert not listening(port)
    assert not [pid for pid in started if alive(pid)]
    assert wait_for_status(database, "data-quarterly", "interrupted", timeout=0) == "interrupted (Ctrl-C or SIGTERM)"

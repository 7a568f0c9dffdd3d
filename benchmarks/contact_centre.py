"""`opsaudit run cs-monthly` on a company shaped like a real contact centre, on the local PostgreSQL.

20 departments of 100 agents (2,000 agents), tickets opened in October 2026 with realistic rates
(about 62% of rated tickets satisfied, first responses exponential with a 25-minute mean), so most
agents fail a rule and an audit records thousands of findings. For comparison, the demo's shape:
4 departments of 20 agents. For each shape and size the audit runs in a fresh process, which
reports the SQL statements it sent, the time of each Prefect task, its whole time and its own
peak RSS; one aggregate scan of the month is timed in psql in the same run.

    .venv/bin/python benchmarks/contact_centre.py [--sizes 10000,1000000,10000000]

Targets (issue 10): statements independent of the number of findings; fixed cost with 2,000
agents at most 1.5 x that with 86 staff; marginal cost per 1M tickets at most 3 x the scan;
peak RSS at most 400 MB; 10M tickets measured (goal under 60 s).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from opsaudit.store.create_database import ensure_database

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/opsaudit_bench_cc"
NOW = "2026-11-02T09:00:00+08:00"
OCTOBER = (datetime(2026, 10, 1), datetime(2026, 11, 1))
CHANNELS = np.array(["phone", "chat", "email", "web", "onsite"])
CHANNEL_SHARE = [0.40, 0.30, 0.15, 0.10, 0.05]
KINDS = np.array(["consultation", "complaint", "application"])
KIND_SHARE = [0.70, 0.10, 0.20]
SHAPES = {"contact centre": (20, 100), "demo": (4, 20)}


def build_company(url: str, departments: int, agents: int, tickets: int, seed: int = 7) -> float:
    """The company's directory and `tickets` tickets of October; returns the load time."""
    from opsaudit.contract import metadata
    from opsaudit.store.schema import VERSION_TABLE
    from opsaudit.store.schema import metadata as store

    engine = sa.create_engine(url)
    with engine.begin() as conn:   # a fresh store: every table of the schema, its triggers with them
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {', '.join([*store.tables, VERSION_TABLE])} CASCADE"))
        conn.execute(sa.text("DROP FUNCTION IF EXISTS oa_refuse_change()"))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    with engine.begin() as conn:
        conn.execute(metadata.tables["departments"].insert(), [
            {"department_id": "OPS", "name": "运营部", "parent_id": None, "head_id": "M0000"},
            *({"department_id": f"D{d:02d}", "name": f"客服{d + 1}部", "parent_id": "OPS", "head_id": f"M{d + 1:04d}"}
              for d in range(departments))])
        people = [{"staff_id": f"M{d:04d}", "name": f"经理{d}", "department_id": "OPS" if d == 0 else f"D{d - 1:02d}",
                   "role": "manager", "email": None, "active": True} for d in range(departments + 1)]
        people += [{"staff_id": f"A{i:05d}", "name": f"客服{i}", "department_id": f"D{i // agents:02d}",
                    "role": "agent", "email": None, "active": True} for i in range(departments * agents)]
        conn.execute(metadata.tables["staff"].insert(), people)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for first in range(0, tickets, 500_000):
            block = _tickets(rng, first, min(500_000, tickets - first), departments, agents)
            with cursor.copy("COPY tickets FROM STDIN WITH (FORMAT csv, NULL '')") as copy:
                copy.write(block)
        raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    engine.dispose()
    from opsaudit.db import store_engine
    from opsaudit.store.migrate import upgrade

    upgrade(store_engine(url))
    return time.perf_counter() - started


def _tickets(rng: np.random.Generator, first: int, n: int, departments: int, agents: int) -> str:
    """n tickets as CSV in the contract's column order."""
    seconds = int((OCTOBER[1] - OCTOBER[0]).total_seconds())
    opened = np.datetime64(OCTOBER[0]) + rng.integers(0, seconds, n).astype("timedelta64[s]")
    agent = rng.integers(0, departments * agents, n)
    department = agent // agents
    response = opened + (rng.exponential(25 * 60, n)).astype("timedelta64[s]")
    resolved = response + (rng.exponential(4 * 3600, n)).astype("timedelta64[s]")
    state = rng.choice(3, n, p=[0.90, 0.05, 0.05])   # resolved, closed, in progress
    rated = (state < 2) & (rng.random(n) < 0.6)
    satisfied = rng.random(n) < 0.62
    score = np.where(satisfied, rng.integers(4, 6, n), rng.integers(1, 4, n))
    revisited = resolved + (rng.exponential(12 * 3600, n)).astype("timedelta64[s]")
    out = io.StringIO()
    channels, kinds = rng.choice(CHANNELS, n, p=CHANNEL_SHARE), rng.choice(KINDS, n, p=KIND_SHARE)
    statuses = np.array(["resolved", "closed", "in_progress"])[state]
    done = state < 2
    for i in range(n):
        out.write(f"T{first + i:09d},{kinds[i]},{channels[i]},D{department[i]:02d},A{agent[i]:05d},{opened[i]},"
                  f"{response[i]},{resolved[i] if done[i] else ''},{resolved[i] if state[i] == 1 else ''},"
                  f"{statuses[i]},{score[i] if rated[i] else ''},{revisited[i] if done[i] else ''},0\n")
    return out.getvalue()


def psql_scan_seconds(url: str) -> float:
    """Best of three: one aggregate scan of October's tickets, timed by psql itself."""
    parsed = make_url(url)
    sql = ("\\timing on\nSELECT count(*), count(*) FILTER (WHERE satisfaction >= 4), "
           "avg(extract(epoch FROM first_response_at - opened_at)) FROM tickets "
           "WHERE opened_at >= '2026-10-01' AND opened_at < '2026-11-01';")
    times = []
    for _ in range(3):
        result = subprocess.run(["psql", "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432),
                                 "-U", parsed.username or "postgres", "-d", parsed.database, "-q"],
                                input=sql, capture_output=True, text=True, check=True)
        times.append(float(re.search(r"Time: ([\d.]+) ms", result.stdout).group(1)) / 1000)
    return min(times)


def measure(url: str, out: Path) -> dict:
    """Run cs-monthly once in this process, as `opsaudit run` does; what it cost."""
    (out / "no-config").mkdir(parents=True, exist_ok=True)
    os.environ.update({"OPSAUDIT_DATABASE_URL": url, "OPSAUDIT_OUTPUT_DIR": str(out),
                       "OPSAUDIT_CONFIG_DIR": str(out / "no-config"),
                       "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"})
    statements: list[str] = []
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    from opsaudit.flows.audits import cs_monthly
    from opsaudit.flows.server import prefect_api

    with prefect_api():
        started = time.perf_counter()
        summary = cs_monthly(period="2026-10", now=datetime.fromisoformat(NOW))
        elapsed = time.perf_counter() - started
        tasks = _task_times(summary["audit_run_id"], url)
    return {"seconds": elapsed, "statements": len(statements), "tasks": tasks,
            "findings": summary["findings"], "problems": summary["problems"],
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, the high-water mark of its own memory map on Linux.

    Not ru_maxrss: execve folds the RSS of the memory map it replaces into it, and the map a
    child replaces is its parent's (Python spawns with vfork), which has just built a million
    tickets in numpy. That made the audit's peak read 70 MB high.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _task_times(run_id: str, url: str) -> dict[str, float]:
    """Seconds per task of the run's flow, as Prefect recorded them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        flow_run = conn.execute(sa.text("SELECT flow_run_id FROM oa_audit_runs WHERE id = :id"),
                                {"id": run_id}).scalar()
    engine.dispose()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run])))
    times: dict[str, float] = {}
    for task_run in runs:
        name = task_run.name.rsplit("-", 1)[0]
        times[name] = times.get(name, 0.0) + (task_run.total_run_time.total_seconds())
    return dict(sorted(times.items(), key=lambda item: -item[1]))


def run_measured(url: str, out: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--measure", "--url", url, "--out", str(out)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--sizes", default="10000,1000000", help="ticket counts of the contact centre, smallest first")
    parser.add_argument("--out", type=Path, default=Path("out/benchmark"))
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.url, args.out)))
        return
    ensure_database(args.url)
    sizes = [int(size) for size in args.sizes.split(",")]
    results: dict[tuple[str, int], dict] = {}
    plan = [("demo", sizes[0])] + [("contact centre", size) for size in sizes]
    for shape, size in plan:
        departments, agents = SHAPES[shape]
        load = build_company(args.url, departments, agents, size)
        scan = psql_scan_seconds(args.url)
        result = run_measured(args.url, args.out) | {"load": load, "scan": scan}
        results[(shape, size)] = result
        tasks = ", ".join(f"{name} {seconds:.2f}" for name, seconds in result["tasks"].items())
        print(f"{shape}, {departments * agents:,} agents, {size:,} tickets: loaded in {load:.1f} s; "
              f"audit {result['seconds']:.1f} s, {result['statements']} statements, findings {result['findings']}, "
              f"peak RSS {result['peak_rss_mb']:.0f} MB; psql scan {scan:.3f} s; tasks: {tasks}", flush=True)
    small = results[("contact centre", sizes[0])]
    print(f"fixed cost, 2,000 agents vs the demo's shape on {sizes[0]:,} tickets: {small['seconds']:.1f} s vs "
          f"{results[('demo', sizes[0])]['seconds']:.1f} s = "
          f"{small['seconds'] / results[('demo', sizes[0])]['seconds']:.2f} x (target <= 1.5)")
    for size in sizes[1:]:
        large = results[("contact centre", size)]
        marginal = (large["seconds"] - small["seconds"]) * 1_000_000 / (size - sizes[0])
        per_million_scan = large["scan"] * 1_000_000 / size
        print(f"{size:,} tickets: marginal {marginal:.2f} s per 1M tickets = {marginal / per_million_scan:.1f} x the "
              f"scan of 1M ({per_million_scan:.3f} s) (target <= 3); statements {large['statements']} vs "
              f"{small['statements']} on {sizes[0]:,}; peak RSS {large['peak_rss_mb']:.0f} MB (target <= 400)")
    # Between two large sizes the findings hardly change: the cost of the tickets alone.
    for lower, upper in zip(sizes[1:], sizes[2:], strict=False):
        low, high = results[("contact centre", lower)], results[("contact centre", upper)]
        marginal = (high["seconds"] - low["seconds"]) * 1_000_000 / (upper - lower)
        per_million_scan = high["scan"] * 1_000_000 / upper
        print(f"{lower:,} -> {upper:,} tickets: marginal {marginal:.2f} s per 1M tickets = "
              f"{marginal / per_million_scan:.1f} x the scan of 1M ({per_million_scan:.3f} s)")


if __name__ == "__main__":
    main()

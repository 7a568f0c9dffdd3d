"""How long `opsaudit web` takes to answer *my work* (`/`) and a finding's page at a contact
centre's size, on SQLite and the local PostgreSQL: the server's time, through the ASGI app.

Builds a company of N agents in D departments (the operations department: manager M1, deputy M2,
auditor A1, the audit lead), two months of findings, one per agent per month (general, important
and major in turn, spread over the lifecycle's states), then asks each page R times as each role
and prints the median and the 95th percentile.

    .venv/bin/python benchmarks/web_inbox.py [--agents 2000] [--departments 20] [--repeat 40] [--url URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi.testclient import TestClient
from mail_delivery import private_schema  # this folder is on sys.path when a benchmark runs

from opsaudit.checks.results import CheckResult, Outcome, Severity
from opsaudit.config.loader import load_config
from opsaudit.contract import departments, staff
from opsaudit.contract import metadata as contract
from opsaudit.db import create_engine
from opsaudit.periods import parse_period
from opsaudit.settings import load_settings
from opsaudit.store import findings as store_findings
from opsaudit.store import runs
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import findings
from opsaudit.web import security, sessions
from opsaudit.web.app import create_app
from opsaudit.web.context import SESSION_COOKIE

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/opsaudit_bench"
ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 10, tzinfo=ZONE)  # some findings of October are overdue by then
STATES = ("open", "plan_submitted", "plan_approved", "in_progress", "submitted", "verified", "closed")
SEVERITIES = (Severity.GENERAL, Severity.IMPORTANT, Severity.MAJOR)
# Who asks: the operations manager, the audit lead, a department's head, one of its agents.
ROLES = (("operations manager", "M1"), ("audit lead", "A1"), ("department head", "H03"), ("owner", "S0003"))


def company(engine: sa.Engine, agents: int, department_count: int) -> None:
    contract.create_all(engine, tables=[departments, staff])
    names = [f"D{d:02d}" for d in range(department_count)]
    people = [{"staff_id": staff_id, "name": name, "department_id": "OPS", "role": role,
               "email": f"{staff_id.lower()}@example.com", "active": True}
              for staff_id, name, role in (("M1", "运营部经理", "manager"), ("M2", "运营部副经理", "deputy_manager"),
                                           ("A1", "稽查员", "auditor"))]
    people += [{"staff_id": f"H{d[1:]}", "name": f"负责人{d}", "department_id": d, "role": "manager",
                "email": f"h{d[1:]}@example.com", "active": True} for d in names]
    people += [{"staff_id": f"S{i:04d}", "name": f"客服{i}", "department_id": names[i % department_count],
                "role": "agent", "email": f"s{i:04d}@example.com", "active": True} for i in range(agents)]
    with engine.begin() as conn:
        conn.execute(departments.insert(), [{"department_id": "OPS", "name": "运营部", "parent_id": None,
                                             "head_id": "M1"}] +
                     [{"department_id": d, "name": f"客服{d}部", "parent_id": None, "head_id": f"H{d[1:]}"}
                      for d in names])
        conn.execute(staff.insert(), people)


def agent_findings(engine: sa.Engine, agents: int, department_count: int, period: str, found: datetime) -> None:
    """One finding per agent for `period`, severities in turn, then states spread over the lifecycle."""
    results = []
    for i in range(agents):
        department = f"D{i % department_count:02d}"
        results.append(CheckResult(
            "cs.satisfaction_rate", "customer_service", "agent", f"S{i:04d}", Outcome.FAILED,
            SEVERITIES[i % 3], department_id=department, owner_id=f"S{i:04d}", observed=0.8, target=0.9,
            population=40, facts={"period": period, "department_id": department, "agent_id": f"S{i:04d}",
                                  "observed": 0.8, "target": 0.9, "population": 40, "unit": "rate",
                                  "op": "at_least", "gap": -0.1, "failures": 8},
            evidence={"query": "SELECT 1", "sample_ids": []}))
    with engine.begin() as conn:
        run = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period(period), parameters={},
                             config_hash="bench")
        runs.finish_run(conn, run.id, status="succeeded")
        store_findings.record_findings(conn, run, results, found_at=found,
                                       deadlines=load_config(None).thresholds.deadlines, recurrence_periods=2,
                                       config_hash="bench", zone=ZONE)
        ids = conn.execute(sa.select(findings.c.id).where(findings.c.audit_run_id == run.id)
                           .order_by(findings.c.entity_id)).scalars().all()
        for n, state in enumerate(STATES):
            conn.execute(findings.update().where(findings.c.id.in_(ids[n::len(STATES)])).values(status=state))


def browser(app: object, engine: sa.Engine, key: bytes, staff_id: str) -> TestClient:
    """A client with a live session of staff_id (started in the store, as a mailed link does)."""
    with engine.begin() as conn:
        session_id = sessions.start_session(conn, staff_id, NOW)
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, security.sign(key, "session", session_id))
    return client


def timings(client: TestClient, path: str, repeat: int) -> str:
    """`median 41 ms, p95 55 ms`, after one request to warm the caches."""
    assert client.get(path).status_code == 200, path
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path)
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 200, path
    p95 = statistics.quantiles(seconds, n=20)[-1]
    return f"median {statistics.median(seconds) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


def measure(label: str, url: str, agents: int, department_count: int, repeat: int) -> None:
    engine = create_engine(url, purpose="store")
    company(engine, agents, department_count)
    upgrade(engine)
    agent_findings(engine, agents, department_count, "2026-09", NOW - timedelta(days=50))
    agent_findings(engine, agents, department_count, "2026-10", NOW - timedelta(days=18))
    settings = load_settings(database_url=url, web_secret="bench-secret-0123456789")
    started = time.monotonic()  # the app's clock runs from NOW, so the directory it keeps ages as in service
    app = create_app(settings, clock=lambda: NOW + timedelta(seconds=time.monotonic() - started))
    key = security.signing_key(settings)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(findings)).scalar_one()
        major = conn.execute(sa.select(findings.c.id).where(findings.c.severity == "major",
                                                            findings.c.department_id == "D03")).scalars().first()
    print(f"{label} ({agents:,} agents, {total:,} findings, {repeat} requests each):")
    for role, staff_id in ROLES:
        print(f"  / as the {role + ':':<20} {timings(browser(app, engine, key, staff_id), '/', repeat)}")
    finding = timings(browser(app, engine, key, "H03"), f"/findings/{major}", repeat)
    print(f"  /findings/<id> of a major finding, its department's head: {finding}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--departments", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--url", default=DEFAULT_PG, help="a PostgreSQL database; a private schema is used")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        measure("SQLite", f"sqlite:///{folder}/ops.db", args.agents, args.departments, args.repeat)
    with private_schema(args.url) as url:
        measure("PostgreSQL", url, args.agents, args.departments, args.repeat)


if __name__ == "__main__":
    main()

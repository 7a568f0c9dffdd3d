"""How `opsaudit run cs-monthly` scales with the ticket table, on the local PostgreSQL.

Loads the demo company with 10k and then 1M tickets, runs the audit on each in a fresh process,
times one aggregate scan of the large table in psql, and prints the marginal time per 1M tickets
(1M run minus 10k run), its ratio to the scan, and the audit's peak RSS.

    .venv/bin/python benchmarks/audit_scaling.py [--url postgresql+psycopg://postgres@127.0.0.1/opsaudit_bench]

Targets (issue 3): marginal time at most 10 times the scan; peak RSS at most 500 MB.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from opsaudit.db import create_engine
from opsaudit.demo import build_demo
from opsaudit.store.migrate import upgrade

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/opsaudit_bench"
AS_OF = datetime(2026, 11, 21)


def ensure_database(url: str) -> None:
    parsed = make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}).scalar():
            conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def load(url: str, tickets: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS oa_finding_events, oa_finding_notices, oa_major_handling, "
                             "oa_findings, oa_check_results, oa_samples, oa_reports, oa_outbox, oa_audit_runs, "
                             "oa_alembic_version CASCADE"))
        conn.execute(sa.text("DROP FUNCTION IF EXISTS oa_refuse_change() CASCADE"))
    started = time.perf_counter()
    build_demo(engine, as_of=AS_OF, total_tickets=tickets)
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
    upgrade(engine)
    print(f"loaded {tickets:,} tickets in {time.perf_counter() - started:.1f} s")
    engine.dispose()


def run_audit(url: str, out: Path) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one `opsaudit run cs-monthly` process."""
    env = {**os.environ, "OPSAUDIT_DATABASE_URL": url, "OPSAUDIT_OUTPUT_DIR": str(out),
           "OPSAUDIT_CONFIG_DIR": str(out / "no-config")}
    command = [str(Path(sys.executable).with_name("opsaudit")), "run", "cs-monthly", "--now", AS_OF.isoformat()]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"opsaudit run failed with status {os.waitstatus_to_exitcode(status)}")
    return elapsed, usage.ru_maxrss * 1024


def audit_work_seconds(url: str, repeat: int) -> float:
    """Fastest in-process time of the audit's database work: data quality, metrics, samples.

    The whole `opsaudit run` also starts Prefect's temporary server, whose start-up varies by
    about a second: more than the work that grows with the table. This isolates that work.
    """
    import great_expectations  # noqa: F401 - imported once, outside the timing

    from opsaudit.audit import build_context
    from opsaudit.checks import engine
    from opsaudit.checks.quality import run_data_quality
    from opsaudit.settings import load_settings

    os.environ["OPSAUDIT_DATABASE_URL"] = url
    context = build_context(load_settings(), "cs-monthly", now=AS_OF)
    tables = context.tables_read()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run_data_quality(context.source, tables, context.period, now=context.now)
        computation = engine.compute(context.source, context.rules, context.period, now=context.now,
                                     available=set(tables), all_rules={r.rule_id: r for r in context.all_rules})
        engine.collect_samples(context.source, computation, engine.evaluate(computation))
        timings.append(time.perf_counter() - started)
    context.source.engine.dispose()
    return min(timings)


def psql_scan_seconds(url: str) -> float:
    """Best of three: one aggregate scan of tickets, timed by psql itself."""
    parsed = make_url(url)
    sql = "\\timing on\nSELECT count(*), avg(satisfaction), max(opened_at) FROM tickets;"
    times = []
    for _ in range(3):
        result = subprocess.run(["psql", "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432),
                                 "-U", parsed.username or "postgres", "-d", parsed.database, "-q"],
                                input=sql, capture_output=True, text=True, check=True)
        times.append(float(re.search(r"Time: ([\d.]+) ms", result.stdout).group(1)) / 1000)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("out/benchmark"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the fastest counts")
    args = parser.parse_args()
    ensure_database(args.url)
    runs, work = {}, {}
    for size in (args.small, args.large):
        load(args.url, size)
        work[size] = audit_work_seconds(args.url, args.repeat)
        print(f"database work of cs-monthly on {size:,} tickets: {work[size]:.2f} s (fastest of {args.repeat})")
        # Start-up (Prefect's temporary server, imports) varies by a second or so; the fastest of a
        # few runs shows the work that depends on the table.
        timings = [run_audit(args.url, args.out) for _ in range(args.repeat)]
        runs[size] = (min(t for t, _ in timings), max(rss for _, rss in timings))
        print(f"cs-monthly on {size:,} tickets: {', '.join(f'{t:.1f}' for t, _ in timings)} s "
              f"(fastest {runs[size][0]:.1f} s), peak RSS {runs[size][1] / 2**20:.0f} MB")
    scan = psql_scan_seconds(args.url)
    per_million = 1_000_000 / (args.large - args.small)
    marginal = (runs[args.large][0] - runs[args.small][0]) * per_million
    marginal_work = (work[args.large] - work[args.small]) * per_million
    peak = max(rss for _, rss in runs.values())
    print(f"aggregate scan of {args.large:,} tickets in psql: {scan:.3f} s")
    print(f"marginal time per 1M tickets, whole runs: {marginal:.1f} s = {marginal / scan:.1f} x the scan "
          "(start-up jitter is about 1 s)")
    print(f"marginal time per 1M tickets, database work: {marginal_work:.2f} s = {marginal_work / scan:.1f} x "
          "the scan (target <= 10)")
    print(f"peak RSS: {peak / 2**20:.0f} MB (target <= 500)")


if __name__ == "__main__":
    main()

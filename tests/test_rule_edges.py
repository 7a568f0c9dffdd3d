"""Bad and awkward data in the rules' inputs: never a crash, never a problem that is not there."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from builders import Dataset, by_entity, run_rule

from opsaudit.checks.results import Outcome
from opsaudit.contract import metadata
from opsaudit.db import create_engine
from opsaudit.settings import mask_url

QUARTER = "2026Q3"
QUARTER_NOW = datetime(2026, 10, 2)


def load(engine: sa.Engine, data: Dataset, *, lax: bool = False) -> None:
    """Create the contract tables and insert; `lax` lets two numbers be null, as a real source may."""
    tables = [t for t in metadata.sorted_tables if not lax or t.name not in ("plan_targets", "reported_metrics")]
    metadata.create_all(engine, tables=tables)
    if lax:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE plan_targets (plan_id VARCHAR(64), metric VARCHAR(128), "
                                 "unit VARCHAR(32), baseline FLOAT, target FLOAT, actual FLOAT, "
                                 "higher_is_better BOOLEAN)"))
            conn.execute(sa.text("CREATE TABLE reported_metrics (report_id VARCHAR(64), metric VARCHAR(64), "
                                 "department_id VARCHAR(64), period VARCHAR(16), value FLOAT)"))
    data.insert(engine)


def test_a_follow_up_window_still_open_is_not_judged_yet(engine):
    data = Dataset()
    end = datetime(2026, 11, 1)
    for i in range(30):   # resolved long ago and never followed up: a real miss
        data.ticket(f"OLD{i:02d}", opened_at=datetime(2026, 10, 3, 9), revisited_at=None)
    for i in range(30):   # resolved two days before the audit: the 7 days are not over
        data.ticket(f"NEW{i:02d}", department_id="D2", opened_at=end - timedelta(days=3),
                    resolved_at=end - timedelta(days=2, hours=16), revisited_at=None)
    load(engine, data)
    results = by_entity(run_rule(engine, "cs.revisit_rate", now=end + timedelta(hours=8)), "department")
    assert results["D1"].outcome is Outcome.FAILED and results["D1"].population == 30
    assert results["D2"].outcome is Outcome.INSUFFICIENT_DATA and results["D2"].population == 0


def test_null_targets_and_values_are_skipped_not_fatal(engine):
    data = Dataset()
    data.plan("P1", submitted_at=datetime(2026, 8, 25))
    data.target("P1", "calls", target=None)
    data.target("P1", "visits", baseline=100.0, target=300.0)
    data.report("R1")
    data.reported("R1", "ticket_count", None)
    data.reported("R1", "revenue", 5.0)                      # not a recomputable metric
    data.reported("R1", "complaint_count", 3.0, period="2026-13")   # not a period
    load(engine, data, lax=True)
    targets = by_entity(run_rule(engine, "plan.target_unreasonable", period=QUARTER, now=QUARTER_NOW))
    assert set(targets) == {"P1/visits"}
    assert by_entity(run_rule(engine, "data.metric_mismatch", period=QUARTER, now=QUARTER_NOW)) == {}


def test_an_unapproved_plan_is_judged_once_in_the_period_its_window_closed(engine):
    data = Dataset()
    data.plan("LATE_JUNE", submitted_at=datetime(2026, 6, 25), approved_by=None, approved_at=None, status="submitted")
    data.plan("EARLY_SEPT", submitted_at=datetime(2026, 9, 5), approved_by=None, approved_at=None, status="submitted")
    data.plan("LATE_SEPT", submitted_at=datetime(2026, 9, 25), approved_by=None, approved_at=None, status="submitted")
    load(engine, data)
    found = by_entity(run_rule(engine, "plan.unapproved", period=QUARTER, now=QUARTER_NOW))
    assert set(found) == {"LATE_JUNE", "EARLY_SEPT"}
    next_quarter = by_entity(run_rule(engine, "plan.unapproved", period="2026Q4", now=datetime(2027, 1, 1, 8)))
    assert set(next_quarter) == {"LATE_SEPT"}


def test_secrets_in_a_url_query_are_masked():
    masked = mask_url("postgresql+psycopg://audit:hunter2@db/ops?password=s3cret&sslpassword=x&sslmode=require")
    assert "hunter2" not in masked and "s3cret" not in masked and "sslpassword=x" not in masked
    assert "sslmode=require" in masked


def test_timestamptz_columns_are_read_in_the_configured_zone(pg_database):
    engine = create_engine(pg_database, timezone="Asia/Shanghai")
    with engine.connect() as conn:
        inside = conn.execute(sa.text(
            "SELECT CAST('2026-11-01 05:00+08' AS timestamptz) >= CAST('2026-11-01 00:00' AS timestamp)")).scalar()
    engine.dispose()
    assert inside   # 05:00 in Shanghai on 1 November belongs to November, not October

"""The audit store on SQLite and PostgreSQL: migrations, append-only events, idempotent findings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from opsaudit.checks.results import CheckResult, Outcome, Severity
from opsaudit.config.models import Deadlines
from opsaudit.contract import metadata as contract_metadata
from opsaudit.db import store_engine
from opsaudit.periods import parse_period
from opsaudit.store import findings as store_findings
from opsaudit.store import runs
from opsaudit.store.finding_views import FINDING_KEYS, finding_json, list_findings
from opsaudit.store.migrate import current_revision, head_revision, require_current, upgrade
from opsaudit.store.schema import (
    VERSION_TABLE,
    audit_runs,
    check_results,
    finding_events,
    finding_notices,
    findings,
    major_handling,
)
from opsaudit.store.schema import metadata as store_metadata

ZONE = ZoneInfo("Asia/Shanghai")
FOUND = datetime(2026, 11, 1, 9, 0, 3, tzinfo=ZONE)


def test_contract_tables_create_on_both_databases(engine):
    contract_metadata.create_all(engine)
    assert set(contract_metadata.tables) <= set(sa.inspect(engine).get_table_names())


def test_migrations_create_the_schema_the_models_describe(engine):
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, store_metadata) == []
    require_current(engine)
    assert upgrade(engine) == head_revision()  # upgrading again is a no-op


def test_store_refuses_use_before_init(engine):
    from opsaudit.errors import StoreError

    with pytest.raises(StoreError, match="请运行 `opsaudit init`") as refused:
        require_current(engine)
    assert refused.value.text("en").endswith("run `opsaudit init`")


def failed(entity: str, severity: Severity = Severity.IMPORTANT, observed: float = 0.82) -> CheckResult:
    return CheckResult("cs.satisfaction_rate", "customer_service", "department", entity, Outcome.FAILED, severity,
                       department_id=entity, owner_id="S001", observed=observed, target=0.9, population=412,
                       facts={"period": "2026-10", "department_id": entity, "department_name": f"Dept {entity}",
                              "observed": observed, "target": 0.9, "population": 412, "failures": 74,
                              "gap": round(observed - 0.9, 6), "unit": "rate", "op": "at_least"},
                       evidence={"query": "SELECT 1", "sample_ids": ["T1"]})


def record(conn, run, results, found_at=FOUND):
    return store_findings.record_findings(conn, run, results, found_at=found_at, deadlines=Deadlines(),
                                          recurrence_periods=2, config_hash="abc", zone=ZONE)


def new_run(conn, label="2026-10"):
    """A run of the period, already finished: these tests record findings for several runs of one period."""
    run = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period(label), parameters={},
                         config_hash="abc")
    runs.finish_run(conn, run.id, status="succeeded")
    return run


# What refers to the findings: revision 0009 copies oa_findings on SQLite and must leave these whole.
KEPT = (findings, finding_events, major_handling, finding_notices)


def kept_rows(engine: sa.Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))]
                for table in KEPT}


def schema_beside_findings(engine: sa.Engine) -> list[tuple]:
    """The other tables' definitions, indexes and triggers (SQLite), or their foreign keys (PostgreSQL)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master WHERE tbl_name <> 'oa_findings' "
                                        "ORDER BY name").all()
    inspector = sa.inspect(engine)
    return [(table.name, inspector.get_foreign_keys(table.name)) for table in KEPT[1:]]


@pytest.fixture
def store(db_url) -> Iterator[sa.Engine]:
    """The store's own engine: SQLite with the pragmas it sets, foreign keys as it leaves them."""
    engine = store_engine(db_url)
    yield engine
    engine.dispose()


def test_0009_keeps_every_finding_and_event_the_append_only_events_and_the_rules_key(store):
    """Revision 0009 drops the findings' unique key for manual findings: on SQLite by copying oa_findings."""
    upgrade(store, "0008")
    with store.begin() as conn:
        record(conn, new_run(conn), [failed("D03"), failed("D04", Severity.GENERAL, 0.87)])
        d03 = conn.execute(sa.select(findings.c.id).where(findings.c.entity_id == "D03")).scalar_one()
        conn.execute(major_handling.insert().values(finding_id=d03, meeting_note="专题会", updated_at=FOUND,
                                                    updated_by="M1"))
        conn.execute(finding_notices.insert().values(finding_id=d03, step="remind:7", deadline=FOUND, at=FOUND))
    before, schema = kept_rows(store), schema_beside_findings(store)
    assert upgrade(store) == head_revision()
    assert kept_rows(store) == before and schema_beside_findings(store) == schema
    assert len(before["oa_findings"]) == 2 and len(before["oa_finding_events"]) == 2
    if store.dialect.name == "sqlite":
        with store.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    for change in (finding_events.update().values(note="rewritten history"), finding_events.delete()):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.begin() as conn:
            conn.execute(change)
    with store.begin() as conn:   # a rerun of the period still updates the rules' findings
        rerun = record(conn, new_run(conn), [failed("D03"), failed("D04", Severity.MAJOR, 0.70)])
    assert (rerun.raised, rerun.unchanged, rerun.updated) == (0, 1, 1)
    with store.connect() as conn:
        d04 = dict(conn.execute(sa.select(findings).where(findings.c.entity_id == "D04")).mappings().one())
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:   # the key still binds a rule's findings
        conn.execute(findings.insert().values({**d04, "id": "second-D04"}))
    manual = {**d04, "audit": "manual", "rule_id": "manual"}
    with store.begin() as conn:   # and no longer the manual ones
        conn.execute(findings.insert(), [{**manual, "id": "manual-1"}, {**manual, "id": "manual-2"}])


def test_rerun_of_a_period_updates_and_never_duplicates(engine):
    upgrade(engine)
    with engine.begin() as conn:
        first = record(conn, new_run(conn), [failed("D03"), failed("D04", Severity.GENERAL, 0.87)])
    with engine.begin() as conn:
        second = record(conn, new_run(conn), [failed("D03"), failed("D04", Severity.MAJOR, 0.70)])
    assert (first.raised, second.raised, second.unchanged, second.updated) == (2, 0, 1, 1)
    with engine.connect() as conn:
        rows = list_findings(conn)
        assert len(rows) == 2
        d04 = next(r for r in rows if r["entity_id"] == "D04")
        assert d04["severity"] == "major" and d04["observed"] == 0.70
        actions = conn.execute(sa.select(finding_events.c.action).where(finding_events.c.finding_id == d04["id"])
                               .order_by(finding_events.c.id)).scalars().all()
    assert actions == ["raised", "rechecked"]


def test_ids_of_the_operational_data_are_stored_whole_whatever_their_length(engine):
    """A real register names departments by sponsors' full names; the contract's ids are opaque text."""
    upgrade(engine)
    sponsor = "Responsible party of the National Institute of Allergy and Infectious Diseases (NIAID), USA"
    with engine.begin() as conn:
        run = new_run(conn)
        runs.save_results(conn, run.id, [failed(sponsor)])
        record(conn, run, [failed(sponsor)])
    with engine.connect() as conn:
        [row] = list_findings(conn)
        stored = conn.execute(sa.select(check_results.c.department_id)).scalar_one()
    assert len(sponsor) > 64 and row["entity_id"] == row["department_id"] == stored == sponsor


def test_deadlines_follow_severity(engine):
    upgrade(engine)
    with engine.begin() as conn:
        record(conn, new_run(conn), [failed("G", Severity.GENERAL), failed("I", Severity.IMPORTANT),
                                     failed("M", Severity.MAJOR)])
    with engine.connect() as conn:
        rows = {r["entity_id"]: r for r in list_findings(conn)}
    days = {key: (finding_json(row, ZONE)["due_at"], row["plan_due_at"]) for key, row in rows.items()}
    assert days["G"][0] == (FOUND + timedelta(days=15)).isoformat()
    assert days["I"][0] == (FOUND + timedelta(days=30)).isoformat()
    assert days["M"][0] == (FOUND + timedelta(days=30)).isoformat() and days["M"][1] is not None
    assert days["G"][1] is None


def test_finding_json_has_exactly_the_interface_shape(engine):
    upgrade(engine)
    with engine.begin() as conn:
        record(conn, new_run(conn), [failed("D03")])
    with engine.connect() as conn:
        data = finding_json(list_findings(conn)[0], ZONE)
    assert tuple(data) == FINDING_KEYS
    assert data["found_at"] == "2026-11-01T09:00:03+08:00"
    assert data["evidence"]["config_hash"] == "abc" and data["recurring"] is False
    assert (data["status"], data["severity"], data["owner_id"]) == ("open", "important", "S001")


def close(conn, entity: str, when: datetime) -> None:
    conn.execute(findings.update().where(findings.c.entity_id == entity)
                 .values(status="closed", closed_at=when.astimezone(UTC)))


def test_recurrence_within_two_periods_raises_one_level(engine):
    upgrade(engine)
    with engine.begin() as conn:
        record(conn, new_run(conn, "2026-07"), [failed("D03", Severity.GENERAL), failed("D04", Severity.GENERAL)])
        close(conn, "D03", datetime(2026, 8, 20, tzinfo=ZONE))   # closed within two months of 2026-10
        close(conn, "D04", datetime(2026, 7, 20, tzinfo=ZONE))   # closed before that window
    with engine.begin() as conn:
        summary = record(conn, new_run(conn, "2026-10"),
                         [failed("D03", Severity.GENERAL), failed("D04", Severity.GENERAL)])
    assert summary.recurring == 1
    with engine.connect() as conn:
        october = {r["entity_id"]: r for r in list_findings(conn) if r["period"] == "2026-10"}
    assert october["D03"]["recurring"] and october["D03"]["severity"] == "important"
    assert not october["D04"]["recurring"] and october["D04"]["severity"] == "general"


def test_finding_events_are_append_only(engine):
    upgrade(engine)
    with engine.begin() as conn:
        record(conn, new_run(conn), [failed("D03")])
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(finding_events.update().values(note="rewritten history"))


def test_results_of_a_run_are_stored_once(engine):
    upgrade(engine)
    passed = CheckResult("cs.handling_rate", "customer_service", "department", "D03", Outcome.PASSED)
    with engine.begin() as conn:
        run = new_run(conn)
        assert runs.save_results(conn, run.id, [passed, failed("D03")]) == 2
        assert runs.save_results(conn, run.id, [passed, failed("D03")]) == 2
        runs.finish_run(conn, run.id, status="succeeded", summary={"ok": True})
        assert conn.execute(sa.text("SELECT count(*) FROM oa_check_results")).scalar() == 2


def overdue(task: str, severity: Severity, days: float) -> CheckResult:
    return CheckResult("exec.overdue_task", "execution", "task", task, Outcome.FAILED, severity,
                       department_id="RND", owner_id="S020",
                       facts={"days_late": days, "priority": "critical", "status": "in_progress"},
                       evidence={"query": "SELECT 1", "sample_ids": [task]})


def test_a_problem_that_persists_is_one_finding_until_it_is_closed(engine):
    upgrade(engine)
    with engine.begin() as conn:
        record(conn, new_run(conn, "2026-09"), [overdue("T1", Severity.GENERAL, 10)])
    with engine.begin() as conn:   # still overdue a month later, and worse
        second = record(conn, new_run(conn, "2026-10"), [overdue("T1", Severity.MAJOR, 41)])
    assert (second.raised, second.updated) == (0, 1)
    with engine.connect() as conn:
        [row] = list_findings(conn)
        events = conn.execute(sa.select(finding_events.c.action, finding_events.c.data)
                              .order_by(finding_events.c.id)).all()
    assert (row["period"], row["last_period"], row["severity"]) == ("2026-09", "2026-10", "major")
    assert row["facts"]["days_late"] == 41
    assert [action for action, _ in events] == ["raised", "rechecked"]
    assert events[1].data["severity"] == {"from": "general", "to": "major"} and events[1].data["period"] == "2026-10"
    with engine.begin() as conn:
        close(conn, "T1", datetime(2026, 11, 5, tzinfo=ZONE))
    with engine.begin() as conn:   # overdue again after it was closed: a new finding, one level higher
        third = record(conn, new_run(conn, "2026-11"), [overdue("T1", Severity.GENERAL, 3)])
    assert (third.raised, third.recurring) == (1, 1)
    with engine.connect() as conn:
        rows = sorted(list_findings(conn), key=lambda r: r["period"])
    assert [(r["period"], r["status"], r["severity"], bool(r["recurring"])) for r in rows] == [
        ("2026-09", "closed", "major", False), ("2026-11", "open", "important", True)]


def test_rate_problems_stay_one_finding_per_period(engine):
    upgrade(engine)
    with engine.begin() as conn:
        record(conn, new_run(conn, "2026-09"), [failed("D03")])
    with engine.begin() as conn:
        record(conn, new_run(conn, "2026-10"), [failed("D03")])
    with engine.connect() as conn:
        assert sorted(r["period"] for r in list_findings(conn)) == ["2026-09", "2026-10"]


def test_one_audit_of_a_period_runs_at_a_time(engine):
    upgrade(engine)
    with engine.begin() as conn:
        first = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period("2026-10"),
                               parameters={}, config_hash="abc")
    with pytest.raises(runs.RunInProgress, match="cs-monthly 2026-10 is already being audited"), \
            engine.begin() as conn:
        runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period("2026-10"),
                       parameters={}, config_hash="abc")
    with engine.begin() as conn:   # another period, or the same one once the first has finished
        runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period("2026-09"),
                       parameters={}, config_hash="abc")
        runs.finish_run(conn, first.id, status="succeeded")
        runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period("2026-10"),
                       parameters={}, config_hash="abc")


def test_a_run_whose_process_is_gone_is_marked_abandoned(engine):
    upgrade(engine)
    with engine.begin() as conn:
        run = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period("2026-10"),
                             parameters={}, config_hash="abc")
        conn.execute(audit_runs.update().values(pid=2 ** 22 + 1))   # above pid_max: no such process
    with engine.begin() as conn:
        assert runs.mark_abandoned(conn) == 1
        status = conn.execute(sa.select(audit_runs.c.status).where(audit_runs.c.id == run.id)).scalar_one()
    assert status == "abandoned"


def test_recording_many_findings_sends_the_same_statements_as_recording_one(engine):
    upgrade(engine)
    counted: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: counted.append(args[2]))
    statements = []
    for label, size in (("2026-09", 1), ("2026-10", 2000)):
        with engine.begin() as conn:
            run = new_run(conn, label)
            counted.clear()
            summary = record(conn, run, [failed(f"A{i:04d}") for i in range(size)])
            statements.append(len(counted))
        assert summary.raised == size
    assert statements[0] == statements[1]

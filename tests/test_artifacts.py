"""The dashboard of every audit run: its summary, findings table and report link, read back through
the Prefect client; a failed run's cause in one line; I/O retried with backoff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from dashboard import artifacts, run_of, sqlite_company
from test_flows import company  # noqa: F401 - the fixture

from opsaudit.audit import build_context
from opsaudit.checks.results import CheckResult, Outcome, ResultSet, Severity
from opsaudit.settings import load_settings
from opsaudit.store.schema import audit_runs, findings
from opsaudit.tasks.artifacts import FINDINGS_SHOWN, KPIS_SHOWN, findings_rows, summary_markdown
from opsaudit.tasks.audit import IO_RETRIES, passing_failure

LEVELS = (Severity.GENERAL, Severity.IMPORTANT, Severity.MAJOR)


def satisfaction(entity_type: str, entity_id: str, observed: float, outcome: Outcome,
                 severity: Severity | None = None) -> CheckResult:
    department = entity_id if entity_type == "department" else None
    return CheckResult("cs.satisfaction_rate", "customer_service", entity_type, entity_id, outcome, severity,
                       department_id=department, owner_id="H1" if department else "M1", observed=observed,
                       target=0.9, population=100,
                       facts={"unit": "rate", "op": "at_least", "period": "2026-10", "observed": observed,
                              "target": 0.9, "department_name": f"Care {entity_id}" if department else None})


def overdue(task_id: str, severity: Severity) -> CheckResult:
    return CheckResult("exec.overdue_task", "execution", "task", task_id, Outcome.FAILED, severity,
                       department_id="D01", owner_id="O1", facts={"task_title": "Migrate", "days_late": 5})


def test_the_findings_table_shows_the_most_severe_first_capped_with_the_total():
    results = [overdue(f"K{i:03d}", LEVELS[i % 3]) for i in range(250)]
    results += [satisfaction("company", "company", 0.95, Outcome.PASSED)]

    rows, total = findings_rows(results, "en")

    assert (total, len(rows)) == (250, FINDINGS_SHOWN)
    severities = [row["Severity"] for row in rows]
    assert severities == ["Major problem"] * 83 + ["Important problem"] * 83 + ["General problem"] * 34
    assert rows[0] == {"Severity": "Major problem", "Finding": "Task overdue", "Audited item": "K002",
                       "Responsible department": "D01", "Observed": "—", "Target": "—", "Owner": "O1"}
    chinese, _ = findings_rows(results[:1], "zh-CN")
    assert list(chinese[0]) == ["问题等级", "问题", "稽查对象", "责任部门", "实际值", "目标值", "责任人"]


def test_the_summary_counts_problems_and_shows_kpis_against_targets_with_early_warnings():
    context = build_context(load_settings(), "cs-monthly", period="2026-10")
    results = [satisfaction("company", "company", 0.85, Outcome.FAILED, Severity.IMPORTANT)]
    results += [satisfaction("department", f"D{i:02d}", 0.91, Outcome.WARNING) for i in range(5)]
    results += [satisfaction("department", f"D{i:02d}", 0.70, Outcome.FAILED, Severity.MAJOR) for i in range(5, 8)]
    results += [satisfaction("department", f"D{i:02d}", 0.99, Outcome.PASSED) for i in range(8, 80)]
    summary = {"audit_run_id": "run-1", "problems": {"important": 1, "major": 3},
               "outcomes": {"passed": 72, "warning": 5, "failed": 4}}

    page = summary_markdown(context, ResultSet(results), summary, "en")

    assert page.startswith("# Monthly customer-service evaluation: October 2026\n")
    assert "- **Audit kind**: Periodic audit\n" in page and "- **Audit run**: `run-1`\n" in page
    assert "| Major problem | 3 |\n| Important problem | 1 |\n| General problem | 0 |\n| **Total** | **4** |" in page
    assert "Checks: 72 passed, 5 early warnings, 4 failed, 0 with insufficient data." in page
    rows = [line for line in page.splitlines() if line.startswith("| Customer satisfaction rate |")]
    assert len(rows) == KPIS_SHOWN
    assert rows[0] == "| Customer satisfaction rate | The whole company | 85.0% | at least 90.0% | Important problem |"
    assert "| Customer satisfaction rate | Care D05 (D05) | 70.0% | at least 90.0% | Major problem |" in rows
    assert "| Customer satisfaction rate | Care D00 (D00) | 91.0% | at least 90.0% | ⚠ Early warning |" in rows
    assert "5 KPIs are within their early warning band" in page
    assert f"{80 + 1 - KPIS_SHOWN} more KPIs are not listed" in page


@pytest.mark.usefixtures("prefect_harness")
def test_every_run_publishes_its_summary_findings_and_report_link(company):  # noqa: F811
    from opsaudit.flows.audits import cs_monthly

    state = cs_monthly(period="2026-10", return_state=True)

    summary, run = state.result(), run_of(state)
    shown = artifacts(run.id)
    assert set(shown) == {"cs-monthly-summary", "cs-monthly-findings", "cs-monthly-report"}
    page = shown["cs-monthly-summary"].data
    assert page.startswith("# 客户服务月度全面评估：2026年10月\n")
    names = {"major": "重大问题", "important": "重要问题", "general": "一般问题"}
    for severity, name in names.items():
        assert f"| {name} | {summary['problems'].get(severity, 0)} |" in page
    assert "| 首次响应及时率 | CS two（D2） | 79.3% | 不低于95.0% | 重大问题 |" in page
    table = json.loads(shown["cs-monthly-findings"].data)
    with company.connect() as conn:
        recorded = conn.execute(sa.select(sa.func.count()).select_from(findings)).scalar()
    assert len(table) == recorded and f"显示{recorded}项，共{recorded}项" in shown["cs-monthly-findings"].description
    assert table[0]["问题等级"] == "重大问题"
    report = Path(summary["output"]).parent / "report.zh-CN.html"   # what the reporting step wrote
    assert report.is_file()
    link = shown["cs-monthly-report"]
    # A page of the web, for whoever opens the dashboard: not a path on the audit server.
    assert link.data == f"[客户服务月度全面评估稽查报告（2026年10月）](http://127.0.0.1:8400/reports/{summary['audit_run_id']})"


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_run_shows_its_cause_in_one_line_after_retrying_its_io(tmp_path, monkeypatch):
    from opsaudit.flows.audits import cs_monthly

    _, engine = sqlite_company(tmp_path, monkeypatch)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE oa_finding_events"))   # the store breaks mid-run

    state = cs_monthly(period="2026-10", return_state=True)

    run = run_of(state)
    assert run.state.is_failed()
    assert run.state.message.endswith("AuditFailed: OperationalError: (sqlite3.OperationalError) no such table: "
                                      "oa_finding_events")
    assert "\n" not in run.state.message
    [recording] = [t for t in task_runs_of(run.id) if t.name.startswith("record_findings")]
    assert recording.run_count == 1 + IO_RETRIES["retries"] and recording.state.is_failed()
    with engine.connect() as conn:
        status, error = conn.execute(sa.select(audit_runs.c.status, audit_runs.c.error)).one()
    assert status == "failed" and error.endswith("no such table: oa_finding_events")


def test_io_retries_back_off_and_spare_errors_opsaudit_diagnosed():
    from prefect.states import Failed

    from opsaudit.errors import SourceError

    assert IO_RETRIES["retry_delay_seconds"](3) == [2, 4, 8]
    assert passing_failure(None, None, Failed(data=OSError("connection reset")))
    assert not passing_failure(None, None, Failed(data=SourceError("database: tickets.ticket_id is missing")))


def test_every_kpi_has_a_name_in_both_languages():
    from builders import default_rules

    from opsaudit.i18n import LANGUAGES, has_message

    kpis = {rule.rule_id for rule in default_rules() if rule.is_aggregate}
    assert len(kpis) == 15
    assert [(kpi, language) for kpi in sorted(kpis) for language in LANGUAGES
            if not has_message(f"dashboard.kpi.{kpi}", language)] == []


@pytest.mark.usefixtures("prefect_harness")
def test_a_period_being_audited_refuses_a_second_run_at_once_in_one_line(tmp_path, monkeypatch):
    from opsaudit.flows.audits import cs_monthly
    from opsaudit.periods import parse_period
    from opsaudit.store import runs

    _, engine = sqlite_company(tmp_path, monkeypatch)
    with engine.begin() as conn:   # an audit of October running in a live process (this one)
        running = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period("2026-10"),
                                 parameters={}, config_hash="test")

    state = cs_monthly(period="2026-10", return_state=True)

    run = run_of(state)
    assert run.state.is_failed() and "\n" not in run.state.message
    assert f"RunInProgress: cs-monthly 2026-10 is already being audited (run {running.id}" in run.state.message
    [opening] = [t for t in task_runs_of(run.id) if t.name.startswith("open_run")]
    assert opening.run_count == 1   # not retried: waiting would not free the period
    with engine.connect() as conn:
        assert conn.execute(sa.select(audit_runs.c.id, audit_runs.c.status)).all() == [(running.id, "running")]
        assert conn.execute(sa.select(sa.func.count()).select_from(findings)).scalar() == 0


def task_runs_of(flow_run_id) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))

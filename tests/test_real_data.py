"""Acceptance on real data nobody here shaped (../shared/real-data), loaded unchanged into
PostgreSQL by scripts/load_real_data.py and read only through a source mapping
(config/examples/<data>/source.yaml), audited on the real clock; the figures are checked against
the CSV files themselves:

- a real IT service desk's ServiceNow event log, for the customer-service audit of March 2016;
- a real software company's task log (SiP), for the execution audit of November 2007."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.test_cli import opsaudit

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "real-data"
LOG = REAL_DATA / "servicenow_incident_event_log.csv.gz"
EXAMPLES = ROOT / "config" / "examples"

pytestmark = [pytest.mark.usefixtures("prefect_harness"),
              pytest.mark.skipif(not REAL_DATA.exists(), reason=f"{REAL_DATA} is not there (../shared)")]


def load_and_map(name: str, url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Data set `name` loaded as it is, the store created, and opsaudit pointed at it by its mapping."""
    loaded = subprocess.run([sys.executable, str(ROOT / "scripts" / "load_real_data.py"), name, url],
                            capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", url)
    monkeypatch.setenv("OPSAUDIT_CONFIG_DIR", str(EXAMPLES / name))
    assert opsaudit("init").returncode == 0
    return loaded.stdout


def incidents_as_last_updated() -> dict[str, dict[str, str]]:
    """Each incident as its last update leaves it, read from the CSV here, apart from the mapping."""
    last: dict[str, dict[str, str]] = {}
    with gzip.open(LOG, "rt", encoding="utf-8", newline="") as source:
        for event in csv.DictReader(source):
            seen = last.get(event["number"])
            if seen is None or int(event["sys_mod_count"]) > int(seen["sys_mod_count"]):
                last[event["number"]] = event
    return last


def opened_in(incident: dict[str, str], month: str) -> bool:
    return f"{datetime.strptime(incident['opened_at'], '%d/%m/%Y %H:%M'):%Y-%m}" == month


def test_a_month_of_a_real_service_desk_is_audited_from_its_own_records(pg_url, monkeypatch):
    from opsaudit.flows.audits import cs_monthly

    assert load_and_map("servicenow", pg_url, monkeypatch) == "servicenow_incident_events: 119,998 rows\n"

    summary = cs_monthly(period="2016-03")   # no --now: the clock is today's, the month is 2016's

    march = [i for i in incidents_as_last_updated().values() if opened_in(i, "2016-03")]
    results = json.loads(Path(summary["output"]).read_text(encoding="utf-8"))["results"]
    by_key = {(r["rule_id"], r["entity_id"]): r for r in results}
    # Every incident opened in March is one ticket, and the mapping's "?" is a missing group: a
    # data-quality finding on the share the CSV itself gives, not a crash or a silent pass.
    ungrouped = by_key[("dq.not_null", "tickets.department_id")]
    assert ungrouped["population"] == len(march) == 8_995
    assert ungrouped["observed"] == pytest.approx(sum(i["assignment_group"] == "?" for i in march) / len(march))
    assert ungrouped["outcome"] == "failed" and ungrouped["severity"] == "major"
    # The log has no ratings: the satisfaction rules lack data; that is not a problem of the desk.
    assert {r["outcome"] for r in results if r["rule_id"] == "cs.satisfaction_rate"} == {"insufficient_data"}
    # The handling rule reads the log's own states: every incident of March ends closed.
    assert Counter(i["incident_state"] for i in march) == {"Closed": len(march)}
    assert by_key[("cs.handling_rate", "company")]["outcome"] == "passed"
    assert by_key[("cs.handling_rate", "company")]["observed"] == 1.0

    listed = opsaudit("findings", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    slow = [f for f in found if f["rule_id"] == "cs.first_response_rate" and f["entity_type"] == "department"]
    assert slow, "no department of the desk answered late: the mapping lost the first responses"
    # A group named with a figure reads apart from the month, and is not written twice.
    group = slow[0]
    assert group["description"].startswith(f"2016年3月，{group['entity_id']}受理工单"), group["description"]
    shown = opsaudit("findings", "show", group["id"])
    assert shown.returncode == 0 and f"{group['entity_id']}（{group['entity_id']}）" not in shown.stdout

    again = cs_monthly(period="2016-03")
    assert again["findings"]["raised"] == 0 and again["findings"]["unchanged"] == len(found)
    store = sa.create_engine(pg_url)
    with store.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM oa_findings")).scalar_one()
    store.dispose()
    assert stored == len(found)


def sip_tasks() -> dict[str, dict[str, str]]:
    """Each task of the SiP log once, its details and dates (every developer's row repeats them)."""
    def rows(name: str) -> dict[str, dict[str, str]]:
        with gzip.open(REAL_DATA / name, "rt", encoding="cp1252", newline="") as source:
            return {row["TaskNumber"]: row for row in csv.DictReader(source)}

    dates = rows("sip_est_act_dates.csv.gz")
    return {number: task | dates[number] for number, task in rows("sip_task_info.csv.gz").items()}


def test_a_month_of_a_real_task_log_is_audited_on_its_hours_and_its_gaps(pg_url, monkeypatch):
    from opsaudit.flows.audits import execution_monthly

    assert load_and_map("sip", pg_url, monkeypatch) == "sip_task_info: 12,299 rows\nsip_task_dates: 12,299 rows\n"

    summary = execution_monthly(period="2007-11")

    tasks = sip_tasks()
    done = [t for t in tasks.values() if t["StatusCode"] in ("FINISHED", "COMPLETED", "RELEASED")
            and t["CompletedOn"] and f"{datetime.strptime(t['CompletedOn'], '%d-%b-%y'):%Y-%m}" == "2007-11"]
    over = sorted(t["TaskNumber"] for t in done
                  if float(t["HoursEstimate"]) > 0 and float(t["HoursActual"]) > 1.5 * float(t["HoursEstimate"]))
    results = json.loads(Path(summary["output"]).read_text(encoding="utf-8"))["results"]
    by_key = {(r["rule_id"], r["entity_id"]): r for r in results}
    # Each task done in November on more than 1.5 times its estimated hours, and no other.
    assert sorted(r["entity_id"] for r in results if r["rule_id"] == "exec.hours_overrun"
                  and r["entity_type"] == "task" and r["outcome"] == "failed") == over and len(over) > 10
    # The log keeps no deadlines: every task lacks one, a major data-quality finding; freshness
    # cannot be told from an empty column, and the deadline rules have nothing to judge.
    undated = by_key[("dq.not_null", "tasks.due_at")]
    assert (undated["severity"], undated["observed"], undated["population"]) == ("major", 1.0, len(tasks))
    assert by_key[("dq.freshness", "tasks.due_at")]["outcome"] == "insufficient_data"
    assert by_key[("exec.on_time_rate", "company")]["outcome"] == "insufficient_data"
    # States the contract does not know are reported on their share; no plan is referred to, so a
    # company without plans has no reference problem.
    unknown = sum(t["StatusCode"] in ("CHRONICLE", "TEMPLATE") for t in tasks.values()) / len(tasks)
    assert by_key[("dq.in_set", "tasks.status")]["observed"] == pytest.approx(unknown)
    assert ("dq.reference", "tasks.plan_id") not in by_key


def test_a_quarter_of_a_real_register_of_required_reports_is_audited_for_lateness(pg_url, monkeypatch):
    from opsaudit.flows.audits import data_quarterly

    assert load_and_map("fdaaa", pg_url, monkeypatch) == "fdaaa_trials: 21,525 rows\n"

    summary = data_quarterly(period="2019Q1")

    with gzip.open(REAL_DATA / "fdaaa_results_reporting.csv.gz", "rt", encoding="utf-8", newline="") as source:
        due = [t for t in csv.DictReader(source)
               if t["results_due"] == "1" and "2019-01-01" <= t["due_date"] <= "2019-03-31"]
    quarter_end = datetime(2019, 4, 1)
    days_late: dict[str, int] = {}
    for trial in due:
        deadline = datetime.fromisoformat(trial["due_date"])
        sent = trial["first_results_submission"]
        submitted = datetime.fromisoformat(sent) if sent else None
        if submitted is None or submitted > deadline:
            # Late by the day it came, or, still missing, by the end of the quarter.
            days_late[trial["nct_id"]] = ((submitted or quarter_end) - deadline).days
    results = json.loads(Path(summary["output"]).read_text(encoding="utf-8"))["results"]
    late = {r["entity_id"]: r["severity"] for r in results if r["rule_id"] == "data.report_late"
            and r["entity_type"] == "report" and r["outcome"] == "failed"}
    # Every trial due in the quarter whose results came late or not by its end, and no other;
    # important when more than 14 days late.
    assert set(late) == set(days_late) and len(late) == 334
    assert {i for i, severity in late.items() if severity == "important"} == {i for i, d in days_late.items() if d > 14}
    # The register's own columns are sound; the rules it cannot feed are off (thresholds.yaml).
    assert [r["entity_id"] for r in results if r["rule_id"].startswith("dq.") and r["outcome"] != "passed"] == []
    assert not [r for r in results if r["rule_id"] in ("data.report_incomplete", "data.report_unreviewed")]
    # Sponsors' full names are departments: ids past 64 characters are stored whole.
    assert max(len(r["department_id"] or "") for r in results) > 64

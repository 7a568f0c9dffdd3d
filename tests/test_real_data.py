"""Acceptance on real data nobody here shaped: a real IT service desk's ServiceNow event log
(../shared/real-data), loaded unchanged into PostgreSQL and read only through the source mapping
config/examples/servicenow/source.yaml, audited for March 2016 on the real clock."""

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

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT.parent / "shared" / "real-data" / "servicenow_incident_event_log.csv.gz"
MAPPING = ROOT / "config" / "examples" / "servicenow"

pytestmark = [pytest.mark.usefixtures("prefect_harness"),
              pytest.mark.skipif(not LOG.exists(), reason=f"{LOG} is not there (../shared/real-data)")]


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


def opsaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=300)


def test_a_month_of_a_real_service_desk_is_audited_from_its_own_records(pg_url, monkeypatch):
    from opsaudit.flows.audits import cs_monthly

    loaded = subprocess.run([sys.executable, str(ROOT / "scripts" / "load_real_data.py"), "servicenow", pg_url],
                            capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "servicenow_incident_events: 119,998 rows"
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", pg_url)
    monkeypatch.setenv("OPSAUDIT_CONFIG_DIR", str(MAPPING))
    assert opsaudit("init").returncode == 0

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

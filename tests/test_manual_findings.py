"""Manual findings (seed 000 §5.2) on SQLite and PostgreSQL: recorded by auditors only, with their
evidence; owned, due and alerted like any finding; listed, scored, circulated and reported in their
area's next report; refusals that change nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from opsaudit.config.models import Scoring
from opsaudit.errors import InputError
from opsaudit.manual import ManualFinding, add_manual_finding
from opsaudit.periods import containing, parse_period
from opsaudit.reports.circulation import body, figures
from opsaudit.scores import scores_for
from opsaudit.settings import load_settings
from opsaudit.store import runs
from opsaudit.store.finding_views import FindingFilter, finding_json, get_finding, list_findings
from opsaudit.store.lifecycle import Refused, Request, perform
from opsaudit.store.schema import audit_runs, finding_events, findings, outbox
from tests.rectification import ZONE, company, directory, email

NOW = datetime(2026, 11, 3, 15, 30, tzinfo=ZONE)
EVERYONE = ("E1", "M1", "M2", "A1", "A2", "H1", "O1", "O2", "H2", "O3")
AUDITORS = {"A1", "A2"}
WORDS = {"title": "投诉登记簿缺失", "description": "实地检查客服一部时发现10月投诉未登记，抽查的12件中5件无记录。"}


@pytest.fixture
def store(db_url, engine, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    company(engine)
    return engine


@pytest.fixture
def people(store):
    return directory(store)


def add(engine, people, now: datetime = NOW, **given):
    """Record a manual finding (an important execution problem of CS1 by A2 unless given)."""
    settings = load_settings()
    values = {"actor": "A2", "area": "execution", "department": "CS1", "severity": "important", **WORDS, **given}
    with engine.begin() as conn:
        return add_manual_finding(conn, ManualFinding(**values), people, settings, settings.load_config(), now=now)


def store_state(engine) -> tuple[int, ...]:
    """How many findings, events, runs and messages the store holds: what a refusal leaves alone."""
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                     for table in (findings, finding_events, audit_runs, outbox))


def test_only_the_auditors_of_the_operations_department_record_manual_findings(store, people):
    before = store_state(store)
    for actor in EVERYONE:
        if actor in AUDITORS:
            continue
        with pytest.raises(Refused) as refused:
            add(store, people, actor=actor)
        assert refused.value.key == "role", actor
    with pytest.raises(Refused) as refused:
        add(store, people, actor="M1")
    assert "只有稽查人员员工A1（A1）、员工A2（A2）可以" in str(refused.value)
    for actor, key in (("A3", "inactive_actor"), ("Z9", "unknown_actor")):
        with pytest.raises(Refused) as refused:
            add(store, people, actor=actor)
        assert refused.value.key == key
    assert store_state(store) == before
    for actor, department in (("A1", "CS1"), ("A2", "CS2")):
        add(store, people, actor=actor, department=department)
    assert store_state(store)[0] == before[0] + 2


@pytest.mark.parametrize(("given", "key"), [
    ({"area": "finance"}, "unknown_area"), ({"area": "data_quality"}, "unknown_area"),
    ({"severity": "critical"}, "unknown_severity"), ({"department": "CS9"}, "unknown_department"),
    ({"entity_type": "task"}, "entity_pair"), ({"entity_id": "TSK-1"}, "entity_pair"),
    ({"entity_type": "shop", "entity_id": "S1"}, "unknown_entity_type"), ({"title": " "}, "needs_text"),
    ({"description": ""}, "needs_text")])
def test_a_value_the_store_does_not_know_is_refused_and_changes_nothing(store, people, given, key):
    before = store_state(store)
    with pytest.raises(Refused) as refused:
        add(store, people, **given)
    assert refused.value.key == key and "\n" not in str(refused.value)
    assert store_state(store) == before


def test_a_manual_finding_is_owned_due_and_held_by_its_months_manual_run(store, people):
    major, _ = add(store, people, severity="重大问题")
    general, _ = add(store, people, severity="general", area="客户服务", department="CS2",
                     now=NOW + timedelta(days=20))
    with store.connect() as conn:
        first, second = get_finding(conn, major), get_finding(conn, general)
        run = conn.execute(sa.select(audit_runs).where(audit_runs.c.id == first["audit_run_id"])).mappings().one()
        listed = [row["id"] for row in list_findings(conn, FindingFilter(audit_run=run["id"]))]
        by_rule = list_findings(conn, FindingFilter(rule="manual"))
        raised = conn.execute(sa.select(finding_events).where(finding_events.c.finding_id == major)).mappings().one()
    shown = finding_json(first, ZONE)
    assert {key: shown[key] for key in ("audit", "rule_id", "area", "period", "entity_type", "entity_id",
                                        "department_id", "severity", "status", "owner_id", "title", "description")} == {
        "audit": "manual", "rule_id": "manual", "area": "execution", "period": "2026-11", "entity_type": "department",
        "entity_id": "CS1", "department_id": "CS1", "severity": "major", "status": "open", "owner_id": "H1", **WORDS}
    assert shown["found_at"] == NOW.isoformat() and shown["due_at"] == (NOW + timedelta(days=30)).isoformat()
    assert first["plan_due_at"] is not None and second["plan_due_at"] is None
    assert (second["owner_id"], second["area"], second["audit_run_id"]) == ("H2", "customer_service", run["id"])
    assert (run["audit"], run["kind"], run["period"], run["status"]) == ("manual", "manual", "2026-11", "succeeded")
    assert listed == [major, general] and len(by_rule) == 2
    assert (raised["actor"], raised["action"], raised["to_status"]) == ("A2", "raised", "open")
    assert raised["channel"] == "cli"


def test_several_problems_of_one_department_in_a_month_are_several_findings_each_scored(store, people):
    first, _ = add(store, people)
    second, _ = add(store, people, severity="general", title="值班表未公示", now=NOW + timedelta(days=1))
    on_task, _ = add(store, people, entity_type="task", entity_id="TSK-00898", now=NOW + timedelta(days=2))
    december, _ = add(store, people, now=NOW + timedelta(days=30))
    with store.connect() as conn:
        listed = {row["id"]: row for row in list_findings(conn, FindingFilter(rule="manual"))}
        raised = conn.execute(sa.select(finding_events.c.finding_id).where(finding_events.c.action == "raised")
                              ).scalars().all()
        scores = {s.entity_id: s for s in scores_for(conn, "2026-11", scoring=Scoring(), zone=ZONE,
                                                     now=NOW + timedelta(days=3), directory=people)}
        month = figures(conn, parse_period("2026-11"), now=datetime(2026, 12, 1, 12, tzinfo=ZONE), zone=ZONE)
    assert [(listed[f]["entity_type"], listed[f]["entity_id"], listed[f]["period"], listed[f]["severity"])
            for f in (first, second, on_task, december)] == [
        ("department", "CS1", "2026-11", "important"), ("department", "CS1", "2026-11", "general"),
        ("task", "TSK-00898", "2026-11", "important"), ("department", "CS1", "2026-12", "important")]
    assert (listed[first]["title"], listed[second]["title"]) == (WORDS["title"], "值班表未公示")
    assert sorted(raised) == sorted(listed)
    # 100 - 3 - 1 - 3: each of November's three problems of CS1 costs its points, the department's and its head's.
    for entity in ("CS1", "H1"):
        assert scores[entity].score == 93
        assert sorted(d.finding["id"] for d in scores[entity].deductions) == sorted((first, second, on_task))
    assert month.problems == {"CS1": {"major": 0, "important": 2, "general": 1}}


def test_evidence_files_are_kept_with_their_digest_and_links_as_given(store, people, tmp_path):
    photo = tmp_path / "现场照片.jpg"
    photo.write_bytes(b"\xff\xd8 site visit")
    before = store_state(store)
    with pytest.raises(InputError):
        add(store, people, evidence=(str(photo), str(tmp_path / "missing.pdf")))
    assert store_state(store) == before
    finding, _ = add(store, people, evidence=(str(photo), "https://wiki.example.com/visit/12"))
    with store.connect() as conn:
        row = get_finding(conn, finding)
        data = conn.execute(sa.select(finding_events.c.data).where(finding_events.c.finding_id == finding)).scalar_one()
    expected = [{"evidence": str(photo), "bytes": 13, "sha256": hashlib.sha256(b"\xff\xd8 site visit").hexdigest()},
                {"evidence": "https://wiki.example.com/visit/12"}]
    assert row["evidence"]["attachments"] == expected and data["attachments"] == expected


def test_a_manual_finding_is_scored_and_circulated_with_its_month_and_a_withdrawn_one_is_not(store, people):
    kept, _ = add(store, people, severity="important")
    withdrawn, _ = add(store, people, department="CS2", severity="major")
    with store.connect() as conn:
        scores = {s.entity_id: s.score for s in scores_for(conn, "2026-11", scoring=Scoring(), zone=ZONE,
                                                           now=NOW + timedelta(days=1), directory=people)}
    assert (scores["CS1"], scores["H1"], scores["CS2"], scores["H2"]) == (97, 97, 90, 90)
    with store.begin() as conn:
        perform(conn, withdrawn, Request("withdraw", "A1", note="经核实并非问题"), people, now=NOW + timedelta(hours=1))
    with store.connect() as conn:
        scores = {s.entity_id: s.score for s in scores_for(conn, "2026-11", scoring=Scoring(), zone=ZONE,
                                                           now=NOW + timedelta(days=1), directory=people)}
        month = figures(conn, parse_period("2026-11"), now=datetime(2026, 12, 1, 12, tzinfo=ZONE), zone=ZONE)
    assert (scores["CS1"], scores["CS2"]) == (97, 100) and "H2" not in scores
    assert month.runs == [{"audit": "manual", "kind": "manual", "period": "2026-11", "problems": 1}]
    assert month.problems == {"CS1": {"major": 0, "important": 1, "general": 0}}
    assert "人工稽查：稽查类型 人工稽查、稽查期间 2026年11月、发现问题 1" in body(month, "zh-CN", ZONE, people).text()


def test_a_manual_finding_is_in_the_next_report_of_its_area(store, people, tmp_path):
    from opsaudit.reports.render import ReportFiles, render_html
    from opsaudit.reports.report_data import load_report_data

    finding, _ = add(store, people, severity="major")
    settings = load_settings()
    config = settings.load_config()
    reported = {}
    with store.begin() as conn:
        for audit, period in (("execution-monthly", "2026-10"), ("execution-monthly", "2026-11"),
                              ("cs-monthly", "2026-11")):
            run = runs.start_run(conn, audit=audit, kind="periodic", period=parse_period(period), parameters={},
                                 config_hash="test")
            runs.finish_run(conn, run.id, status="succeeded")
            data = load_report_data(conn, settings, config, run.id, "zh-CN", staff_names={}, department_names={})
            reported[(audit, period)] = [problem.id for problem in data.manual]
    assert reported == {("execution-monthly", "2026-10"): [], ("execution-monthly", "2026-11"): [finding],
                        ("cs-monthly", "2026-11"): []}
    files = ReportFiles(*(tmp_path / name for name in ("r.html", "r.pdf", "f.csv", "results.json")))
    with store.connect() as conn:
        run_id = conn.execute(sa.select(audit_runs.c.id).where(audit_runs.c.audit == "execution-monthly",
                                                               audit_runs.c.period == "2026-11")).scalar_one()
        html = render_html(load_report_data(conn, settings, config, run_id, "zh-CN", staff_names={},
                                            department_names={}), "zh-CN", files)
    assert "人工稽查发现的问题" in html and WORDS["title"] in html and WORDS["description"] in html


# --- the command line, a major finding alerted over real SMTP --------------------------------------

def opsaudit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_the_command_line_records_a_major_finding_and_alerts_the_operations_manager_at_once(
        store, db_url, mailbox, tmp_path):
    evidence = tmp_path / "访谈记录.pdf"
    evidence.write_bytes(b"%PDF-1.7 interview")
    env = {**os.environ, "OPSAUDIT_DATABASE_URL": db_url, "COLUMNS": "400"}
    before = store_state(store)
    for args, words in ((("--department", "CS9"), "部门表中没有部门CS9"), (("--actor", "M1"), "只有稽查人员"),
                        (("--severity", "critical"), "问题等级critical无效")):
        base = {"--actor": "A1", "--area": "execution", "--department": "CS1", "--severity": "major",
                **dict([args])}
        refused = opsaudit("findings", "add", *[part for pair in base.items() for part in pair], "--title", "x",
                           "--description", "y", env=env)
        assert (refused.returncode, refused.stdout) == (1, "") and words in refused.stderr
        assert refused.stderr.count("\n") == 1
    assert store_state(store) == before and not mailbox.received

    clock = datetime.now(ZONE)
    added = opsaudit("findings", "add", "--actor", "A1", "--area", "运营执行", "--department", "CS1", "--severity",
                     "major", "--title", WORDS["title"], "--description", WORDS["description"], "--evidence",
                     str(evidence), "--evidence", "https://wiki.example.com/visit/12", env=env)
    assert added.returncode == 0, added.stderr
    with store.connect() as conn:
        [row] = list_findings(conn)
    first_line = added.stdout.splitlines()[0]
    assert first_line.startswith(f"已登记人工稽查问题{row['id']}：重大问题，责任人员工H1（H1），整改期限")
    assert row["period"] in {containing("month", clock.replace(tzinfo=None)).label,
                             containing("month", datetime.now(ZONE).replace(tzinfo=None)).label}
    [alert] = mailbox.received
    assert alert["Subject"] == f"重大问题：{WORDS['title']}（CS1）"
    assert {email(staff_id) for staff_id in ("M1", "M2", "H1", "E1", "E2")} == set(mailbox.envelopes[0].rcpt_tos)
    assert "人工稽查" in alert.get_body(("plain",)).get_content()

    shown = json.loads(opsaudit("findings", "show", row["id"], "--format", "json", env=env).stdout)
    digest = hashlib.sha256(b"%PDF-1.7 interview").hexdigest()
    assert shown["evidence"]["attachments"][0] == {"evidence": str(evidence), "bytes": 18, "sha256": digest}
    assert (shown["events"][0]["actor"], shown["events"][0]["channel"]) == ("A1", "cli")
    text = opsaudit("findings", "show", row["id"], env=env).stdout
    assert f"证据：{evidence}（18字节，校验值{digest}）" in text and "证据：https://wiki.example.com/visit/12" in text
    # A second problem of CS1 this month, a general one: recorded, and it alerts nobody.
    again = opsaudit("findings", "add", "--actor", "A2", "--area", "execution", "--department", "CS1", "--severity",
                     "general", "--title", "x", "--description", "y", env=env)
    assert again.returncode == 0 and len(mailbox.received) == 1
    with store.connect() as conn:
        assert [(r["entity_id"], r["severity"]) for r in list_findings(conn)] == [("CS1", "major"), ("CS1", "general")]

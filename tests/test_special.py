"""Special audits (专项稽查): restricted to the departments asked for, recorded with their reason and
scope, and refused in one line when asked for wrongly, from the command line, as flow parameters and
as a custom run of the `special` deployment."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from builders import Dataset
from dashboard import artifacts, flow_run, run_logs, run_of, serving, sqlite_company
from test_flows import small_company

from opsaudit.special import SpecialAudit
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import audit_runs, findings, outbox, reports
from tests.terminal import error_line

pytestmark = pytest.mark.usefixtures("prefect_harness")

OCTOBER = {"first_day": "2026-10-01", "last_day": "2026-10-31"}


def overdue_task(engine: sa.Engine, task_id: str, department: str) -> None:
    data = Dataset()
    data.task(task_id, department, owner_id="A1", priority="critical", due_at=datetime(2026, 8, 1), started_at=None,
              completed_at=None, status="in_progress")
    data.insert(engine, tables={"tasks"})


@pytest.fixture
def company(db_url, engine, monkeypatch):
    """Two customer-service departments, each with a critical task overdue; D2 also answers slowly."""
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    small_company(engine)
    overdue_task(engine, "K0", "D1")
    upgrade(engine)
    return engine


def request(**changes) -> dict:
    return {"areas": ["customer_service", "execution"], "departments": ["D2"], **OCTOBER,
            "reason": "complaints about slow answers doubled in October", **changes}


def findings_of(engine: sa.Engine, run_id: str) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(findings.c.rule_id, findings.c.entity_id, findings.c.department_id)
                                   .where(findings.c.audit_run_id == run_id)).all())


def test_a_special_audit_of_a_department_finds_only_that_departments_problems(company, tmp_path):
    from opsaudit.flows.special import special

    summary = special(request=SpecialAudit(**request()))

    found = findings_of(company, summary["audit_run_id"])
    assert ("cs.first_response_rate", "D2", "D2") in found and ("exec.overdue_task", "K1", "D2") in found
    assert {department for _, _, department in found} == {"D2"}   # no D1 task, no whole-company result
    with company.connect() as conn:
        run = conn.execute(sa.select(audit_runs).where(audit_runs.c.id == summary["audit_run_id"])).mappings().one()
    assert (run["audit"], run["kind"], run["period"], run["status"]) == (
        "special", "special", "2026-10-01..2026-10-31", "succeeded")
    assert run["parameters"]["special"] == {"reason": "complaints about slow answers doubled in October",
                                            "areas": ["customer_service", "execution"], "departments": ["D2"],
                                            "from": "2026-10-01", "to": "2026-10-31", "requested_by": None}
    assert run["summary"]["special"] == run["parameters"]["special"] and summary["kind"] == "special"
    handed_over = json.loads(Path(summary["output"]).read_text(encoding="utf-8"))
    assert (handed_over["kind"], handed_over["special"]["departments"]) == ("special", ["D2"])

    other = special(request=SpecialAudit(**request(departments=["D1"], areas=["execution"])))
    assert findings_of(company, other["audit_run_id"]) == [("exec.overdue_task", "K0", "D1")]
    # Two special audits over the same days: each keeps its own folder, report and draft.
    folders = [Path(run["output"]).parent for run in (summary, other)]
    assert [(folder.parent.name, folder.name) for folder in folders] == [
        ("2026-10-01..2026-10-31", run["audit_run_id"][:8]) for run in (summary, other)]
    assert all((folder / "report.zh-CN.pdf").is_file() for folder in folders)
    assert json.loads(Path(summary["output"]).read_text(encoding="utf-8"))["special"]["departments"] == ["D2"]
    with company.connect() as conn:
        drafts = conn.execute(sa.select(reports.c.audit_run_id, reports.c.path).where(
            reports.c.status == "draft", reports.c.format == "pdf").order_by(reports.c.created_at)).all()
    assert [(run_id, Path(path).parent) for run_id, path in drafts] == [
        (run["audit_run_id"], folder.resolve()) for run, folder in zip((summary, other), folders, strict=True)]


def test_a_special_audit_refers_to_an_open_finding_and_leaves_it_with_the_run_that_raised_it(company):
    """October's execution audit raised K1 (D2's overdue critical task); a special audit of D2 over
    October, before the lead reviewed October's report, finds it again: it refers to the finding,
    and October's report, its mail and the circulation keep counting it."""
    from opsaudit.config.models import Recipients
    from opsaudit.contract import staff
    from opsaudit.db import source_engine
    from opsaudit.flows.audits import execution_monthly
    from opsaudit.flows.special import special
    from opsaudit.reports.recipients import Directory
    from opsaudit.reports.review import Gate, Mails, _run
    from opsaudit.settings import load_settings
    from opsaudit.source import Source
    from opsaudit.store.finding_views import FindingFilter, iter_findings
    from opsaudit.store.schema import finding_events

    with company.begin() as conn:   # the audit lead, who gets the drafts
        conn.execute(staff.insert().values(staff_id="U1", name="Audit lead", department_id="OPS", role="auditor",
                                           email="u1@example.com", active=True))
    periodic = execution_monthly(period="2026-10", now=datetime(2026, 11, 1, 9))["audit_run_id"]
    before = findings_of(company, periodic)
    assert ("exec.overdue_task", "K1", "D2") in before

    summary = special(request=SpecialAudit(**request(requested_by="M1")))

    assert findings_of(company, periodic) == before   # nothing taken from October's run
    with company.connect() as conn:
        listed = {(row["rule_id"], row["entity_id"]) for row in
                  iter_findings(conn, FindingFilter(audit_run=summary["audit_run_id"]), sort="severity")}
        referred = conn.execute(sa.select(finding_events.c.action, finding_events.c.data)
                                .join(findings, findings.c.id == finding_events.c.finding_id)
                                .where(findings.c.entity_id == "K1",
                                       finding_events.c.audit_run_id == summary["audit_run_id"])).all()
        settings = load_settings()
        source = Source(source_engine(settings.database, timezone=settings.timezone), settings.load_config().source)
        gate = Gate(Directory.load(source, settings), Recipients(), settings)
        counts, _ = Mails(conn, gate, _run(conn, periodic, "zh-CN"))._load()
    assert ("exec.overdue_task", "K1") in listed   # the special audit's report lists it
    assert [(action, data["referred"]) for action, data in referred] == [("rechecked", True)]
    assert sum(number for _, _, number in counts) == len(before)   # the review mail counts what it always did
    report = (Path(summary["output"]).parent / "report.zh-CN.html").read_text(encoding="utf-8")
    assert "本次专项稽查应Operations manager（M1）要求开展，原因：complaints about slow answers doubled in " \
           "October。稽查范围为CS two（D2）的客户服务、运营执行工作，稽查期间为2026-10-01至2026-10-31。" in report
    assert "exec.overdue_task" not in report
    with company.connect() as conn:
        draft = conn.execute(sa.select(outbox.c.body_text).where(
            outbox.c.dedupe_key.startswith(f"review:draft:{summary['audit_run_id']}"))).scalar_one()
    assert "应Operations manager（M1）要求开展，原因：complaints about slow answers" in draft   # the lead reads why


def test_a_special_audit_is_named_tagged_and_summarized_as_one(company):
    from opsaudit.flows.special import special

    state = special(request=SpecialAudit(**request()), return_state=True)

    run = run_of(state)
    assert run.name == "special 2026-10-01..2026-10-31"
    assert {"special", "area:customer_service", "area:execution"} <= set(run.tags)
    summary = artifacts(run.id)["special-summary"].data
    assert summary.startswith("# 专项稽查：2026-10-01至2026-10-31")
    assert "- **专项稽查原因**：complaints about slow answers doubled in October" in summary
    assert "- **稽查部门**：D2" in summary and "全公司" not in summary


BAD_REQUESTS = [
    pytest.param(request(areas=["customer_service", "marketing"]),
                 "areas：“marketing”不是可选值之一：customer_service、execution、planning、data_analysis",
                 id="unknown area"),
    pytest.param(request(first_day="2026-10-31", last_day="2026-10-01"),
                 "last_day：结束日期2026-10-01早于开始日期2026-10-31", id="inverted dates"),
    pytest.param(request(reason="   "), "reason：不能为空：请说明专项稽查针对的问题或事件", id="empty reason"),
    pytest.param(request(departments=["D2", "D9"]), "departments：部门表中没有部门编号“D9”",
                 id="unknown department"),
    pytest.param(request(requested_by="S99"), "requested_by：员工表中没有人员编号“S99”", id="unknown requester"),
    pytest.param(request(last_day="2026-12-31"), "last_day：2026-10-01..2026-12-31尚未结束", id="range not ended"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_REQUESTS)
def test_a_bad_request_fails_the_flow_in_one_line_before_anything_is_recorded(company, bad, message):
    from opsaudit.flows.special import special

    state = special(request=bad, now=datetime(2026, 11, 30, 9), return_state=True)

    assert state.is_failed()
    shown = run_of(state).state.message   # what the dashboard shows, in OPSAUDIT_LANGUAGE
    assert f"专项稽查：{message}" in shown and "\n" not in shown
    logs = run_logs(run_of(state).id)
    assert any("Finished in state Failed" in line for line in logs)   # the dashboard's log, read
    assert not any("Traceback" in line or "Encountered exception" in line for line in logs)
    with company.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_runs)).scalar() == 0


def test_a_bad_request_reads_in_english_when_opsaudit_speaks_english(company, monkeypatch):
    from opsaudit.flows.special import special

    monkeypatch.setenv("OPSAUDIT_LANGUAGE", "en")
    state = special(request=request(departments=["D9"]), now=datetime(2026, 11, 30, 9), return_state=True)

    shown = run_of(state).state.message
    assert "special audit: departments: 'D9' is not a department_id of the departments table" in shown
    with company.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_runs)).scalar() == 0


def opsaudit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def cli_env(database: str) -> dict[str, str]:
    import os

    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "OPSAUDIT_DATABASE_URL": database, "PREFECT_API_URL": PREFECT_API_URL.value()}


def special_args(**changes: list[str] | str) -> list[str]:
    options = {"--area": ["customer_service"], "--department": ["D2"], "--from": "2026-10-01",
               "--to": "2026-10-31", "--reason": "slow answers", **changes}
    args = ["run", "special"]
    for option, value in options.items():
        for one in ([value] if isinstance(value, str) else value):
            args += [option, one]
    return args


@pytest.mark.parametrize(("changes", "message"), [
    ({"--area": ["marketing"]}, "--area的值无效：“marketing”不是可选值之一"),
    ({"--from": "2026-10-31", "--to": "2026-10-01"}, "--to的值无效：结束日期2026-10-01早于开始日期2026-10-31"),
    ({"--reason": " "}, "--reason的值无效：不能为空：请说明专项稽查针对的问题或事件"),
    ({"--department": ["D2", "D9"]}, "--department的值无效：部门表中没有部门编号“D9”"),
    ({"--requested-by": "S99"}, "--requested-by的值无效：员工表中没有人员编号“S99”"),
    ({"--to": "2026-12-31"}, "--to的值无效：2026-10-01..2026-12-31尚未结束（结束于2027-01-01 00:00"),
    ({"--from": "1 October"}, "--from的值无效：“1 October”不是日期（如2026-10-01）"),
    ({"--reason": []}, "--reason的值无效：专项稽查必须填写此项"),
    ({"--from": "2026-10-31", "--to": "2026-10-01", "--lang": "en"},
     "invalid value for --to: 2026-10-01 is before the first day 2026-10-31"),
    ({"--department": ["D9"], "--lang": "en"},
     "invalid value for --department: 'D9' is not a department_id of the departments table"),
], ids=["unknown area", "inverted dates", "empty reason", "unknown department", "unknown requester",
        "range not ended", "not a date", "no reason", "inverted dates in English", "unknown department in English"])
def test_a_bad_special_audit_on_the_command_line_is_one_line_and_exit_2(tmp_path, changes, message):
    database = f"sqlite:///{tmp_path / 'ops.db'}"
    engine = sa.create_engine(database)
    small_company(engine)
    upgrade(engine)

    result = opsaudit(*special_args(**changes), "--now", "2026-11-30T09:00", env=cli_env(database))

    assert result.returncode == 2, result.stderr
    language = changes.get("--lang", "zh-CN")
    assert result.stderr.startswith(error_line(message, language)) and result.stderr.count("\n") == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_runs)).scalar() == 0


def test_special_options_go_with_the_special_audit_only(tmp_path):
    result = opsaudit("run", "cs-monthly", "--reason", "why", env=cli_env(f"sqlite:///{tmp_path / 'ops.db'}"))
    assert result.returncode == 2
    assert "--reason的值无效：只能用于 `opsaudit run special`，不能用于 cs-monthly" in result.stderr


def test_a_special_audit_from_the_command_line_runs_and_says_why(tmp_path):
    database = f"sqlite:///{tmp_path / 'ops.db'}"
    engine = sa.create_engine(database)
    small_company(engine)
    upgrade(engine)

    result = opsaudit(*special_args(**{"--area": ["customer_service", "execution"]}), env=cli_env(database))

    assert result.returncode == 0, result.stderr
    assert ("专项稽查原因：slow answers；稽查领域：客户服务、运营执行；稽查部门：D2；"
            "稽查期间：2026-10-01至2026-10-31。") in result.stdout
    with engine.connect() as conn:
        assert conn.execute(sa.select(audit_runs.c.kind, audit_runs.c.status)).all() == [("special", "succeeded")]


def test_a_custom_run_of_the_special_deployment_audits_and_refuses_bad_parameters(tmp_path, monkeypatch):
    """What a person does in the Prefect UI: a custom run of `special` with the form's parameters."""
    import asyncio

    from prefect.deployments import run_deployment

    _, engine = sqlite_company(tmp_path, monkeypatch)
    runner = serving("special")

    good = run_deployment("special/special", parameters={"request": request()}, timeout=0)
    inverted = run_deployment("special/special", timeout=0,
                              parameters={"request": request(first_day="2026-10-31", last_day="2026-10-01")})
    unknown = run_deployment("special/special", timeout=0, parameters={"request": request(departments=["D9"])})
    with pytest.raises(Exception, match="marketing"):   # the form's schema: the API refuses an unknown area
        run_deployment("special/special", parameters={"request": request(areas=["marketing"])}, timeout=0)
    asyncio.run(runner.start(run_once=True))

    done, refused = flow_run(good.id), flow_run(inverted.id)
    assert done.state.is_completed(), done.state
    assert done.name == "special 2026-10-01..2026-10-31" and "special" in done.tags
    assert {"special-summary", "special-findings", "special-report"} <= set(artifacts(done.id))
    assert refused.state.is_failed()
    assert "专项稽查：last_day：结束日期2026-10-01早于开始日期2026-10-31" in refused.state.message
    assert "\n" not in refused.state.message
    # A department the form cannot know is wrong: the first task's one line is the run's message.
    nowhere = flow_run(unknown.id)
    assert nowhere.state.is_failed() and nowhere.state.message == "专项稽查：departments：部门表中没有部门编号“D9”"
    with engine.connect() as conn:
        assert conn.execute(sa.select(audit_runs.c.kind, audit_runs.c.status)).all() == [("special", "succeeded")]


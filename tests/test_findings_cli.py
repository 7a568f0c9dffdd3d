"""`opsaudit findings list` and `show` as a manager uses them: in their language, on an 80-column
terminal, with filters that say what they accept, at 60 findings and at 6,000."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import sqlalchemy as sa
from rich.cells import cell_len

from opsaudit.checks.results import CheckResult, Outcome, Severity
from opsaudit.config.models import Deadlines
from opsaudit.contract import departments, metadata, staff
from opsaudit.periods import parse_period
from opsaudit.store import findings as store_findings
from opsaudit.store import runs
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import findings
from opsaudit.store.times import to_db
from tests.terminal import on_a_terminal, widest

ZONE = ZoneInfo("Asia/Shanghai")
FOUND = datetime(2026, 11, 1, 9, 0, tzinfo=ZONE)
LATIN = re.compile(r"[A-Za-z]{2,}")


def agent_result(i: int, severity: Severity) -> CheckResult:
    agent, department = f"A{i:04d}", f"D{i % 20:02d}"
    observed = 0.80 - (i % 7) / 100
    return CheckResult(
        "cs.satisfaction_rate", "customer_service", "agent", agent, Outcome.FAILED, severity,
        department_id=department, owner_id=f"H{i % 20:02d}", observed=observed, target=0.9, population=40,
        facts={"period": "2026-10", "department_id": department, "department_name": f"客服{i % 20}部",
               "agent_id": agent, "agent_name": f"员工{i}", "observed": observed, "target": 0.9, "population": 40,
               "numerator": 32, "denominator": 40, "failures": 8, "gap": round(observed - 0.9, 6), "unit": "rate",
               "op": "at_least"},
        evidence={"query": f"SELECT count(*) FROM tickets WHERE agent_id = '{agent}'",
                  "records_query": f"SELECT ticket_id FROM tickets WHERE agent_id = '{agent}'",
                  "sample_ids": [f"T{i}-1", f"T{i}-2"],
                  "samples": [{"sample_id": f"T{i}-1", "agent_id": agent, "satisfaction": 2},
                              {"sample_id": f"T{i}-2", "agent_id": agent, "satisfaction": 1}]})


def company(url: str, count: int) -> None:
    """A store with `count` agent findings, in the operational database it names its people from."""
    engine = sa.create_engine(url)
    metadata.create_all(engine, tables=[departments, staff])
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(departments.insert(), [{"department_id": f"D{d:02d}", "name": f"客服{d}部", "parent_id": None,
                                             "head_id": f"H{d:02d}"} for d in range(20)])
        conn.execute(staff.insert(), [{"staff_id": f"H{d:02d}", "name": f"主管{d}", "department_id": f"D{d:02d}",
                                       "role": "manager", "email": None, "active": True} for d in range(20)])
        run = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period("2026-10"),
                             parameters={}, config_hash="abc")
        severities = (Severity.GENERAL, Severity.IMPORTANT, Severity.MAJOR)
        store_findings.record_findings(conn, run, [agent_result(i, severities[i % 3]) for i in range(count)],
                                       found_at=FOUND, deadlines=Deadlines(), recurrence_periods=2,
                                       config_hash="abc", zone=ZONE)
        runs.finish_run(conn, run.id, status="succeeded")
        conn.execute(findings.update().where(findings.c.entity_id == "A0001").values(recurring=True))
    engine.dispose()


@pytest.fixture
def sixty(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    company(url, 60)
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", url)
    return url


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=300)


def due_by_today(url: str, *, overdue_severity: str) -> None:
    """Deadlines around the real clock, which `--overdue` reads: findings of `overdue_severity`
    fell due yesterday, the others fall due in 30 days, whatever day the test runs."""
    now = datetime.now(ZONE)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for overdue in (True, False):
            same = findings.c.severity == overdue_severity
            conn.execute(findings.update().where(same if overdue else ~same)
                         .values(due_at=to_db(now + timedelta(days=-1 if overdue else 30))))
    engine.dispose()


def ids(url: str, **where: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        query = sa.select(findings.c.id).where(*(findings.c[k] == v for k, v in where.items()))
        found = conn.execute(query).scalars().all()
    engine.dispose()
    return found


def test_the_list_fits_80_columns_and_never_cuts_an_id(sixty):
    shown = on_a_terminal("findings", "list", "--limit", "0")
    lines = shown.splitlines()
    assert max(cell_len(line.rstrip()) for line in lines) <= 80
    assert all(finding_id in shown for finding_id in ids(sixty))
    assert lines[-1] == "共60条稽查发现。"
    assert "重大问题 · 待整改 · 2026年10月" in shown and "责任人主管1（H01）" in shown


def test_filters_accept_codes_and_chinese_names_and_refuse_anything_else(sixty):
    def listed(*args: str) -> list[dict]:
        result = cli("findings", "list", "--format", "json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    major = listed("--severity", "major")
    assert len(major) == 20 and listed("--severity", "重大问题") == major == listed("--severity", "重大")
    assert {f["department_id"] for f in listed("--department", "D03")} == {"D03"}
    assert {f["owner_id"] for f in listed("--owner", "H04")} == {"H04"}
    assert len(listed("--rule", "cs.")) == 60 and listed("--rule", "exec.") == []
    assert len(listed("--period", "2026-10", "--audit", "cs-monthly", "--area", "客户服务")) == 60
    assert [f["entity_id"] for f in listed("--recurring")] == ["A0001"]
    # --overdue reads the real clock: the general problems fell due yesterday, the others fall due next month.
    due_by_today(sixty, overdue_severity="general")
    assert {f["severity"] for f in listed("--overdue")} == {"general"} and len(listed("--overdue")) == 20
    assert len(listed("--limit", "5")) == 5
    due = [f["due_at"] for f in listed("--sort", "due")]
    assert due == sorted(due)
    run_id = major[0]["audit_run_id"]
    assert len(listed("--audit-run", run_id[:6])) == 60
    for option, value, allowed in (("--severity", "bogus", "major、important、general"),
                                   ("--status", "xyz", "open、plan_submitted"),
                                   ("--area", "cs", "customer_service、execution"),
                                   ("--rule", "cs.nope", "不是稽查规则编号")):
        result = cli("findings", "list", option, value)
        assert result.returncode == 2 and allowed in result.stderr and result.stderr.count("\n") == 1
    english = cli("findings", "list", "--severity", "bogus", "--lang", "en")
    assert "invalid value for --severity: 'bogus' is not one of major, important, general" in english.stderr


def test_a_department_or_owner_nobody_has_is_an_error_naming_the_known_ones(sixty):
    def listed(*args: str) -> list[dict]:
        result = cli("findings", "list", "--format", "json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    # A department by its id in any case, or by its name; an owner by a staff_id in any case.
    assert {f["department_id"] for f in listed("--department", "d03")} == {"D03"} == \
        {f["department_id"] for f in listed("--department", "客服3部")}
    assert {f["owner_id"] for f in listed("--owner", "h04")} == {"H04"}
    for option, value, said in (("--department", "XX9", "没有部门“XX9”；已知的部门：客服0部（D00）、客服1部（D01）"),
                                ("--owner", "S999", "没有人员“S999”"),
                                ("--audit-run", "", "--audit-run的值无效：不能为空")):
        result = cli("findings", "list", option, value)
        assert result.returncode == 2 and said in result.stderr and result.stderr.count("\n") == 1, result.stderr
    empty = cli("findings", "show", "")
    assert empty.returncode == 2 and "ID的值无效：不能为空" in empty.stderr


def test_before_init_the_list_says_to_run_init(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_DATA_DIR", str(tmp_path / "nothing-yet"))
    for language, said in (("zh-CN", "请先运行 `opsaudit init`"), ("en", "run `opsaudit init` first")):
        result = cli("findings", "list", "--lang", language)
        assert result.returncode == 1 and said in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_a_reader_that_stops_early_is_no_failure(sixty):
    for fmt in ("table", "csv"):
        listing = subprocess.Popen([sys.executable, "-m", "opsaudit", "findings", "list", "--limit", "0",
                                    "--format", fmt], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        listing.stdout.close()   # a reader that stops before the first line, as `| head -0` does
        assert listing.wait(timeout=300) == 0 and listing.stderr.read() == b""


def test_json_and_csv_go_to_output_and_a_missing_folder_is_refused(sixty, tmp_path):
    for fmt in ("json", "csv"):
        target = tmp_path / f"findings.{fmt}"
        result = cli("findings", "list", "--format", fmt, "--output", str(target))
        assert result.returncode == 0 and result.stdout == f"已将60条稽查发现导出到{target}。\n", result.stdout
        assert target.read_text(encoding="utf-8").count(ids(sixty)[0]) == 1
    missing = tmp_path / "missing" / "dir"
    refused = cli("findings", "list", "--format", "xlsx", "--output", str(missing / "x.xlsx"))
    assert refused.returncode == 2 and f"文件夹 {missing} 不存在" in refused.stderr and not missing.parent.exists()


def test_csv_opens_in_excel_and_xlsx_has_headers_in_the_readers_language(sixty, tmp_path):
    result = cli("findings", "list", "--format", "csv")
    assert result.stdout.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(result.stdout.removeprefix("\ufeff"))))
    assert len(rows) == 60 and "evidence" not in rows[0]
    assert rows[0]["sample_ids"].count(" ") == 1 and rows[0]["department_name"].startswith("客服")
    for language, header in (("zh-CN", "问题等级"), ("en", "Severity")):
        path = tmp_path / f"findings-{language}.xlsx"
        assert cli("findings", "list", "--format", "xlsx", "--output", str(path), "--lang", language).returncode == 0
        sheet = openpyxl.load_workbook(path).active
        assert header in [cell.value for cell in sheet[1]] and sheet.max_row == 61


def test_a_finding_reads_as_a_manager_needs_it_in_either_language(sixty):
    finding_id = ids(sixty, entity_id="A0002")[0]
    chinese = cli("findings", "show", finding_id[:8]).stdout
    for expected in ("重大问题 · 待整改 · 2026年10月", "客户满意度未达标", "满意度78.0%", "低于目标90.0%",
                     "责任部门：客服2部（D02）", "责任人：主管2（H02）", "整改方案提交期限：2026-11-08",
                     "整改期限：2026-12-01", "专题会议", "T2-1  满意度评分：2"):
        assert expected in chinese, expected
    data = json.loads(cli("findings", "show", finding_id, "--format", "json").stdout)
    prose = "\n".join(line for line in chinese.splitlines() if not line.startswith("    "))  # SQL is for auditors
    for identifier in (finding_id, data["audit_run_id"], data["rule_id"], data["audit"]):
        prose = prose.replace(identifier, " ")
    assert LATIN.findall(prose) == [], prose
    english = cli("findings", "show", finding_id, "--lang", "en").stdout
    assert "Customer satisfaction below target" in english and "Owner: 主管2 (H02)" in english
    assert data["plan_due_at"] == (FOUND + timedelta(days=7)).isoformat()
    assert [list(event) for event in data["events"]] == [
        ["at", "actor", "action", "from_status", "to_status", "note", "evidence", "channel"]]
    assert data["owner_name"] == "主管2" and data["severity_label"] == "重大问题"


def test_six_thousand_findings_list_in_pages_and_export_whole(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'big.db'}"
    company(url, 6000)
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", url)
    table = on_a_terminal("findings", "list")
    assert table.splitlines()[-1] == "显示前100条，共6,000条；可按部门、责任人、规则、期间等筛选。"
    assert max(cell_len(line.rstrip()) for line in table.splitlines()) <= 80
    assert len(json.loads(cli("findings", "list", "--format", "json").stdout)) == 6000


def test_version_and_flags_in_the_help(tmp_path):
    assert cli("--version").stdout.startswith("opsaudit ")
    help_text = cli("findings", "list", "--help").stdout
    assert "--overdue" in help_text and "<bool>" not in help_text
    assert Path(tmp_path).is_dir()


def test_a_list_piped_to_a_file_is_as_wide_as_columns_says(sixty):
    environ = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    narrow = subprocess.run([sys.executable, "-m", "opsaudit", "findings", "list"], capture_output=True, text=True,
                            timeout=300, env={**environ, "COLUMNS": "60"})
    assert narrow.returncode == 0, narrow.stderr
    assert widest(narrow.stdout) <= 60 and all(finding_id in narrow.stdout for finding_id in ids(sixty))
    # Without COLUMNS a file gets wide lines, which a person reads unwrapped.
    wide = subprocess.run([sys.executable, "-m", "opsaudit", "findings", "list"], capture_output=True, text=True,
                          timeout=300, env=environ)
    assert widest(wide.stdout) > 80


def test_reports_list_fits_80_columns_with_every_column_readable(sixty):
    from opsaudit.store.schema import audit_runs, reports

    note = "请补充客服三部的抽样说明，并核对满意度的分母与分子是否取自同一期间的工单"
    engine = sa.create_engine(sixty)
    with engine.begin() as conn:
        run_id = conn.execute(sa.select(audit_runs.c.id)).scalar_one()
        conn.execute(reports.insert(), [
            {"id": f"report-{language}", "audit_run_id": run_id, "language": language, "format": "html",
             "path": f"out/report.{language}.html", "sha256": "0" * 64, "status": "rejected",
             "created_at": to_db(FOUND), "reviewed_by": "H01", "reviewed_at": to_db(FOUND + timedelta(days=1)),
             "review_note": note} for language in ("zh-CN", "en")])
    engine.dispose()
    shown = on_a_terminal("reports", "list")
    assert widest(shown) <= 80 and run_id in shown
    flat = "".join(line.strip() for line in shown.splitlines())
    assert "客户服务月度全面评估 · 2026年10月 · 已退回" in flat and "报告语言：英文、中文" in flat
    assert "审核人：H01 · 2026-11-02 09:00" in flat and f"审核意见：{note}" in flat
    english = on_a_terminal("reports", "list", "--lang", "en")
    assert widest(english) <= 80 and "Languages: English, Chinese" in " ".join(english.split())

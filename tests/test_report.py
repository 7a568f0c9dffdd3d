"""The audit report (seed 000 §5.3) on SQLite and PostgreSQL: a small company audited for two
months through the engine and the store, its report in both languages against golden files
(OPSAUDIT_UPDATE_GOLDEN=1 rewrites them), a month of 3,000 agent findings in constant
statements, and a PDF whose Chinese is set in an embedded CJK font with no glyph missing."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from opsaudit.audit import build_context
from opsaudit.checks import engine as eng
from opsaudit.checks.results import CheckResult, Outcome, Severity
from opsaudit.contract import metadata
from opsaudit.i18n import catalogue
from opsaudit.periods import parse_period
from opsaudit.reports.recipients import Directory
from opsaudit.reports.render import ReportFiles, write_report
from opsaudit.settings import load_settings
from opsaudit.source import Source
from opsaudit.store import findings as findings_store
from opsaudit.store import runs
from opsaudit.store.lifecycle import record_special_meeting, record_task_force
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import findings
from tests.builders import Dataset

GOLDEN = Path(__file__).parent / "golden"
# Read on import: the isolated environment of each test clears every OPSAUDIT_* variable.
UPDATE_GOLDEN = bool(os.environ.get("OPSAUDIT_UPDATE_GOLDEN"))
CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
AGENTS = {"A1": ("张伟", "D1"), "A2": ("王芳", "D1"), "A3": ("李娜", "D1"),
          "A4": ("刘洋", "D2"), "A5": ("陈静", "D2"), "A6": ("杨磊", "D2")}


def company(engine: sa.Engine) -> None:
    """Two service departments; in October 客服二部's customers are far less satisfied than in
    September, and its first responses slower."""
    data = Dataset()
    data.department("OPS", name="运营部", head_id="M1")
    data.department("D1", name="客服一部", parent_id="OPS", head_id="S1")
    data.department("D2", name="客服二部", parent_id="OPS", head_id="S2")
    data.staff("M1", "OPS", "manager", name="周敏")
    data.staff("S1", "D1", "manager", name="孙丽")
    data.staff("S2", "D2", "manager", name="郑强")
    for agent, (name, department) in AGENTS.items():
        data.staff(agent, department, name=name)
    for month, start in (("09", datetime(2026, 9, 1)), ("10", datetime(2026, 10, 1))):
        for index, (agent, (_, department)) in enumerate(AGENTS.items()):
            for n in range(25):
                opened = start + timedelta(days=n, hours=9 + index)
                unhappy = department == "D2" and n < (12 if month == "10" else 3) + index
                data.ticket(f"T{month}-{agent}-{n:02d}", department, agent, opened_at=opened,
                            satisfaction=2 if unhappy else 5)
    data.insert(engine)
    upgrade(engine)


def audit(engine: sa.Engine, period: str, now: datetime) -> str:
    """The monthly customer-service audit of `period`, as the flow runs it, without Prefect."""
    settings = load_settings()
    context = build_context(settings, "cs-monthly", period=period, now=now)
    source = Source(engine)
    computation = eng.compute(source, context.rules, context.period, now=context.now,
                              available=set(metadata.tables), all_rules={r.rule_id: r for r in context.all_rules})
    results = [r if r.owner_id or not r.is_problem else CheckResult(**{**r.__dict__, "owner_id": "M1"})
               for r in eng.collect_samples(source, computation, eng.evaluate(computation))]
    results.append(CheckResult("dq.not_null", "data_quality", "table_column", "tickets.ticket_id", Outcome.PASSED,
                               observed=0.0, target=0.0, population=150))
    thresholds = context.config.thresholds
    with engine.begin() as conn:
        run = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=context.period,
                             parameters={"period": period, "now": context.now.isoformat(),
                                         "rules": sorted({f"{r.rule_id}:{r.entity_type}" for r in context.rules})},
                             config_hash=context.config.digest(), started_at=now.replace(tzinfo=settings.tz))
        runs.save_results(conn, run.id, results)
        findings_store.record_findings(conn, run, results, found_at=context.now.replace(tzinfo=settings.tz),
                                       deadlines=thresholds.deadlines,
                                       recurrence_periods=thresholds.recurrence_periods,
                                       config_hash=context.config.digest(), zone=settings.tz)
        runs.finish_run(conn, run.id, status="succeeded")
    return run.id


def check_golden(files: ReportFiles, run_id: str, name: str) -> None:
    """The HTML as the golden file has it; the run's id (random) reads RUN."""
    html = files.html.read_text(encoding="utf-8").replace(run_id, "RUN")
    golden = GOLDEN / name
    if UPDATE_GOLDEN:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(html, encoding="utf-8")
    assert html == golden.read_text(encoding="utf-8"), f"{name} changed: OPSAUDIT_UPDATE_GOLDEN=1 rewrites it"


def test_the_report_reads_like_an_auditors_in_each_language(db_url, engine, monkeypatch, tmp_path):
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    company(engine)
    audit(engine, "2026-09", datetime(2026, 10, 2, 9))
    run_id = audit(engine, "2026-10", datetime(2026, 11, 2, 9))
    folder = tmp_path / "out" / "cs-monthly" / "2026-10"
    settings = load_settings()
    # The operations manager holds the special meeting on 客服二部's major problem and sets up its task force.
    directory = Directory.load(Source(engine), settings)
    with engine.begin() as conn:
        major = conn.execute(sa.select(findings.c.id).where(findings.c.audit_run_id == run_id,
                                                            findings.c.severity == "major",
                                                            findings.c.department_id == "D2")).scalar_one()
        when = datetime(2026, 11, 3, 10, tzinfo=settings.tz)
        record_special_meeting(conn, major, actor="M1", held_on=date(2026, 11, 3), note=None, directory=directory,
                               now=when)
        record_task_force(conn, major, actor="M1", lead="S2", members=("A4", "A5"), directory=directory, now=when)
    reports = {language: write_report(engine, settings, run_id, language, folder) for language in ("zh-CN", "en")}

    zh, en = (reports[language].html.read_text(encoding="utf-8") for language in ("zh-CN", "en"))
    for section in ("管理层摘要", "一、稽查目的", "二、稽查范围", "三、稽查方法", "四、发现的问题", "五、问题分析",
                    "六、整改建议", "七、以前期间问题的整改情况"):
        assert section in zh
    # Problems by department and rule, the owner and deadline, the rule's own recommendation, the trend.
    assert "客服二部（D2）" in zh and "客户满意度未达标" in zh and "周敏（M1）" in zh
    assert "已于2026-11-03召开专题会议" in zh and "组长郑强（S2），成员郑强（S2）、刘洋（A4）、陈静（A5）" in zh
    assert catalogue("zh-CN")["rule.cs.satisfaction_rate.recommendation"] in zh
    assert zh.count("<svg") >= 2 and "2026年9月" in zh and "2026年10月" in zh
    assert catalogue("en")["rule.cs.satisfaction_rate.title"] in en
    assert catalogue("en")["rule.cs.satisfaction_rate.recommendation"] in en
    # Never two languages in one report: no message of one catalogue in the other's report.
    for mine, theirs, html in (("zh-CN", "en", zh), ("en", "zh-CN", en)):
        leaked = [key for key, words in catalogue(theirs).items() if key.startswith("report.") and "{" not in words
                  and len(words) > 6 and words != catalogue(mine)[key] and words in html]
        assert leaked == []
    assert not re.search(r"[\u4e00-\u9fff]", re.sub("|".join(["运营部", "客服一部", "客服二部", "周敏", "孙丽", "郑强",
                                                              *(name for name, _ in AGENTS.values())]), "", en))

    for language in ("zh-CN", "en"):
        files = reports[language]
        assert {files.html.parent, files.pdf.parent, files.csv.parent, files.json.parent} == {folder}
        assert files.pdf.read_bytes().startswith(b"%PDF")
        assert json.loads(files.json.read_text(encoding="utf-8"))["audit_run_id"] == run_id
        with files.csv.open(encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
        assert lines[0][0] == catalogue(language)["field.id"] and len(lines) > 1
        check_golden(files, run_id, f"report.{language}.html")


def test_a_month_of_three_thousand_agent_findings_is_grouped_and_read_in_constant_statements(
        db_url, engine, monkeypatch, tmp_path):
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    upgrade(engine)
    settings = load_settings()
    counted = []
    for agents in (30, 3000):
        run_id = _agents_failing(engine, agents, f"2026-{10 if agents == 30 else 11}")
        statements: list[str] = []

        def count(*args, statements=statements) -> None:
            statements.append(args[2])

        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            files = write_report(engine, settings, run_id, "zh-CN", tmp_path / str(agents))
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        counted.append(len(statements))
        html = files.html.read_text(encoding="utf-8")
        # The report lists the 40 worst agents and groups the rest; the CSV has every finding.
        assert html.count('class="agent-row"') == min(agents, 40)
        with files.csv.open(encoding="utf-8-sig") as handle:
            assert len(list(csv.reader(handle))) == agents + 1
    assert counted[0] == counted[1]
    assert "共3,000项客服人员个人指标未达标" in html


def _agents_failing(engine: sa.Engine, agents: int, period: str) -> str:
    """A run whose satisfaction rule failed for `agents` agents in 20 departments, stored through the store API."""
    settings = load_settings()
    now = parse_period(period).end + timedelta(days=1)
    results = [CheckResult("cs.satisfaction_rate", "customer_service", "agent", f"A{i:04d}", Outcome.FAILED,
                           Severity.IMPORTANT if i % 7 == 0 else Severity.GENERAL, department_id=f"D{i % 20:02d}",
                           owner_id=f"A{i:04d}", observed=0.80 - (i % 13) / 100, target=0.90, population=40,
                           facts={"unit": "rate", "op": "at_least", "department": f"D{i % 20:02d}",
                                  "agent": f"A{i:04d}", "observed": 0.80 - (i % 13) / 100, "target": 0.9,
                                  "population": 40})
               for i in range(agents)]
    with engine.begin() as conn:
        run = runs.start_run(conn, audit="cs-monthly", kind="periodic", period=parse_period(period),
                             parameters={"period": period, "now": now.isoformat()}, config_hash="x",
                             started_at=now.replace(tzinfo=settings.tz))
        runs.save_results(conn, run.id, results)
        thresholds = settings.load_config().thresholds
        findings_store.record_findings(conn, run, results, found_at=now.replace(tzinfo=settings.tz),
                                       deadlines=thresholds.deadlines, recurrence_periods=0, config_hash="x",
                                       zone=settings.tz)
        runs.finish_run(conn, run.id, status="succeeded")
    return run.id


def test_a_data_check_of_a_whole_table_names_the_table_alone_and_of_a_column_both() -> None:
    """qa_reviews.* is the table as a whole (its freshness): never 质检复核记录表的“*”."""
    from opsaudit.i18n import entity_reference
    from opsaudit.reports.render import View
    from opsaudit.reports.report_data import Kpi

    def item(language: str, rule_id: str, entity_id: str) -> str:
        kpi = Kpi(rule_id, "table_column", entity_id, None, None, None, None, None, "failed", "major")
        return View(None, language).quality_item(kpi)  # type: ignore[arg-type] - reads no report data

    assert item("zh-CN", "dq.freshness", "qa_reviews.*") == "质检复核记录表：数据未及时更新"
    assert item("zh-CN", "dq.time_order", "tickets.closed_at") == "工单表的“关闭时间”：时间先后顺序错误"
    assert item("en", "dq.freshness", "qa_reviews.*") == "the QA reviews table: Data not up to date"
    assert item("en", "dq.time_order", "tickets.closed_at") == \
        "the closing time of the tickets table: Timestamps out of order"
    # Where findings are listed by kind and id (CSV, workbook, `findings show`): the table, not a column.
    assert entity_reference("table_column", "qa_reviews.*", "zh-CN") == "数据表 qa_reviews"
    assert entity_reference("table_column", "qa_reviews.*", "en") == "table qa_reviews"
    assert entity_reference("table_column", "tickets.closed_at", "zh-CN") == "数据字段 tickets.closed_at"


def test_the_pdf_sets_chinese_in_the_embedded_cut_cjk_font_with_no_glyph_missing(tmp_path, monkeypatch):
    from fontTools.ttLib import TTCollection

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'company.db'}")
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", str(engine.url))
    company(engine)
    run_id = audit(engine, "2026-10", datetime(2026, 11, 2, 9))
    files = write_report(engine, load_settings(), run_id, "zh-CN", tmp_path / "report")

    fonts = subprocess.run(["pdffonts", str(files.pdf)], check=True, capture_output=True, text=True).stdout
    embedded = [line.split()[0] for line in fonts.splitlines()[2:]]
    # The cut font of `make fonts` (reports/fonts.py): every character of this report is in it.
    assert embedded and all("Noto-Sans-CJK-SC-Subset" in name for name in embedded), fonts
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:]), fonts  # every font embedded
    # Every character the PDF shows is one the CJK font has: no missing-glyph box.
    shown = subprocess.run(["pdftotext", "-enc", "UTF-8", str(files.pdf), "-"], check=True, capture_output=True,
                           text=True).stdout
    assert "稽查报告" in shown and "整改建议" in shown
    font = TTCollection(str(CJK_FONT)).fonts[0].getBestCmap()
    missing = sorted({ch for ch in shown if not ch.isspace() and ord(ch) not in font})
    assert missing == []


def test_the_flows_task_and_the_command_write_the_report_in_the_runs_folder(tmp_path, monkeypatch):
    import typer
    from prefect.logging import disable_run_logger
    from typer.testing import CliRunner

    from opsaudit.cli.report_render import render
    from opsaudit.store.runs import RunInfo
    from opsaudit.tasks.report import write_reports

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'company.db'}")
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", str(engine.url))
    company(engine)
    run_id = audit(engine, "2026-10", datetime(2026, 11, 2, 9))
    folder = tmp_path / "out" / "cs-monthly" / "2026-10"

    context = build_context(load_settings(), "cs-monthly", period="2026-10", now=datetime(2026, 11, 2, 9))
    with disable_run_logger():
        paths = write_reports.fn(context, RunInfo(run_id, "cs-monthly", "periodic", parse_period("2026-10")))
    assert paths == [str(folder / name) for name in ("report.zh-CN.html", "report.zh-CN.pdf", "findings.zh-CN.csv",
                                                       "results.json")]

    # A report recipient who reads English gets the report written in English too, by the same task.
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "recipients.yaml").write_text(
        "reports:\n  cs-monthly:\n    - {email: board@example.com, language: en}\n", encoding="utf-8")
    context = build_context(load_settings(), "cs-monthly", period="2026-10", now=datetime(2026, 11, 2, 9))
    with disable_run_logger():
        both = write_reports.fn(context, RunInfo(run_id, "cs-monthly", "periodic", parse_period("2026-10")))
    assert both == [str(folder / name) for name in ("report.zh-CN.html", "report.zh-CN.pdf", "findings.zh-CN.csv",
                                                      "report.en.html", "report.en.pdf", "findings.en.csv",
                                                      "results.json")]
    assert "Customer service" in (folder / "report.en.html").read_text(encoding="utf-8")
    (folder / "report.en.html").unlink()

    app = typer.Typer()
    app.command("render")(render)
    app.command("other")(lambda: None)  # two commands: typer then takes the command's name
    result = CliRunner().invoke(app, ["render", run_id[:8], "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "Audit report written:"
    assert (folder / "report.en.html").exists() and str(folder / "report.en.pdf") in result.output

    unknown = CliRunner().invoke(app, ["render", "nothing"])
    assert unknown.exit_code != 0 and str(unknown.exception) == "oa_audit_runs 中没有稽查批次 nothing"
    assert unknown.exception.text("en") == "audit run nothing: no such run in oa_audit_runs"

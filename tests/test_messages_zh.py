"""Settings, configuration and source errors, and the periodic flows' refusals, read in Chinese by
default (issue 19, item 6): one line naming the variable, table, column or file at fault, worded by
the catalogue in OPSAUDIT_LANGUAGE, never a password; a bad period given in the Prefect UI fails
the run with that line as its message and no traceback."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import sqlalchemy as sa
from dashboard import run_logs, run_of
from test_flows import company  # noqa: F401 - the fixture

from opsaudit.audit import build_context, preflight
from opsaudit.db import check_reachable, source_engine
from opsaudit.errors import ConfigError, OpsauditError, SourceError
from opsaudit.settings import load_settings
from opsaudit.special import SpecialAudit, prepare
from opsaudit.store.schema import audit_runs
from tests.terminal import assert_chinese_line

pytestmark = pytest.mark.usefixtures("prefect_harness")

NOW = datetime(2026, 11, 30, 9)


def checked(audit: str = "cs-monthly") -> None:
    """The pre-flight of a periodic audit of October, as the audit's first step runs it."""
    preflight(build_context(load_settings(), audit, period="2026-10", now=NOW))


# --- settings -----------------------------------------------------------------------------------

def test_an_operations_department_not_in_the_departments_table(company, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPSAUDIT_OPERATIONS_DEPARTMENT", "OPZ")
    with pytest.raises(ConfigError) as refused:
        checked()
    assert_chinese_line(str(refused.value), "OPSAUDIT_OPERATIONS_DEPARTMENT", "OPZ", "departments", "department_id")
    assert refused.value.text("en") == ("environment: OPSAUDIT_OPERATIONS_DEPARTMENT: 'OPZ' is not a department_id "
                                        "of the departments table")


def test_an_operations_department_without_an_active_manager(company, monkeypatch):  # noqa: F811
    with company.begin() as conn:
        conn.execute(sa.text("UPDATE staff SET active = :no WHERE staff_id = 'M1'"), {"no": False})
    with pytest.raises(ConfigError) as refused:
        checked()
    assert_chinese_line(str(refused.value), "OPSAUDIT_OPERATIONS_DEPARTMENT", "OPS", "staff", "manager")
    assert "运营部经理" in str(refused.value)


@pytest.mark.parametrize(("lead", "update", "named"), [
    pytest.param("S999", None, ("staff", "staff_id"), id="not in the staff table"),
    pytest.param("A1", "UPDATE staff SET active = :no WHERE staff_id = 'A1'", ("staff",), id="no longer active"),
    pytest.param("M1", None, ("OPS", "manager"), id="not an auditor"),
])
def test_an_audit_lead_who_cannot_be_the_lead(company, monkeypatch, lead, update, named):  # noqa: F811
    if update:
        with company.begin() as conn:
            conn.execute(sa.text(update), {"no": False})
    monkeypatch.setenv("OPSAUDIT_AUDIT_LEAD", lead)
    with pytest.raises(ConfigError) as refused:
        checked()
    assert_chinese_line(str(refused.value), "OPSAUDIT_AUDIT_LEAD", lead, *named)
    assert refused.value.text("en").startswith("environment: OPSAUDIT_AUDIT_LEAD: ")


def test_an_output_folder_that_cannot_be_written(company, monkeypatch, tmp_path):  # noqa: F811
    (tmp_path / "outfile").write_text("x")
    monkeypatch.setenv("OPSAUDIT_OUTPUT_DIR", str(tmp_path / "outfile"))
    with pytest.raises(ConfigError) as refused:
        checked()
    message = str(refused.value)
    folder = message.split("文件夹")[1].split("（")[0]
    assert_chinese_line(message, "OPSAUDIT_OUTPUT_DIR", folder)
    assert folder.endswith("outfile/cs-monthly/2026-10") and "路径中有一段是文件而不是文件夹" in message


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("OPSAUDIT_TIMEZONE", "Mars/Olympus", ("Mars/Olympus", "Asia/Shanghai")),
    ("OPSAUDIT_LANGUAGE", "fr", ("fr", "zh-CN", "en")),
    ("OPSAUDIT_SMTP_PORT", "0", ()),
    ("OPSAUDIT_WEB_URL", "ftp://intranet", ("ftp://intranet", "http://", "https://")),
])
def test_a_bad_variable_names_itself(monkeypatch, variable, value, named):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert_chinese_line(str(refused.value), variable, *named)


def test_a_bad_variable_reads_in_english_when_opsaudit_speaks_english(monkeypatch):
    monkeypatch.setenv("OPSAUDIT_LANGUAGE", "en")
    monkeypatch.setenv("OPSAUDIT_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value) == "environment: OPSAUDIT_TIMEZONE: unknown time zone 'Mars/Olympus' (e.g. Asia/Shanghai)"


# --- databases ----------------------------------------------------------------------------------

def test_an_unreachable_database_is_named_without_its_password():
    engine = source_engine("postgresql+psycopg://auditor:s3cret@127.0.0.1:1/ops", timezone="Asia/Shanghai")
    with pytest.raises(SourceError) as refused:
        check_reachable(engine, purpose="database")
    message = str(refused.value)
    assert message.startswith("业务数据库（OPSAUDIT_DATABASE_URL）：postgresql+psycopg://auditor:***@127.0.0.1:1/ops："
                              "无法连接（")
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize("url", ["not a url", "postgresql://auditor:s3cret@host:port/ops"])
def test_a_url_that_is_no_url_is_named_by_its_setting_and_never_shown(url):
    with pytest.raises(SourceError) as refused:
        source_engine(url, timezone="Asia/Shanghai")
    message = str(refused.value)
    assert_chinese_line(message, "OPSAUDIT_DATABASE_URL", "SQLAlchemy", "postgresql+psycopg://user@host:5432/name")
    assert "s3cret" not in message and url not in message


def test_a_store_url_that_is_no_url_names_the_store_setting():
    from opsaudit.db import store_engine
    from opsaudit.errors import StoreError

    with pytest.raises(StoreError) as refused:
        store_engine("::")
    assert str(refused.value).startswith("稽查数据库（OPSAUDIT_STORE_URL）：不是有效的数据库地址")


# --- the source's tables ------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "request_fields", "field"), [
    ("departments", {}, "departments"),
    ("staff", {"requested_by": "M1"}, "requested_by"),
])
def test_a_special_audit_on_a_source_without_a_directory_table(company, table, request_fields, field):  # noqa: F811
    with company.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {table}"))
    request = SpecialAudit(areas=["customer_service"], departments=["D2"], first_day="2026-10-01",
                           last_day="2026-10-31", reason="客户投诉翻倍", **request_fields)
    with pytest.raises(SourceError) as refused:
        prepare(load_settings(), request, NOW)
    assert_chinese_line(str(refused.value), table, field)
    assert str(refused.value).startswith(f"业务数据库：没有{table}表")


def test_a_config_whose_audit_has_no_enabled_rule_names_file_and_key(tmp_path, monkeypatch):
    from opsaudit.audit import load_rules

    settings = load_settings()
    rules = {rule.rule_id for rule in load_rules(settings, settings.load_config()) if rule.area == "customer_service"}
    folder = tmp_path / "every-rule-off"
    folder.mkdir()
    (folder / "thresholds.yaml").write_text("rules:\n" + "".join(f"  {r}: {{enabled: false}}\n" for r in sorted(rules)))
    monkeypatch.setenv("OPSAUDIT_CONFIG_DIR", str(folder))
    with pytest.raises(ConfigError) as refused:
        build_context(load_settings(), "cs-monthly", period="2026-10", now=NOW)
    message = str(refused.value)
    where = message.split("：")[0]
    assert where.endswith("audits.yaml")
    assert_chinese_line(message, where, "audits.cs-monthly.areas", "customer_service")


# --- the periodic flows started from the Prefect UI ---------------------------------------------

def refused_run(state) -> str:
    """The failed run's message, after checking it is one line, has no traceback in the run's
    log, and recorded no audit run."""
    assert state.is_failed()
    run = run_of(state)
    assert run.state.is_failed() and "\n" not in run.state.message
    logs = run_logs(run.id)
    assert not any("Traceback" in line or "Encountered exception" in line for line in logs), logs
    return run.state.message


@pytest.mark.parametrize(("flow", "period", "message"), [
    ("cs_monthly", "2026/11", "period：“2026/11”不是有效的期间"),
    ("cs_weekly", "2026-10", "period：cs-weekly 按周稽查，“2026-10”不是周而是月"),
    ("planning_quarterly", "2026Q4", "period：2026Q4尚未结束"),
])
def test_a_bad_period_from_the_ui_fails_the_run_in_one_chinese_line(company, flow, period, message):  # noqa: F811
    from opsaudit.flows import audits

    state = getattr(audits, flow)(period=period, now=NOW, return_state=True)

    assert message in refused_run(state)
    with company.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_runs)).scalar() == 0


def test_a_period_that_has_not_ended_on_the_real_clock_is_refused(company):  # noqa: F811
    from opsaudit.flows.audits import cs_monthly

    assert "period：2999-01尚未结束" in refused_run(cs_monthly(period="2999-01", return_state=True))


def test_a_bad_setting_fails_the_run_in_one_line_before_anything_is_recorded(company, monkeypatch):  # noqa: F811
    from opsaudit.flows.audits import execution_monthly

    monkeypatch.setenv("OPSAUDIT_OPERATIONS_DEPARTMENT", "OPZ")
    shown = refused_run(execution_monthly(period="2026-10", now=NOW, return_state=True))
    assert shown == "环境变量OPSAUDIT_OPERATIONS_DEPARTMENT：“OPZ”不是departments表中的部门编号（department_id）"


def test_the_refusal_reads_in_english_when_opsaudit_speaks_english(company, monkeypatch):  # noqa: F811
    from opsaudit.flows.audits import cs_monthly

    monkeypatch.setenv("OPSAUDIT_LANGUAGE", "en")
    shown = refused_run(cs_monthly(period="2026/11", now=NOW, return_state=True))
    assert shown.startswith("period: '2026/11' is not a period")


def test_a_bad_month_for_the_circulation_fails_the_run_in_one_line(company):  # noqa: F811
    from opsaudit.flows.circulation import monthly_circulation

    assert "month：" in refused_run(monthly_circulation(month="2026-13", now=NOW, return_state=True))
    assert "month：2026年12月尚未结束" in refused_run(monthly_circulation(month="2026-12", now=NOW,
                                                                          return_state=True))


def test_a_flow_called_in_process_raises_the_refusal_itself(company):  # noqa: F811
    """The command line and the demo call the flows directly: the error is raised as itself."""
    from opsaudit.flows.audits import cs_monthly

    with pytest.raises(OpsauditError) as refused:
        cs_monthly(period="2026/11", now=NOW)
    assert "period：“2026/11”不是有效的期间" in str(refused.value)


def test_an_audit_logs_its_steps_in_chinese(company):  # noqa: F811
    from opsaudit.flows.audits import execution_monthly

    state = execution_monthly(period="2026-10", now=NOW, return_state=True)

    assert state.is_completed()
    logs = run_logs(run_of(state).id)
    assert "运营执行月度稽查：稽查期间为2026年10月" in logs
    assert any(re.fullmatch(r"数据质量：检查\d+项，未通过\d+项", line) for line in logs), logs
    assert any(line.startswith("稽查报告（中文）：") for line in logs), logs
    assert any(re.fullmatch(r"未设置OPSAUDIT_SMTP_HOST：\d+封邮件在待发邮件中等候", line) for line in logs), logs

"""Errors met while a command, an audit or the web runs, read in Chinese by default and in English
on request: the source against the contract, the audit store, the mail server, the web's port and
secrets, the fonts, the spot check and the rule engine. Each is driven through the real code on a
real SQLite database; the Chinese line has no Latin word but the names it quotes (tables, columns,
settings, commands, paths, what a database says), the English one reads as it did before."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from opsaudit.config.models import KeyTaskWatch, Sampling, SourceMapping, TableSource
from opsaudit.contract import metadata
from opsaudit.errors import ConfigError, InputError, OpsauditError, SourceError, StoreError, UsageError
from opsaudit.i18n import Message
from opsaudit.settings import load_settings
from opsaudit.source import Source, check_source
from tests.terminal import assert_chinese_line, error_line

ZH, EN = "zh-CN", "en"
NOW = datetime(2026, 11, 2, 9)


def assert_chinese_lines(lines: list[str], *names: str) -> None:
    """Each line in Chinese, its Latin words only those of `names` it quotes."""
    for line in lines:
        assert_chinese_line(line, *(name for name in names if name in line))


def opsaudit(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command line as a person runs it, with OPSAUDIT_* settings `env` added."""
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def sqlite_engine(path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{path}")


@pytest.fixture
def contract_db(tmp_path) -> Iterator[sa.Engine]:
    """An operational SQLite database with every contract table, empty."""
    engine = sqlite_engine(tmp_path / "ops.db")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


# --- the source against the contract ------------------------------------------------------------

# What the lines about the broken source name.
BROKEN = ("plan_adjustments", "tickets.reopened_count", "tickets.satisfaction", "TEXT", "int")


def _break_the_source(engine: sa.Engine) -> None:
    """A dropped column, a dropped table and a column of the wrong type."""
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE tickets DROP COLUMN satisfaction"))
        conn.execute(sa.text("DROP TABLE plan_adjustments"))
        conn.execute(sa.text("ALTER TABLE tickets DROP COLUMN reopened_count"))
        conn.execute(sa.text("ALTER TABLE tickets ADD COLUMN reopened_count TEXT"))


def test_check_source_words_each_problem_when_it_is_read(contract_db):
    _break_the_source(contract_db)
    problems = check_source(Source(contract_db))
    assert all(isinstance(problem, Message) for problem in problems)
    assert sorted(problem.text(EN) for problem in problems) == [
        "plan_adjustments: missing table (contract table plan_adjustments)",
        "tickets.reopened_count: wrong type TEXT, expected int (contract tickets.reopened_count)",
        "tickets.satisfaction: missing column (contract tickets.satisfaction)"]
    chinese = sorted(problem.text(ZH) for problem in problems)
    assert chinese == ["plan_adjustments：缺少数据表（数据约定中的plan_adjustments表）",
                       "tickets.reopened_count：字段类型为TEXT，应为int（数据约定中的tickets.reopened_count）",
                       "tickets.satisfaction：缺少字段（数据约定中的tickets.satisfaction）"]
    assert_chinese_lines(chinese, *BROKEN)


def test_a_mapped_select_is_named_as_such_in_either_language(contract_db):
    failing = SourceMapping(tables={"staff": TableSource(select="SELECT staff_id FROM nowhere")})
    [fails] = check_source(Source(contract_db, failing), ("staff",))
    assert fails.text(EN) == "staff (mapped SELECT): the SELECT fails: no such table: nowhere"
    assert fails.text(ZH) == "staff（映射的查询语句）：查询语句执行失败（no such table: nowhere）"
    assert_chinese_line(fails.text(ZH), "staff", "no such table: nowhere")

    narrow = SourceMapping(tables={"departments": TableSource(
        select="SELECT department_id, name, parent_id FROM departments")})
    [missing] = check_source(Source(contract_db, narrow), ("departments",))
    assert missing.text(EN) == "departments (mapped SELECT).head_id: missing column (contract departments.head_id)"
    assert_chinese_line(missing.text(ZH), "departments", "head_id", "departments.head_id")


def test_check_source_on_the_command_line_prints_a_line_a_problem_in_the_readers_language(contract_db, tmp_path):
    _break_the_source(contract_db)
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    chinese = opsaudit("init", "--check-source", "--db", url)
    assert chinese.returncode == 1
    lines = chinese.stdout.splitlines()
    assert len(lines) == 3 and "plan_adjustments：缺少数据表（数据约定中的plan_adjustments表）" in lines
    assert_chinese_lines(lines, *BROKEN)
    english = opsaudit("init", "--check-source", "--db", url, "--lang", "en")
    assert english.returncode == 1
    assert "tickets.satisfaction: missing column (contract tickets.satisfaction)" in english.stdout.splitlines()
    assert "plan_adjustments: missing table (contract table plan_adjustments)" in english.stdout.splitlines()


def test_the_directory_without_its_staff_table(contract_db, tmp_path, monkeypatch):
    from opsaudit.store.roles import load_directory

    with contract_db.begin() as conn:
        conn.execute(sa.text("DROP TABLE staff"))
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", f"sqlite:///{tmp_path / 'ops.db'}")
    settings = load_settings()
    with pytest.raises(SourceError) as refused:
        load_directory(settings, settings.load_config())
    assert refused.value.text(EN) == ("database: staff: missing table (contract table staff); it tells who may act "
                                      "on a finding and who is told")
    assert str(refused.value).startswith("业务数据库：staff：缺少数据表（数据约定中的staff表）；")
    assert_chinese_line(str(refused.value), "staff")


def test_unreadable_recipients_and_key_tasks_name_their_table(contract_db):
    from opsaudit.key_tasks import at_risk
    from opsaudit.reports.recipients import Directory

    mapping = SourceMapping(tables={"staff": TableSource(select="SELECT * FROM no_such_hr_table")})
    with pytest.raises(SourceError) as refused:
        Directory.load(Source(contract_db, mapping), load_settings())
    assert refused.value.text(EN) == ("staff (mapped SELECT): cannot read the recipients: "
                                      "no such table: no_such_hr_table")
    assert_chinese_line(str(refused.value), "staff", "no such table: no_such_hr_table")

    with contract_db.begin() as conn:
        conn.execute(sa.text("ALTER TABLE tasks DROP COLUMN priority"))
    with pytest.raises(SourceError) as refused:
        at_risk(Source(contract_db), KeyTaskWatch(), NOW.replace(tzinfo=ZoneInfo("Asia/Shanghai")),
                ZoneInfo("Asia/Shanghai"))
    reason = refused.value.text(EN).removeprefix("tasks: cannot read the key tasks: ")
    assert reason != refused.value.text(EN) and "priority" in reason
    assert str(refused.value) == f"tasks：无法读取重点任务（{reason}）"
    assert_chinese_line(str(refused.value), "tasks", reason)


def test_a_rule_query_that_fails_names_its_tables(contract_db):
    from opsaudit.checks import engine as rule_engine
    from opsaudit.checks.spec import effective_rules
    from opsaudit.config.loader import load_config
    from opsaudit.periods import parse_period

    with contract_db.begin() as conn:
        conn.execute(sa.text("ALTER TABLE tickets DROP COLUMN satisfaction"))
    rules = [rule for rule in effective_rules(load_config(None).thresholds) if rule.rule_id == "cs.satisfaction_rate"]
    with pytest.raises(SourceError) as refused:
        rule_engine.compute(Source(contract_db), rules, parse_period("2026-10"), now=NOW,
                            available={"tickets", "departments", "staff"})
    english = refused.value.text(EN)
    assert english.startswith("query on ") and " failed: " in english and "satisfaction" in english
    tables, reason = english.removeprefix("query on ").split(" failed: ")
    assert str(refused.value) == f"查询{tables.replace(', ', '、')}表失败（{reason}）"
    assert_chinese_line(str(refused.value), *tables.split(", "), reason)


def test_a_spot_check_without_records_says_so(contract_db):
    from opsaudit.checks.spot_check import draw, window_before

    window = window_before(NOW)
    with pytest.raises(SourceError) as refused:
        draw(Source(contract_db), ["execution", "customer_service"], window, 7, Sampling())
    first, last = window.label.split("..")
    assert str(refused.value) == (f"不定期抽查：{first}至{last}期间customer_service、execution均没有记录，"
                                  "无可抽取的样本")
    assert_chinese_line(str(refused.value), first, last, "customer_service", "execution")
    assert refused.value.text(EN).startswith("spot check: no records of customer_service, execution from ")
    assert refused.value.text(EN).endswith(": nothing to sample")


# --- QA import and the demo on the command line -------------------------------------------------

def test_qa_import_of_a_file_that_is_not_there(contract_db, tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    missing = str(tmp_path / "missing.xlsx")
    chinese = opsaudit("qa", "import", missing, "--db", url)
    assert chinese.returncode == 1 and chinese.stderr == error_line(f"{missing}：文件不存在", ZH) + "\n"
    english = opsaudit("qa", "import", missing, "--db", url, "--lang", "en")
    assert english.stderr == error_line(f"{missing}: no such file", EN) + "\n"


def test_qa_import_into_a_database_without_the_contract_tables(tmp_path):
    sqlite_engine(tmp_path / "empty.db").connect().close()
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("review_id\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    chinese = opsaudit("qa", "import", str(sheet), "--db", url)
    line = chinese.stderr.removesuffix("\n").removeprefix(error_line("", ZH))
    assert chinese.returncode == 1 and line == ("业务数据库：qa_reviews、staff、tickets：缺少数据表"
                                                "（qa import须读取tickets、staff表，并写入qa_reviews表）")
    assert_chinese_line(line, "qa_reviews", "staff", "tickets", "qa import")
    english = opsaudit("qa", "import", str(sheet), "--db", url, "--lang", "en")
    assert english.stderr == error_line("database: qa_reviews, staff, tickets: missing table (qa import reads "
                                        "tickets, staff and writes qa_reviews)", EN) + "\n"


def test_the_demo_never_replaces_data_without_asking(contract_db, tmp_path):
    with contract_db.begin() as conn:
        conn.execute(sa.text("INSERT INTO departments (department_id, name) VALUES ('D1', '客服一部')"))
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    chinese = opsaudit("init", "--demo", "--db", url)
    line = chinese.stderr.removesuffix("\n").removeprefix(error_line("", ZH))
    assert chinese.returncode == 1
    assert line == (f"业务数据库：{url}：数据约定中的表已有数据（departments）；"
                    "如确要删除这些表并在此生成演示数据，请加上--replace")
    assert_chinese_line(line, url, "departments", "--replace")
    english = opsaudit("init", "--demo", "--db", url, "--lang", "en")
    assert english.stderr == error_line(f"database {url}: contract tables already hold data (departments); add "
                                        "--replace to drop them and build the demo there", EN) + "\n"


# --- the audit store ----------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path) -> Iterator[sa.Engine]:
    from opsaudit.db import store_engine

    engine = store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    yield engine
    engine.dispose()


def test_a_store_before_init_says_to_run_init(store):
    from opsaudit.store.migrate import head_revision, require_current

    with pytest.raises(StoreError) as refused:
        require_current(store)
    head = head_revision()
    assert refused.value.text(EN) == f"audit store has no opsaudit schema, expected {head}: run `opsaudit init`"
    assert str(refused.value) == f"稽查数据库尚未初始化（应为结构版本{head}）：请运行 `opsaudit init`"
    assert_chinese_line(str(refused.value), head, "opsaudit init")


def test_a_store_of_a_newer_opsaudit_is_left_alone(store, tmp_path):
    from opsaudit.store.migrate import head_revision, require_current, upgrade
    from opsaudit.store.schema import VERSION_TABLE

    upgrade(store)
    with store.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    url, head = f"sqlite:///{tmp_path / 'store.db'}", head_revision()
    for step in (upgrade, require_current):
        with pytest.raises(StoreError) as refused:
            step(store)
        assert refused.value.text(EN) == (f"store: {url}: the audit store is at revision 9999, newer than this "
                                          f"opsaudit knows (its newest is {head}); upgrade opsaudit")
        assert str(refused.value) == (f"稽查数据库：{url}：结构版本9999比本版opsaudit所知的最新版本{head}更新，"
                                      "请升级opsaudit")
        assert_chinese_line(str(refused.value), url, "9999", head, "opsaudit")


def test_a_store_that_lost_its_version_table(store, tmp_path):
    from opsaudit.store.migrate import upgrade
    from opsaudit.store.schema import VERSION_TABLE

    upgrade(store)
    with store.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
    with pytest.raises(StoreError) as refused:
        upgrade(store)
    english = refused.value.text(EN)
    assert f"but no version table {VERSION_TABLE}; restore it from a backup, or point OPSAUDIT_STORE_URL at " \
           "another database" in english
    tables = english.split("has audit-store tables (")[1].split(")")[0].split(", ")
    assert "oa_audit_runs" in tables
    assert_chinese_line(str(refused.value), f"sqlite:///{tmp_path / 'store.db'}", VERSION_TABLE, "OPSAUDIT_STORE_URL",
                        *tables)


def test_a_read_only_store_is_refused_before_an_audit(store, tmp_path):
    from opsaudit.store.migrate import require_writable, upgrade

    upgrade(store)
    url = f"sqlite:///file:{tmp_path / 'store.db'}?mode=ro&uri=true"
    read_only = sa.create_engine(url)
    with pytest.raises(StoreError) as refused:
        require_writable(read_only)
    read_only.dispose()
    english = refused.value.text(EN)
    assert english.endswith(": cannot write to the audit store: attempt to write a readonly database")
    where = english.removeprefix("store: ").split(": cannot write")[0]
    assert str(refused.value) == f"稽查数据库：{where}：无法写入（attempt to write a readonly database）"
    assert_chinese_line(str(refused.value), where, "attempt to write a readonly database")


def test_the_stores_upserts_name_the_dialects_they_need():
    from opsaudit.reports.outbox import _insert_once
    from opsaudit.reports.review import _upsert

    with pytest.raises(StoreError) as refused:
        _insert_once("mysql")
    assert refused.value.text(EN) == "audit store: the outbox needs SQLite or PostgreSQL, not mysql"
    assert str(refused.value) == "稽查数据库：发件箱只支持SQLite或PostgreSQL，不支持mysql"
    with pytest.raises(StoreError) as refused:
        _upsert("oracle")
    assert refused.value.text(EN) == "audit store: the audit report review gate needs SQLite or PostgreSQL, not oracle"
    assert_chinese_line(str(refused.value), "SQLite", "PostgreSQL", "oracle")


def test_an_unknown_lifecycle_action_lists_the_actions(store):
    from opsaudit.reports.recipients import Directory
    from opsaudit.store.lifecycle import ACTIONS, Request, perform
    from opsaudit.store.migrate import upgrade

    upgrade(store)
    with store.begin() as conn, pytest.raises(UsageError) as refused:
        perform(conn, "F1", Request(action="fly", actor="M1"), Directory({}, {}, "OPS"), now=NOW)
    assert refused.value.text(EN) == f"unknown action 'fly' (expected one of: {', '.join(ACTIONS)})"
    assert_chinese_line(str(refused.value), "fly", *ACTIONS)


# --- the mail server's settings ------------------------------------------------------------------

def test_a_mail_server_that_is_not_set():
    from opsaudit.reports.mail import SmtpTransport

    with pytest.raises(ConfigError) as refused:
        SmtpTransport(load_settings())
    assert refused.value.text(EN) == "environment: OPSAUDIT_SMTP_HOST is not set"
    assert str(refused.value) == "未设置邮件服务器（环境变量OPSAUDIT_SMTP_HOST）"


def test_ssl_and_starttls_together():
    from opsaudit.reports.mail import SmtpTransport

    with pytest.raises(ConfigError) as refused:
        SmtpTransport(load_settings(smtp_host="mail.example.com", smtp_ssl=True, smtp_starttls=True))
    assert refused.value.text(EN) == (
        "environment: OPSAUDIT_SMTP_SSL and OPSAUDIT_SMTP_STARTTLS exclude each other: SSL is TLS from the start "
        "(port 465), STARTTLS upgrades a plain connection (587)")
    assert_chinese_line(str(refused.value), "OPSAUDIT_SMTP_SSL", "OPSAUDIT_SMTP_STARTTLS", "SSL", "STARTTLS")


def test_a_sender_without_an_address():
    from opsaudit.reports.mail import SmtpTransport

    with pytest.raises(ConfigError) as refused:
        SmtpTransport(load_settings(smtp_host="mail.example.com", smtp_from="audit"))
    assert refused.value.text(EN) == "environment: OPSAUDIT_SMTP_FROM: 'audit' has no e-mail address"
    assert str(refused.value) == "环境变量OPSAUDIT_SMTP_FROM：“audit”中没有电子邮件地址"


def test_a_ca_file_that_is_missing_or_no_pem(tmp_path):
    from opsaudit.reports.mail import SmtpTransport

    missing = tmp_path / "none.pem"
    with pytest.raises(ConfigError) as refused:
        SmtpTransport(load_settings(smtp_host="mail.example.com", smtp_ca_file=missing))
    assert refused.value.text(EN) == (f"environment: OPSAUDIT_SMTP_CA_FILE: {missing}: cannot be read as PEM "
                                      "certificates: no such file")
    assert str(refused.value) == f"环境变量OPSAUDIT_SMTP_CA_FILE：{missing}：无法作为PEM证书读取（文件不存在）"
    with pytest.raises(ConfigError) as refused:
        SmtpTransport(load_settings(smtp_host="mail.example.com", smtp_ca_file=tmp_path))
    assert str(refused.value).endswith("（这是文件夹，不是文件）")
    (tmp_path / "notes.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError) as refused:
        SmtpTransport(load_settings(smtp_host="mail.example.com", smtp_ca_file=tmp_path / "notes.pem"))
    said = str(refused.value).split("（", 1)[1].removesuffix("）")   # OpenSSL's own words
    assert "certificate" in said.lower()
    assert_chinese_line(str(refused.value), "OPSAUDIT_SMTP_CA_FILE", str(tmp_path / "notes.pem"), "PEM", said)


# --- the web ------------------------------------------------------------------------------------

def test_a_trusted_proxy_that_is_no_network(monkeypatch):
    from opsaudit.web.security import trusted_networks

    monkeypatch.setenv("OPSAUDIT_WEB_TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.x")
    with pytest.raises(ConfigError) as refused:
        trusted_networks(load_settings())
    assert refused.value.text(EN) == ("environment: OPSAUDIT_WEB_TRUSTED_PROXIES: '10.0.0.x' is not an address "
                                      "or network")
    assert str(refused.value) == "环境变量OPSAUDIT_WEB_TRUSTED_PROXIES：“10.0.0.x”不是有效的地址或网段"


def test_a_signing_key_that_cannot_be_read(tmp_path, monkeypatch):
    from opsaudit.web.security import SECRET_FILE, signing_key

    (tmp_path / "datafile").write_text("x")
    monkeypatch.setenv("OPSAUDIT_DATA_DIR", str(tmp_path / "datafile"))
    with pytest.raises(ConfigError) as refused:
        signing_key(load_settings())
    path = str(tmp_path / "datafile" / SECRET_FILE)
    assert refused.value.text(EN) == (f"{path}: cannot read the web's signing key: a part of the path is a file, "
                                      "not a folder")
    assert str(refused.value) == f"{path}：无法读取网页的签名密钥（路径中有一段是文件而不是文件夹）"


def test_a_web_port_that_is_taken_or_not_of_this_machine():
    from opsaudit.cli.web import _require_free

    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OpsauditError) as refused:
            _require_free("127.0.0.1", port)
    assert refused.value.text(EN) == (f"port {port} on 127.0.0.1: address already in use: choose another with "
                                      "--port (opsaudit serve: --web-port)")
    assert str(refused.value) == (f"127.0.0.1的端口{port}无法使用（已被占用）：请用--port换一个端口"
                                  "（opsaudit serve用--web-port）")
    with pytest.raises(OpsauditError) as refused:
        _require_free("192.0.2.1", 8400)   # TEST-NET-1: no machine's own address
    assert str(refused.value).startswith("192.0.2.1的端口8400无法使用（本机没有这个地址）")


# --- the fonts ----------------------------------------------------------------------------------

def test_fonts_without_fontconfig_or_without_the_font(monkeypatch):
    from opsaudit.reports import fonts

    monkeypatch.setattr(fonts, "SOURCE_FAMILY", "No Such Family")
    with pytest.raises(InputError) as refused:
        fonts.source_font(700)
    assert refused.value.text(EN) == "fonts: No Such Family Bold is not installed (Debian: fonts-noto-cjk)"
    assert str(refused.value) == "字体：未安装No Such Family Bold（Debian系统请安装软件包fonts-noto-cjk）"
    monkeypatch.setenv("PATH", "")
    with pytest.raises(InputError) as refused:
        fonts.source_font(400)
    assert refused.value.text(EN) == "fonts: fc-match is not installed (Debian: fontconfig)"
    assert_chinese_line(str(refused.value), "fc-match", "Debian", "fontconfig")


# --- what no test can bring about on demand --------------------------------------------------------

@pytest.mark.parametrize(("message", "english", "named"), [
    (Message.of("error.sample.changed", table="tickets", period="2026-W46"),
     "tickets changed while the sample of week 46 of 2026 was drawn; draw again", ("tickets",)),
    (Message.of("error.quality.gx_failed", rule="dq.range", entity="tickets.satisfaction", tool="Great Expectations",
                expectation="expect_column_values_to_be_between", reason="division by zero"),
     "data quality: dq.range on tickets.satisfaction: Great Expectations could not compute "
     "expect_column_values_to_be_between: division by zero",
     ("dq.range", "tickets.satisfaction", "Great Expectations", "expect_column_values_to_be_between",
      "division by zero")),
    (Message.of("error.quality.gx_unusable", purpose=Message.of("error.purpose.database"), url="sqlite:///ops.db",
                tool="Great Expectations", reason="ValueError"),
     "database: sqlite:///ops.db: Great Expectations cannot use it (ValueError)",
     ("sqlite:///ops.db", "Great Expectations", "ValueError")),
    (Message.of("error.source.table_unreadable", purpose=Message.of("error.purpose.database"), table="tickets",
                reason="disk I/O error"),
     "database: tickets: cannot be read: disk I/O error", ("tickets", "disk I/O error")),
    (Message.of("error.store.cannot_upgrade", url="sqlite:///store.db", reason="database is locked"),
     "store: sqlite:///store.db: cannot create or upgrade the audit store: database is locked",
     ("sqlite:///store.db", "database is locked")),
    (Message.of("error.store.dialect", feature=Message.of("enum.audit.rectification-tracking"), sqlite="SQLite",
                postgresql="PostgreSQL", dialect="mysql"),
     "audit store: rectification follow-up needs SQLite or PostgreSQL, not mysql", ("SQLite", "PostgreSQL", "mysql")),
    (Message.of("error.fonts.lookup", tool="fc-match", family="Noto Sans CJK SC",
                reason=Message.of("error.fonts.exit_status", code=1)),
     "fonts: fc-match cannot look up Noto Sans CJK SC (exit status 1)", ("fc-match", "Noto Sans CJK SC")),
])
def test_the_rarer_errors_read_in_both_languages(message, english, named):
    assert message.text(EN) == english
    assert_chinese_line(message.text(ZH), *named)

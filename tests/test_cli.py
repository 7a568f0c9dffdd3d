"""The command line: exit status 0, 1 and 2, one-line errors, --check-source."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa

from opsaudit.contract import metadata
from tests.terminal import error_line


def opsaudit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, run as a user would."""
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_help_works_everywhere():
    for args in ([], ["init"], ["demo"], ["run"], ["findings"], ["findings", "list"], ["findings", "show"],
                 ["qa", "import"]):
        result = opsaudit(*args, "--help")
        assert result.returncode == 0, (args, result.stderr)
        assert "用法：" in result.stdout
        assert "Usage: " in opsaudit(*args, "--help", env={**os.environ, "OPSAUDIT_LANGUAGE": "en"}).stdout


def test_bad_usage_exits_2():
    assert opsaudit("run", "no-such-audit").returncode == 2
    assert opsaudit("findings", "list", "--format", "yaml").returncode == 2
    assert opsaudit("no-such-command").returncode == 2


def test_init_creates_the_store_and_exits_0(db_url):
    result = opsaudit("init", "--store", db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("稽查数据库已就绪（结构版本")
    english = opsaudit("init", "--store", db_url, "--lang", "en")
    assert english.stdout.startswith("The audit store is ready (schema revision ")
    listed = opsaudit("findings", "list", "--format", "json", "--store", db_url)
    assert listed.returncode == 0 and listed.stdout.strip() == "[]"


def test_unreachable_store_is_one_line_without_password():
    result = opsaudit("findings", "list", "--store", "postgresql+psycopg://auditor:s3cret@127.0.0.1:1/none")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("opsaudit: 错误：稽查数据库（OPSAUDIT_STORE_URL）：")
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback():
    result = opsaudit("--debug", "findings", "list", "--store", "sqlite:////nonexistent/dir/x.db")
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_bad_config_exits_1_naming_file_and_key(tmp_path):
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "thresholds.yaml").write_text("rules:\n  cs.satisfaction_rate:\n    target: 9\n")
    result = opsaudit("run", "cs-monthly", "--store", f"sqlite:///{tmp_path / 's.db'}")
    assert result.returncode == 1
    assert result.stderr.strip() == ("opsaudit: 错误：config/thresholds.yaml：rules.cs.satisfaction_rate.target："
                                     "必须在0到1之间")


def test_check_source_reports_a_dropped_column(db_url, engine):
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE tickets DROP COLUMN satisfaction"))
        conn.execute(sa.text("DROP TABLE plan_adjustments"))
    result = opsaudit("init", "--check-source", "--db", db_url)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert "tickets.satisfaction：缺少字段（数据约定中的tickets.satisfaction）" in lines
    assert "plan_adjustments：缺少数据表（数据约定中的plan_adjustments表）" in lines
    assert len(lines) == 2
    english = opsaudit("init", "--check-source", "--db", db_url, "--lang", "en").stdout.strip().splitlines()
    assert "tickets.satisfaction: missing column (contract tickets.satisfaction)" in english


def test_check_source_passes_a_complete_source(db_url, engine):
    metadata.create_all(engine)
    result = opsaudit("init", "--check-source", "--db", db_url)
    assert result.returncode == 0, result.stdout
    assert result.stdout == "数据源包含数据约定的全部数据表和字段。\n"


def test_check_source_reports_a_wrong_type(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE tickets DROP COLUMN reopened_count"))
        conn.execute(sa.text("ALTER TABLE tickets ADD COLUMN reopened_count TEXT"))
    result = opsaudit("init", "--check-source", "--db", url)
    assert result.returncode == 1
    assert result.stdout.strip() == ("tickets.reopened_count：字段类型为TEXT，应为int"
                                    "（数据约定中的tickets.reopened_count）")


@pytest.mark.parametrize(("args", "message"), [
    (["run", "cs-monthly", "--period", "2026-13"], "--period：“2026-13”不是有效的期间（应为2026、2026Q4、"),
    (["run", "cs-monthly", "--period", "2026/11", "--lang", "en"], "--period: '2026/11' is not a period"),
    (["run", "cs-weekly", "--period", "2026-10"], "cs-weekly 按周稽查，“2026-10”不是周而是月"),
    (["run", "cs-monthly", "--period", "2999-01"], "--period：2999-01尚未结束"),
    (["init", "--scale", "2000"], "--scale的值无效：只能与 --demo 一起使用"),
    (["scores", "--period", "2999-01"], "--period的值无效：2999年1月尚未开始"),
    (["run", "rectification-tracking", "--period", "2026-10"], "rectification-tracking 跟踪全部未关闭的问题"),
    (["run", "cs-monthly", "--now", "x"], "--now的值无效：“x”不是 ISO 时间"),
])
def test_bad_period_or_clock_is_usage(args, message, tmp_path):
    result = opsaudit(*args, "--store", f"sqlite:///{tmp_path / 's.db'}")
    # click's usage error comes in a box that wraps long lines; read it as one line of words
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())
    assert result.returncode == 2 and message in words


def test_a_database_file_that_is_not_there_is_named_in_the_readers_language(tmp_path):
    missing = tmp_path / "nodir" / "x.db"
    for lang, line in (("zh-CN", f"业务数据库：sqlite:///{missing}：数据库文件 {missing} 不存在"),
                       ("en", f"database: sqlite:///{missing}: no such database file {missing}")):
        result = opsaudit("init", "--check-source", "--db", f"sqlite:///{missing}", "--lang", lang)
        assert result.returncode == 1 and result.stderr == error_line(line, lang) + "\n"


def test_init_demo_never_replaces_data_without_asking(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO departments VALUES ('D1', 'Real department', NULL, NULL)"))
    result = opsaudit("init", "--demo", "--db", url)
    assert result.returncode == 1 and "数据约定中的表已有数据（departments）" in result.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM departments")).scalar_one() == "Real department"


def test_demo_ignores_a_configured_database(tmp_path):
    env = {**os.environ, "OPSAUDIT_DATABASE_URL": "postgresql+psycopg://nobody:pw@127.0.0.1:1/production"}
    result = subprocess.run([sys.executable, "-m", "opsaudit", "demo", "--now", "2026-11-21T10:00"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "opsaudit.db").is_file()

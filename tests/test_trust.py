"""Hostile inputs and faults: each case gives one clear line, the right exit status, and leaves the
audit store exactly as it was. No mistyped config, path or variable gives a successful-looking
audit; opsaudit never writes to the operational database; a killed run leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from opsaudit.checks.spec import load_area
from opsaudit.demo import build_demo
from opsaudit.store.schema import VERSION_TABLE, audit_runs, finding_events, findings

NOW = "2026-11-29T10:00"
AS_OF = datetime(2026, 11, 21, 10, 0)


@pytest.fixture(scope="module")
def company(tmp_path_factory) -> Path:
    """A demo company in a SQLite file, built once for the module and never written by the cases."""
    path = tmp_path_factory.mktemp("company") / "ops.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    build_demo(engine, as_of=AS_OF)
    engine.dispose()
    return path


@pytest.fixture
def store(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = run_cli("init", "--store", url)
    assert result.returncode == 0, result.stderr
    return url


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def snapshot(url: str) -> tuple:
    """Everything a run could add or change in the store, to compare before and after."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(audit_runs.name):
                return ()
            return tuple(tuple(conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all())
                         for table in (audit_runs, findings, finding_events))
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Case:
    """A hostile input: files to write (relative to the test's folder), variables, the command,
    and the exit status and message expected."""

    name: str
    args: tuple[str, ...]
    code: int
    message: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path, Path], None] | None = None


def _run(*extra: str) -> tuple[str, ...]:
    return ("run", "cs-monthly", "--period", "2026-10", "--now", NOW, *extra)


def _altered_copy(*statements: str) -> Callable[[Path, Path], None]:
    """A copy of the company at {folder}/ops.db, changed by `statements`."""
    def prepare(folder: Path, company: Path) -> None:
        copy = folder / "ops.db"
        copy.write_bytes(company.read_bytes())
        engine = sa.create_engine(f"sqlite:///{copy}")
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
        engine.dispose()

    return prepare


def _newer_store(folder: Path, _company: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{folder / 'store.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()


def _lost_version(folder: Path, _company: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{folder / 'store.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
    engine.dispose()


def _empty_database_and_a_filled_sheet(folder: Path, _company: Path) -> None:
    sa.create_engine(f"sqlite:///{folder / 'empty.db'}").connect().close()
    (folder / "sheet.csv").write_text(
        "review_id,ticket_id,department_id,agent_id,channel,kind,opened_at,reviewer_id,reviewed_at,"
        "attitude_score,resolution_score,compliant,notes\n"
        "QA-2026-W46-0001,T1,CS1,S020,phone,consultation,2026-11-10 09:00:00,S004,2026-11-17 10:00:00,"
        "80,80,yes,\n", encoding="utf-8")


THRESHOLDS = "config/thresholds.yaml"
AUDITS = "config/audits.yaml"
SOURCE = "config/source.yaml"
CASES = [
    # --- configuration: exit 1, the file and key named --------------------------------------
    Case("area typo", _run(), 1, "config/audits.yaml：audits.cs-monthly.areas.0：“customer_servce”不是可选值之一",
         files={AUDITS: "audits:\n  cs-monthly: {period: month, areas: [customer_servce], cron: '0 8 1 * *'}\n"}),
    Case(".yml name", _run(), 1, "thresholds.yml：只读取扩展名为.yaml的文件（请改名为thresholds.yaml）",
         files={"config/thresholds.yml": "min_population: 30\n"}),
    Case("negative band", _run(), 1, "config/thresholds.yaml：rate_bands.0：必须在0到1之间",
         files={THRESHOLDS: "rate_bands: [-1, 5]\n"}),
    Case("band above 1", _run(), 1, "config/thresholds.yaml：rate_bands.1：必须在0到1之间",
         files={THRESHOLDS: "rate_bands: [0.05, 5]\n"}),
    Case("bands descending", _run(), 1, "config/thresholds.yaml：dq_bands：应为从0开始递增的两个数",
         files={THRESHOLDS: "dq_bands: [0.5, 0.2]\n"}),
    Case("bad cron", _run(), 1, "config/audits.yaml：audits.cs-monthly.cron：“every month”不是定时表达式",
         files={AUDITS: "audits:\n  cs-monthly: {period: month, areas: [customer_service], cron: every month}\n"}),
    Case("hashed cron", _run(), 1, "audits.cs-monthly.cron：“H 8 1 * *”不是定时表达式",
         files={AUDITS: "audits:\n  cs-monthly: {period: month, areas: [customer_service], cron: 'H 8 1 * *'}\n"}),
    Case("boolean count", _run(), 1, "config/thresholds.yaml：min_population：应为数字，不能是true或false",
         files={THRESHOLDS: "min_population: true\n"}),
    Case("boolean rule count", _run(), 1,
         "config/thresholds.yaml：rules.cs.satisfaction_rate.min_population：应为数字",
         files={THRESHOLDS: "rules:\n  cs.satisfaction_rate: {min_population: yes}\n"}),
    Case("duplicate key", _run(), 1, "config/thresholds.yaml：第4行：配置项“target”重复出现",
         files={THRESHOLDS: "rules:\n  cs.satisfaction_rate:\n    target: 0.9\n    target: 0.5\n"}),
    Case("config folder missing", _run(), 1, "nowhere：配置文件夹不存在（环境变量OPSAUDIT_CONFIG_DIR）",
         env={"OPSAUDIT_CONFIG_DIR": "{folder}/nowhere"}),
    Case("config folder is a file", _run(), 1, "cfgfile：这是文件，应为配置文件夹",
         files={"cfgfile": "x"}, env={"OPSAUDIT_CONFIG_DIR": "{folder}/cfgfile"}),
    Case("thresholds is a folder", _run(), 1, "config/thresholds.yaml：这是文件夹，应为YAML文件",
         files={"config/thresholds.yaml/x": ""}),
    Case("not UTF-8", _run(), 1, "config/thresholds.yaml：不是UTF-8编码的文本（第21个字节）",
         files={THRESHOLDS: "min_population: 30 # \xe9t\xe9\n".encode("latin-1")}),
    Case("YAML syntax", _run(), 1, "config/thresholds.yaml：第3行第1列：不是有效的YAML格式",
         files={THRESHOLDS: "rules:\n  cs.satisfaction_rate: [\n"}),
    Case("unknown rule", _run(), 1, "config/thresholds.yaml：rules.cs.satisfaction：没有这条稽查规则",
         files={THRESHOLDS: "rules:\n  cs.satisfaction: {target: 0.9}\n"}),
    Case("target out of range", _run(), 1, "rules.cs.satisfaction_rate.target：必须在0到1之间",
         files={THRESHOLDS: "rules:\n  cs.satisfaction_rate: {target: 90}\n"}),
    Case("unknown key", _run(), 1, "config/thresholds.yaml：min_populaton：不是可识别的配置项",
         files={THRESHOLDS: "min_populaton: 30\n"}),
    Case("zero minimum", _run(), 1,
         "config/thresholds.yaml：min_population：不能小于1",
         files={THRESHOLDS: "min_population: 0\n"}),
    Case("every rule disabled", _run(), 1, "audits.cs-monthly.areas：customer_service中没有启用的稽查规则",
         files={THRESHOLDS: "rules:\n" + "".join(f"  {rule}: {{enabled: false}}\n"
                                                   for rule in load_area("customer_service").rules)}),
    Case("unknown config file", _run(), 1, "config/thresholds_old.yaml：不是可识别的配置文件",
         files={"config/thresholds_old.yaml": "x: 1\n"}),
    Case("select that writes", ("init", "--check-source"), 1,
         "config/source.yaml：tables.plan_adjustments.select：不是有效的SELECT语句",
         files={SOURCE: "tables:\n  plan_adjustments:\n    select: \"SELECT * FROM departments) AS x; COMMIT; "
                        "DROP TABLE plan_adjustments; SELECT * FROM (SELECT 1\"\n"}),
    Case("select with a delete", _run(), 1, "tables.staff.select：只能是一条只读的SELECT语句",
         files={SOURCE: "tables:\n  staff:\n    select: WITH d AS (DELETE FROM staff RETURNING *) SELECT * FROM d\n"}),
    Case("unknown contract table", _run(), 1, "config/source.yaml：tables.ticket：不是数据约定中的表",
         files={SOURCE: "tables:\n  ticket: {table: crm_cases}\n"}),
    # --- settings: exit 1, the variable named ------------------------------------------------
    Case("unknown operations department", _run(), 1,
         "环境变量OPSAUDIT_OPERATIONS_DEPARTMENT：“OPZ”不是departments表中的部门编号",
         env={"OPSAUDIT_OPERATIONS_DEPARTMENT": "OPZ"}),
    Case("operations manager left", _run("--db", "sqlite:///{folder}/ops.db"), 1,
         "环境变量OPSAUDIT_OPERATIONS_DEPARTMENT：部门“OPS”在staff表中没有在职的经理",
         prepare=_altered_copy("UPDATE staff SET active = 0 WHERE department_id = 'OPS' AND role = 'manager'")),
    Case("unknown audit lead", _run(), 1, "环境变量OPSAUDIT_AUDIT_LEAD：“S999”不是staff表中的人员编号",
         env={"OPSAUDIT_AUDIT_LEAD": "S999"}),
    Case("bad time zone", _run(), 1, "环境变量OPSAUDIT_TIMEZONE：“Mars/Olympus”不是已知的时区",
         env={"OPSAUDIT_TIMEZONE": "Mars/Olympus"}),
    Case("bad language", _run(), 1, "环境变量OPSAUDIT_LANGUAGE：“fr”不是可选值之一", env={"OPSAUDIT_LANGUAGE": "fr"}),
    Case("unwritable output", _run(), 1, "环境变量OPSAUDIT_OUTPUT_DIR：无法写入文件夹",
         files={"outfile": "x"}, env={"OPSAUDIT_OUTPUT_DIR": "{folder}/outfile"}),
    # --- usage: exit 2 ------------------------------------------------------------------------
    Case("unfinished month", ("run", "cs-monthly", "--period", "2026-11", "--now", NOW), 2,
         "--period：2026-11尚未结束"),
    Case("future month", ("run", "cs-monthly", "--period", "2027-03", "--now", NOW), 2,
         "--period：2027-03尚未结束"),
    Case("unfinished month on the real clock", ("run", "cs-monthly", "--period", "2999-01"), 2,
         "--period：2999-01尚未结束"),
    Case("wrong kind of period", ("run", "cs-weekly", "--period", "2026-10", "--now", NOW), 2,
         "--period：cs-weekly 按周稽查，“2026-10”不是周而是月"),
    Case("not a period", ("run", "cs-monthly", "--period", "2026-13", "--now", NOW), 2,
         "--period：“2026-13”不是有效的期间"),
    Case("bad clock", ("run", "cs-monthly", "--now", "yesterday"), 2,
         "--now的值无效：“yesterday”不是 ISO 时间（如 2026-11-02T09:00）"),
    Case("unknown audit", ("run", "cs-yearly"), 2, "AUDIT的值无效：“cs-yearly”不是可选值之一：cs-weekly、cs-monthly"),
    Case("unknown format", ("findings", "list", "--format", "yaml"), 2,
         "--format的值无效：“yaml”不是可选值之一：table、json"),
    Case("unknown command", ("audit",), 2, "没有命令“audit”"),
    # --- source and store: exit 1, the database, table or column named --------------------
    Case("mistyped SQLite path", _run("--db", "sqlite:///nodir/sub/x.db"), 1,
         "业务数据库：sqlite:///nodir/sub/x.db：数据库文件 nodir/sub/x.db 不存在"),
    Case("check a missing SQLite file", ("init", "--check-source", "--db", "sqlite:///nodir/x.db"), 1,
         "数据库文件 nodir/x.db 不存在"),
    Case("missing column", _run("--db", "sqlite:///{folder}/ops.db"), 1,
         "业务数据库：tickets.first_response_at：缺少字段（数据约定中的tickets.first_response_at）",
         prepare=_altered_copy("ALTER TABLE tickets DROP COLUMN first_response_at")),
    Case("wrong type", _run("--db", "sqlite:///{folder}/ops.db"), 1,
         "业务数据库：tickets.reopened_count：字段类型为TEXT，应为int",
         prepare=_altered_copy("ALTER TABLE tickets DROP COLUMN reopened_count",
                               "ALTER TABLE tickets ADD COLUMN reopened_count TEXT")),
    Case("unreachable database", _run("--db", "postgresql+psycopg://auditor:s3cret@127.0.0.1:1/ops"), 1,
         "业务数据库（OPSAUDIT_DATABASE_URL）：postgresql+psycopg://auditor:***@127.0.0.1:1/ops："
         "无法连接（connection failed"),
    Case("store newer than opsaudit", _run(), 1, "结构版本9999比本版opsaudit所知的最新版本",
         prepare=_newer_store),
    Case("store newer at init", ("init",), 1, "结构版本9999比本版opsaudit所知的最新版本", prepare=_newer_store),
    Case("store without version table", _run(), 1, "但没有版本表oa_alembic_version",
         prepare=_lost_version),
    Case("init on a store without version table", ("init",), 1, "但没有版本表oa_alembic_version",
         prepare=_lost_version),
    Case("read-only store", _run("--store", "sqlite:///file:{folder}/store.db?mode=ro&uri=true"), 1,
         "无法写入（attempt to write a readonly database）"),
    Case("a SELECT that fails", _run(), 1, "业务数据库：staff（映射的查询语句）：查询语句执行失败（",
         files={SOURCE: "tables:\n  staff:\n    select: SELECT nothing FROM nowhere\n"}),
    Case("unknown finding", ("findings", "show", "nosuchid"), 1, "没有编号以 nosuchid 开头的问题"),
    Case("QA sheet that is not there", ("qa", "import", "{folder}/missing.xlsx"), 1, "missing.xlsx"),
    Case("QA import into a database without the contract tables",
         ("qa", "import", "{folder}/sheet.csv", "--db", "sqlite:///{folder}/empty.db"), 1,
         "qa_reviews、staff、tickets：缺少数据表（qa import须读取tickets、staff表，并写入qa_reviews表）",
         prepare=_empty_database_and_a_filled_sheet),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_input_is_one_line_and_changes_nothing(case: Case, company: Path, store: str, tmp_path: Path):
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if case.prepare is not None:
        case.prepare(tmp_path, company)
    env = {"OPSAUDIT_DATABASE_URL": f"sqlite:///{company}", "OPSAUDIT_STORE_URL": store,
           **{key: value.format(folder=tmp_path) for key, value in case.env.items()}}
    args = tuple(arg.format(folder=tmp_path) for arg in case.args)
    before, company_before = snapshot(store), company.stat().st_mtime_ns

    result = run_cli(*args, env=env)

    assert result.returncode == case.code, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("opsaudit: 错误："), result.stderr
    assert case.message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr
    assert snapshot(store) == before
    assert company.stat().st_mtime_ns == company_before
    assert not (tmp_path / "nodir").exists()


# --- runs that end cleanly ---------------------------------------------------------------------

def _start_audit(company: Path, store: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OPSAUDIT_DATABASE_URL": f"sqlite:///{company}", "OPSAUDIT_STORE_URL": store}
    return subprocess.Popen([sys.executable, "-m", "opsaudit", *_run()], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_running_row(process: subprocess.Popen[str], store: str) -> None:
    engine = sa.create_engine(store)
    try:
        for _ in range(600):
            assert process.poll() is None, process.communicate()
            with engine.connect() as conn:
                if conn.execute(sa.select(audit_runs.c.id).where(audit_runs.c.status == "running")).first():
                    return
            time.sleep(0.1)
        raise AssertionError("the audit never started")
    finally:
        engine.dispose()


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def _gone(pids: list[int], within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()
                 and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
        if not alive:
            return True
        time.sleep(0.2)
    return False


def _run_status(store: str) -> str:
    engine = sa.create_engine(store)
    with engine.connect() as conn:
        status = conn.execute(sa.select(audit_runs.c.status).order_by(audit_runs.c.started_at.desc())).scalar()
    engine.dispose()
    return status


def test_a_killed_run_leaves_no_server_and_is_marked_abandoned(company: Path, store: str):
    process = _start_audit(company, store)
    _wait_for_running_row(process, store)
    servers = _children(process.pid)
    assert servers, "the audit runs against its own Prefect server"
    process.kill()
    process.wait(timeout=30)
    assert _gone(servers), "Prefect's server outlived the killed audit"
    assert _run_status(store) == "running"
    result = run_cli("init", "--store", store)
    assert result.returncode == 0 and "1个稽查批次的进程已结束而稽查未完成，已标记为异常终止。" in result.stdout
    assert _run_status(store) == "abandoned"


def test_sigterm_records_the_run_as_interrupted(company: Path, store: str):
    process = _start_audit(company, store)
    _wait_for_running_row(process, store)
    servers = _children(process.pid)
    process.send_signal(signal.SIGTERM)
    # A guard against a hang, not a speed limit: on a loaded 2-core machine the unwinding (the run
    # recorded, Prefect's server stopped, its log and event workers drained) once took over 60 s.
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 130, stderr
    assert _gone(servers)
    assert _run_status(store) == "interrupted"


def test_a_closed_pipe_ends_the_listing_quietly(store: str):
    listing = subprocess.run(f"{sys.executable} -m opsaudit findings list --format json --store {store} | head -c 1",
                             shell=True, capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and listing.stderr == ""

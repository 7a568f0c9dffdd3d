"""The deployments on the regulation's calendar: over whole years, in the configured timezone, as
`opsaudit schedules` prints them; run names and area tags on the dashboard."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from opsaudit.config.loader import load_config
from opsaudit.errors import ConfigError
from opsaudit.flows.deployments import REGISTRY, Deployment, Entry, deployments, fire_times
from opsaudit.flows.labels import run_name
from opsaudit.settings import load_settings
from tests.terminal import on_a_terminal, widest

PERIODIC = ["cs-weekly", "cs-monthly", "execution-monthly", "planning-quarterly", "data-quarterly"]
DEPLOYMENTS = [*PERIODIC, "special", "spot-check", "rectification-tracking", "circulation", "key-task-watch"]


def opsaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120)


def registered(**settings: str) -> dict[str, Deployment]:
    loaded = load_settings(**settings)
    return {spec.name: spec for spec in deployments(loaded, load_config(loaded.config_dir))}


def days_of(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=n) for n in range((date(year + 1, 1, 1) - first).days)]


def regulation_days(audit: str, year: int) -> list[date]:
    """Seed 000 section 4, written out day by day rather than as cron."""
    if audit == "cs-weekly":
        return [day for day in days_of(year) if day.weekday() == 0]
    if audit.endswith("-monthly"):
        return [date(year, month, 1) for month in range(1, 13)]
    return [date(year, month, 1) for month in (1, 4, 7, 10)]


def fires_in(spec: Deployment, year: int) -> list[datetime]:
    zone = ZoneInfo(spec.timezone)
    start = datetime(year, 1, 1, tzinfo=zone)
    end = datetime(year + 1, 1, 1, tzinfo=zone) - timedelta(seconds=1)
    return [moment.astimezone(zone) for moment in fire_times(spec, start, end=end)]


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "America/New_York"])
@pytest.mark.parametrize("year", [2026, 2024])
def test_each_schedule_fires_on_exactly_the_regulations_days(timezone, year, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_TIMEZONE", timezone)
    specs = registered()
    assert sorted(specs) == sorted(DEPLOYMENTS)
    for audit in PERIODIC:
        fires = fires_in(specs[audit], year)
        assert specs[audit].timezone == timezone
        assert [moment.date() for moment in fires] == regulation_days(audit, year), audit
        # In the morning, local time, all year round: New York's clocks change twice a year.
        assert {moment.hour for moment in fires} == {8 if audit in ("cs-weekly", "cs-monthly",
                                                                   "planning-quarterly") else 9}, audit
    mondays = len(fires_in(specs["cs-weekly"], year))
    assert mondays == {2026: 52, 2024: 53}[year]


def test_the_timezone_moves_the_instant_not_the_local_time(monkeypatch):
    shanghai = fires_in(registered()["cs-monthly"], 2026)
    monkeypatch.setenv("OPSAUDIT_TIMEZONE", "America/New_York")
    new_york = fires_in(registered()["cs-monthly"], 2026)
    assert [m.timetz().replace(tzinfo=None) for m in shanghai] == [m.timetz().replace(tzinfo=None) for m in new_york]
    assert new_york[0] - shanghai[0] == timedelta(hours=13)   # EST is 13 hours behind China in January
    assert new_york[6] - shanghai[6] == timedelta(hours=12)   # EDT in July


def test_a_companys_calendar_overrides_the_default(tmp_path):
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "audits.yaml").write_text('audits:\n  cs-weekly:\n    cron: "30 7 * * 1"\n')
    specs = registered()
    assert specs["cs-weekly"].cron == "30 7 * * 1"
    assert specs["cs-monthly"].cron == "0 8 1 * *"


@pytest.mark.parametrize("cron", ["0 8 * *", "0 25 * * 1", "H 8 * * 1", "every monday"])
def test_an_invalid_cron_names_the_file_and_key(tmp_path, cron):
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "audits.yaml").write_text(f'audits:\n  cs-weekly:\n    cron: "{cron}"\n')
    with pytest.raises(ConfigError) as raised:
        registered()
    assert str(raised.value).startswith(f"config/audits.yaml：audits.cs-weekly.cron：“{cron}”不是定时表达式")
    assert raised.value.text("en").startswith(f"config/audits.yaml: audits.cs-weekly.cron: '{cron}' is not a cron")
    assert "\n" not in str(raised.value)


def test_an_entry_without_a_cron_key_runs_on_demand():
    on_demand = Entry("special", "opsaudit.flows.audits:cs_monthly", kind="special", parameters={"reason": "x"})
    settings = load_settings()
    specs = deployments(settings, load_config(settings.config_dir), registry=(*REGISTRY, on_demand))
    special = specs[-1]
    assert special.as_json() == {"name": "special", "audit": "special", "cron": None, "timezone": "Asia/Shanghai",
                                 "parameters": {"reason": "x"}}
    assert special.tags == ("special",)
    assert fire_times(special, datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")), count=3) == []


def test_schedules_json_is_the_interface_shape(monkeypatch):
    monkeypatch.setenv("OPSAUDIT_TIMEZONE", "Europe/Berlin")
    result = opsaudit("schedules", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == DEPLOYMENTS
    for row in rows:
        assert set(row) == {"name", "audit", "cron", "timezone", "parameters"}
        assert row["audit"] == row["name"] and row["timezone"] == "Europe/Berlin"
    crons = {row["name"]: row["cron"] for row in rows}
    assert crons["planning-quarterly"] == "0 8 1 1,4,7,10 *"
    assert crons["special"] is None and crons["spot-check"] == "0 10 * * *"   # on demand; a daily tick
    assert crons["key-task-watch"] == "30 8 * * *"   # every morning, from the watch's own settings
    assert {row["name"]: row["parameters"] for row in rows if row["parameters"]} == {"spot-check": {"decide": True}}


def test_schedules_table_shows_the_next_run_and_a_bad_cron_is_one_line(tmp_path):
    table = opsaudit("schedules")
    assert table.returncode == 0, table.stderr
    assert all(audit in table.stdout for audit in PERIODIC) and "area:customer_service" in table.stdout, table.stdout
    assert "下次运行时间" in table.stdout and "08:00（周一）" in table.stdout   # the weekly audit's next run
    assert "客户服务每周质量抽样" in table.stdout and "按需运行" in table.stdout   # the audit in words; special
    english = opsaudit("schedules", "--lang", "en")
    assert "Next run" in english.stdout and "Mon " in english.stdout and "on demand" in english.stdout
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "audits.yaml").write_text('audits:\n  data-quarterly:\n    cron: "0 9 1 13 *"\n')
    failed = opsaudit("schedules", "--format", "json")
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("opsaudit: 错误：config/audits.yaml：audits.data-quarterly.cron：“0 9 1 13 *”")
    assert len(failed.stderr.strip().splitlines()) == 1



def test_schedules_fit_80_columns_and_name_every_deployment_in_words():
    shown = on_a_terminal("schedules")
    assert widest(shown) <= 80
    names = [line.split()[0] for line in shown.splitlines() if line and not line[0].isspace()]
    assert names == DEPLOYMENTS   # Prefect's names whole, never cut
    assert "稽查情况月度通报" in shown and "0 8 1 1,4,7,10 * · Asia/Shanghai" in shown
    assert "重点任务每日预警" in shown and "30 8 * * * · Asia/Shanghai" in shown and "area:execution" in shown
    assert "参数：{\"decide\": true}" in shown
    english = on_a_terminal("schedules", "--lang", "en")
    assert "monthly audit circulation" in english and "daily key-task early warning" in english

@pytest.mark.parametrize(("audit", "period", "moment", "name"), [
    ("cs-monthly", "2026-10", datetime(2026, 12, 24), "cs-monthly 2026-10"),
    ("cs-monthly", None, datetime(2026, 11, 1, 8, tzinfo=ZoneInfo("Asia/Shanghai")), "cs-monthly 2026-10"),
    # Still 31 October in UTC, already 1 November in Shanghai: the local calendar decides.
    ("cs-monthly", None, datetime(2026, 10, 31, 23, 30, tzinfo=ZoneInfo("UTC")), "cs-monthly 2026-10"),
    ("cs-weekly", None, datetime(2026, 11, 9, 8), "cs-weekly 2026-W45"),
    ("planning-quarterly", None, datetime(2026, 10, 1, 8), "planning-quarterly 2026Q3"),
])
def test_a_run_is_named_by_the_period_it_audits(audit, period, moment, name):
    assert run_name(audit, period, moment) == name


def test_a_run_with_a_broken_calendar_is_named_by_its_scheduled_date(tmp_path):
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "audits.yaml").write_text("audits: [not, a, mapping]\n")
    assert run_name("cs-monthly", None, datetime(2026, 11, 1, 8)) == "cs-monthly 2026-11-01"


def test_prefect_yaml_deploys_the_same_calendar_to_the_work_pool():
    """prefect.yaml for workers mirrors what `opsaudit serve` registers with the shipped defaults."""
    import yaml

    from opsaudit.flows.deployments import runner_deployment

    project = yaml.safe_load((Path(__file__).resolve().parent.parent / "prefect.yaml").read_text())
    assert project["pull"] == []   # workers import the installed package
    in_yaml = {d["name"]: d for d in project["deployments"]}
    specs = registered()
    assert list(in_yaml) == list(specs)
    for name, spec in specs.items():
        deployment = in_yaml[name]
        assert deployment["entrypoint"] == runner_deployment(spec).entrypoint
        assert deployment["schedules"] == ([{"cron": spec.cron, "timezone": spec.timezone}] if spec.cron else [])
        assert deployment.get("parameters", {}) == dict(spec.parameters)
        assert tuple(deployment["tags"]) == spec.tags
        assert deployment["work_pool"]["name"] == "opsaudit"


def test_serve_refuses_to_start_without_a_store_or_on_a_taken_port(tmp_path):
    """Mistakes are one line before any server starts, not a daemon whose every run fails."""
    database = f"sqlite:///{tmp_path / 'ops.db'}"
    no_store = opsaudit("serve", "--db", database)
    assert no_store.returncode == 1 and len(no_store.stderr.strip().splitlines()) == 1
    assert no_store.stderr.startswith("opsaudit: 错误：") and "init" in no_store.stderr
    assert opsaudit("serve", "--port", "0").returncode == 2
    assert opsaudit("init", "--db", database).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = opsaudit("serve", "--db", database, "--port", str(port))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"opsaudit: 错误：127.0.0.1的端口{port}已被占用：请用--port换一个端口，"
                                      "或设置环境变量PREFECT_API_URL连接正在运行的调度服务器")

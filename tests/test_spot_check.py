"""Spot checks (不定期抽查): a daily tick that audits on random days at the configured rate, a draw of
a key area, a department and a sample of records that its seed re-performs, recorded with the run."""

from __future__ import annotations

import json
import math
import random
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from builders import Dataset
from dashboard import artifacts, run_of
from test_flows import small_company
from test_special import cli_env, opsaudit

from opsaudit.checks.sampling import attribute_sample_size
from opsaudit.checks.spot_check import DAYS_PER_MONTH, FRAMES, audits_today, daily_chance, draw, record_ids
from opsaudit.config.models import Sampling
from opsaudit.periods import date_range
from opsaudit.source import Source
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import audit_runs, check_results
from tests.terminal import error_line

AREAS = ("customer_service", "execution", "planning", "data_analysis")
WINDOW = date_range(date(2026, 10, 3), date(2026, 11, 1))   # the 30 days before 2 November
NOVEMBER_2 = datetime(2026, 11, 2, 10)


# --- the daily tick ------------------------------------------------------------------------------

@pytest.mark.parametrize("per_month", [1, 2, 5, 20])
def test_the_tick_audits_as_often_as_configured(per_month):
    """A hundred years of daily ticks (a fixed seed here; the secure source in production)."""
    rng = random.Random(20261130)
    days = 36525
    drawn = [day for day in range(days) if audits_today(per_month, rng)]
    chance = daily_chance(per_month)
    assert abs(len(drawn) - days * chance) < 4 * math.sqrt(days * chance * (1 - chance))
    assert len(drawn) / (days / DAYS_PER_MONTH) == pytest.approx(per_month, rel=0.05)


def test_no_date_follows_from_the_schedule():
    """Two a month on average, at gaps from one day to months: nobody can tell the next one."""
    rng = random.Random(7)
    drawn = [day for day in range(3653) if audits_today(2, rng)]
    gaps = [later - earlier for earlier, later in zip(drawn, drawn[1:], strict=False)]
    assert min(gaps) <= 2 and max(gaps) >= 60
    assert len(set(gaps)) > 30


def test_no_spot_checks_when_none_are_configured():
    assert daily_chance(0) == 0 and not any(audits_today(0) for _ in range(1000))


# --- the draw ------------------------------------------------------------------------------------

@pytest.fixture
def company(db_url, engine, monkeypatch):
    """Tickets of two departments (small_company), and October tasks in both."""
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    small_company(engine)
    data = Dataset()
    for i in range(60):
        due = datetime(2026, 10, 5) + timedelta(hours=11 * i)
        data.task(f"T{i:03d}", "D1" if i % 3 else "D2", owner_id="A1", due_at=due, started_at=due - timedelta(days=3),
                  completed_at=due + timedelta(days=1 if i % 4 == 0 else -1))
    data.insert(engine, tables={"tasks"})
    upgrade(engine)
    return engine


def test_a_draw_is_re_performed_from_its_seed(company):
    source, sampling = Source(company), Sampling()

    draws = [draw(source, AREAS, WINDOW, seed, sampling) for seed in range(12)]

    assert [draw(source, AREAS, WINDOW, seed, sampling) for seed in range(12)] == draws
    assert {d.area for d in draws} == {"customer_service", "execution"}   # the areas with records
    assert {d.department_id for d in draws} == {"D1", "D2"}
    assert len({d.sample_ids for d in draws}) > 6
    for drawn in draws:
        frame = record_ids(source, FRAMES[drawn.area], WINDOW, drawn.department_id)
        assert drawn.population == len(frame) and set(drawn.sample_ids) <= set(frame)
        assert len(drawn.sample_ids) == attribute_sample_size(0.95, 0.05, 0.01, len(frame))
        assert list(drawn.sample_ids) == sorted(set(drawn.sample_ids))


def results_of(engine: sa.Engine, run_id: str) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(check_results.c.rule_id, check_results.c.entity_type,
                                             check_results.c.entity_id, check_results.c.outcome,
                                             check_results.c.population, check_results.c.observed)
                                   .where(check_results.c.audit_run_id == run_id)).all())


@pytest.mark.usefixtures("prefect_harness")
def test_a_spot_check_re_performed_from_its_recorded_seed_audits_the_same_scope_and_sample(company):
    from opsaudit.flows.spot_check import spot_check

    first = spot_check(now=NOVEMBER_2)
    again = spot_check(seed=first["seed"])   # the recorded window, whatever the clock says now

    assert first["period"] == again["period"] == WINDOW.label
    assert again["draw"] == first["draw"] and again["draw"]["seed"] == first["seed"]
    assert results_of(company, again["audit_run_id"]) == results_of(company, first["audit_run_id"])
    with company.connect() as conn:
        recorded = conn.execute(sa.select(audit_runs.c.audit, audit_runs.c.kind, audit_runs.c.seed,
                                          audit_runs.c.parameters, audit_runs.c.summary)
                                .where(audit_runs.c.id == first["audit_run_id"])).one()
    assert (recorded.audit, recorded.kind, recorded.seed) == ("spot-check", "spot_check", first["seed"])
    assert recorded.parameters["draw"] == first["draw"] == recorded.summary["draw"]
    assert recorded.summary["seed"] == first["seed"]
    populations = {entity: population for rule, kind, entity, _, population, _ in results_of(company, first[
        "audit_run_id"]) if kind == "department"}
    assert set(populations) == {first["draw"]["department_id"]}   # the drawn department, and only it


@pytest.mark.usefixtures("prefect_harness")
def test_a_spot_check_shows_its_draw_and_how_to_re_perform_it_on_the_dashboard(company):
    from opsaudit.flows.spot_check import spot_check

    state = spot_check(seed=11, now=NOVEMBER_2, return_state=True)

    run = run_of(state)
    drawn = state.result()["draw"]
    assert run.name == "spot-check 2026-11-02"
    assert {"spot_check", f"area:{drawn['area']}"} <= set(run.tags)
    summary = artifacts(run.id)["spot-check-summary"].data
    assert summary.startswith("# 不定期抽查：2026-10-03至2026-11-01")
    assert f"随机种子11；重点领域{'客户服务' if drawn['area'] == 'customer_service' else '运营执行'}" in summary
    assert "`opsaudit run spot-check --seed 11`" in summary


@pytest.mark.usefixtures("prefect_harness")
def test_a_tick_on_a_day_without_a_spot_check_audits_nothing(company, tmp_path):
    from opsaudit.flows.spot_check import spot_check

    (tmp_path / "config" / "audits.yaml").write_text("spot_check:\n  checks_per_month: 0\n")

    assert spot_check(decide=True) == {"audit": "spot-check", "audited": False}
    with company.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_runs)).scalar() == 0


@pytest.mark.usefixtures("prefect_harness")
def test_a_spot_check_by_hand_prints_its_draw_and_is_re_performed_from_the_command_line(tmp_path):
    database = f"sqlite:///{tmp_path / 'ops.db'}"
    engine = sa.create_engine(database)
    small_company(engine)
    upgrade(engine)
    env = cli_env(database)

    first = opsaudit("run", "spot-check", "--now", "2026-11-02T10:00", env=env)
    assert first.returncode == 0, first.stderr
    with engine.connect() as conn:
        seed, parameters = conn.execute(sa.select(audit_runs.c.seed, audit_runs.c.parameters)).one()
    drawn = parameters["draw"]
    line = (f"不定期抽查抽签（随机种子{seed}）：重点领域为客户服务，部门为{drawn['department_id']}，"
            f"从2026-10-03至2026-11-01的{drawn['population']}项工单中抽取{drawn['sample_size']}项。")
    assert line in first.stdout
    assert f"按同一随机种子复核此次抽签：opsaudit run spot-check --seed {seed}" in first.stdout

    again = opsaudit("run", "spot-check", "--seed", str(seed), env=env)
    assert again.returncode == 0, again.stderr
    assert line in again.stdout
    with engine.connect() as conn:
        draws = conn.execute(sa.select(audit_runs.c.parameters)).scalars().all()
    assert [json.dumps(p["draw"], sort_keys=True) for p in draws] == [json.dumps(drawn, sort_keys=True)] * 2


@pytest.mark.parametrize(("args", "message"), [
    (["run", "spot-check", "--seed", "-1"], "--seed的值无效：-1不在允许的范围内（≥ 0）"),
    (["run", "cs-monthly", "--seed", "3"], "--seed的值无效：只能用于 `opsaudit run spot-check`，不能用于 cs-monthly"),
    (["run", "spot-check", "--period", "2026-10"], "--period的值无效：spot-check 稽查 --now 之前的30天"),
])
def test_spot_check_options_are_checked_in_one_line(tmp_path, args, message):
    import os

    result = opsaudit(*args, env={**os.environ, "OPSAUDIT_DATABASE_URL": f"sqlite:///{tmp_path / 'ops.db'}"})
    assert result.returncode == 2 and result.stderr.startswith(error_line(message, "zh-CN")), result.stderr

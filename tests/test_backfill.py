"""`opsaudit backfill`: past periods in order through one Prefect server, idempotently, on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_flows import company  # noqa: F401 - the fixture
from test_special import cli_env, opsaudit

from opsaudit.store.schema import audit_runs, finding_events, findings
from tests.terminal import error_line


def store_state(engine: sa.Engine) -> tuple[list[tuple], list[tuple], int]:
    """The runs in the order they started, the findings, and the `raised` events."""
    with engine.connect() as conn:
        runs = conn.execute(sa.select(audit_runs.c.audit, audit_runs.c.period, audit_runs.c.status)
                            .order_by(audit_runs.c.started_at)).all()
        found = conn.execute(sa.select(findings.c.id, findings.c.rule_id, findings.c.entity_id, findings.c.period,
                                       findings.c.severity).order_by(findings.c.id)).all()
        raised = conn.execute(sa.select(sa.func.count()).select_from(finding_events)
                              .where(finding_events.c.action == "raised")).scalar()
    return [tuple(r) for r in runs], [tuple(f) for f in found], raised


@pytest.mark.usefixtures("prefect_harness")
def test_a_backfill_runs_the_periods_in_order_and_a_second_one_duplicates_nothing(company, db_url):  # noqa: F811
    args = ["backfill", "cs-monthly", "--from", "2026-10", "--to", "2026-11", "--now", "2026-12-05T09:00"]

    first = opsaudit(*args, env=cli_env(db_url))

    assert first.returncode == 0, first.stderr
    assert "已按顺序完成2个期间的补充稽查：2026年10月至2026年11月。" in first.stdout
    runs, found, raised = store_state(company)
    assert runs == [("cs-monthly", period, "succeeded") for period in ("2026-10", "2026-11")]
    assert ("cs.first_response_rate", "D2", "2026-10", "major") in [f[1:] for f in found]
    assert raised == len(found)

    second = opsaudit(*args, env=cli_env(db_url))

    assert second.returncode == 0, second.stderr
    runs_again, found_again, raised_again = store_state(company)
    assert runs_again == runs * 2   # each run kept in the history, in order
    assert (found_again, raised_again) == (found, raised)   # the same findings, updated, none raised twice


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2026-10", "--to", "2026-08"], "invalid value for --to: the first period 2026-10 is after the "
                                               "last period 2026-08"),
    (["--from", "2026Q3", "--to", "2026-10"], "invalid value for --from: 2026Q3 is not a period of the monthly "
                                              "customer-service evaluation: it audits a month, e.g. 2026-10"),
    (["--from", "2026-10", "--to", "2026-11"], "invalid value for --to: 2026-11 has not ended yet"),
    (["--from", "August", "--to", "2026-10"], "invalid value for --from: 'August' is not a period"),
    (["--from", "August", "--to", "2026-10", "--lang", "zh-CN"], "--from的值无效：“August”不是有效的期间"),
    (["--from", "2026-10", "--to", "2026-11", "--lang", "zh-CN"], "--to的值无效：2026-11尚未结束"),
])
def test_a_bad_backfill_range_is_one_line_and_exit_2(tmp_path, args, message):
    import os

    env = {**os.environ, "OPSAUDIT_DATABASE_URL": f"sqlite:///{tmp_path / 'ops.db'}", "OPSAUDIT_LANGUAGE": "en"}
    result = opsaudit("backfill", "cs-monthly", *args, "--now", "2026-11-30T09:00", env=env)
    language = "zh-CN" if "zh-CN" in args else "en"
    assert result.returncode == 2 and result.stderr.startswith(error_line(message, language)), result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.usefixtures("prefect_harness")
def test_a_ten_year_backfill_skips_the_periods_before_the_first_record_in_one_line(company, db_url):  # noqa: F811
    """The tickets start in October 2026: 2016-12 to 2026-09 hold no record, and auditing them
    would raise a major "no data" finding, an alert and a draft report for each."""
    env = {**cli_env(db_url), "OPSAUDIT_LANGUAGE": "en"}
    result = opsaudit("backfill", "cs-monthly", "--from", "2016-12", "--to", "2026-10", "--now", "2026-11-30T09:00",
                      env=env)

    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stdout.splitlines() if "skipped" in line]
    assert skipped == ["2016-12 to 2026-09 (118 periods): skipped, they end before the first record of the source "
                       f"(tickets.opened_at, {first_ticket(company)}); there is nothing to audit in them"]
    runs, found, _ = store_state(company)
    assert runs == [("cs-monthly", "2026-10", "succeeded")]
    assert {f[3] for f in found} == {"2026-10"}   # no "no data" finding for the months before

    nothing = opsaudit("backfill", "cs-monthly", "--from", "2016-12", "--to", "2026-09", "--now", "2026-11-30T09:00",
                       env=env)
    assert nothing.returncode == 2, nothing.stderr
    assert nothing.stderr.startswith("opsaudit: error: 2016-12 to 2026-09: every period ends before the first "
                                     "record of the source (tickets.opened_at")
    assert "start --from at 2026-10 or later" in nothing.stderr
    assert nothing.stderr.count("\n") == 1
    assert store_state(company)[0] == runs


def first_ticket(engine: sa.Engine) -> str:
    """The first ticket's opening time as the English messages write it."""
    from opsaudit.contract import tickets
    from opsaudit.i18n import format_value

    with engine.connect() as conn:
        opened = conn.execute(sa.select(sa.func.min(tickets.c.opened_at))).scalar()
    return format_value(opened, "datetime", "en")

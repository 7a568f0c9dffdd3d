"""The dq.* rules through Great Expectations, on SQLite and PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from opsaudit.checks.quality import dq_severity, run_data_quality
from opsaudit.checks.quality_config import RULES_FILE, DataQualityRules, load_rules
from opsaudit.checks.results import CheckResult, Outcome, Severity
from opsaudit.config.models import SourceMapping, TableSource
from opsaudit.contract import metadata
from opsaudit.errors import ConfigError
from opsaudit.periods import month
from opsaudit.source import Source

JANUARY = month(2026, 1)
NOW = datetime(2026, 2, 1, 6, 0)
T = metadata.tables


def ticket(number: int, opened: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    """A clean, closed phone ticket, opened on day 1..28 of January 2026 unless `opened` says."""
    opened = opened or datetime(2026, 1, 1 + number % 28, 9, 0)
    row = {"ticket_id": f"T{number:04d}", "kind": "consultation", "channel": "phone", "department_id": "D1",
           "agent_id": "S1", "opened_at": opened, "first_response_at": opened + timedelta(minutes=10),
           "resolved_at": opened + timedelta(hours=2), "closed_at": opened + timedelta(hours=3),
           "status": "closed", "satisfaction": 5, "revisited_at": opened + timedelta(days=1), "reopened_count": 0}
    return row | overrides


def load(engine: sa.Engine, tickets: list[dict[str, Any]], *, create: bool = True) -> Source:
    """The contract tables with one department, one agent and `tickets`; the plain source."""
    if create:
        metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(T["departments"].insert(), [{"department_id": "D1", "name": "Service"}])
        conn.execute(T["staff"].insert(), [{"staff_id": "S1", "name": "Ann", "department_id": "D1",
                                            "role": "agent", "active": True}])
        if tickets:
            conn.execute(T["tickets"].insert(), tickets)
    return Source(engine, SourceMapping())


def failed(results: list[CheckResult]) -> dict[tuple[str, str], CheckResult]:
    return {(r.rule_id, r.entity_id): r for r in results if r.outcome is Outcome.FAILED}


def test_a_clean_table_gives_only_passed_results(engine) -> None:
    source = load(engine, [ticket(0, datetime(2026, 1, 30, 9))] + [ticket(n) for n in range(1, 30)])

    executed: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        executed.append(statement)

    sa.event.listen(sa.Engine, "after_cursor_execute", record)
    try:
        results = run_data_quality(source, ["tickets", "staff", "departments"], JANUARY, now=NOW)
    finally:
        sa.event.remove(sa.Engine, "after_cursor_execute", record)

    assert results and all(r.outcome is Outcome.PASSED for r in results), failed(results)
    # Pushed down: no statement reads the batch bare (GX's column probe is narrowed to no rows).
    assert executed and not any(statement.startswith("SELECT tickets.") for statement in executed)
    typed = {"dq.type"} if engine.dialect.name == "sqlite" else set()  # other databases enforce column types
    assert {r.rule_id for r in results if r.entity_id.startswith("tickets.")} == {
        "dq.not_null", "dq.in_set", "dq.range", "dq.unique", "dq.reference", "dq.time_order", "dq.freshness"} | typed
    assert all(r.area == "data_quality" and r.entity_type == "table_column" for r in results)
    assert {r.population for r in results if r.entity_id.startswith("tickets.")} == {30}


def test_each_rule_fails_on_planted_rows(engine) -> None:
    metadata.create_all(engine)
    with engine.begin() as conn:  # a ticket of December: outside the period, yet a valid reference
        conn.execute(T["tickets"].insert(), [ticket(999, datetime(2025, 12, 30, 9))])
        conn.execute(T["qa_reviews"].insert(), [
            {"review_id": f"R{n}", "ticket_id": ticket_id, "reviewer_id": "S1", "reviewed_at": datetime(2026, 1, 20),
             "attitude_score": score, "resolution_score": 80.0, "compliant": True}
            for n, (ticket_id, score) in enumerate([("T0999", 90.0), ("T0001", 101.0), ("T9999", 90.0)])])
    planted = {
        1: {"satisfaction": 7},                                   # dq.range 1..5
        2: {"channel": "fax"},                                    # dq.in_set
        3: {"channel": "Phone"},                                  # not lower-case: out of set
        4: {"department_id": "DX"},                               # dq.reference
        5: {"closed_at": datetime(2026, 1, 1, 8)},                # dq.time_order: closed before opened
        6: {"revisited_at": NOW + timedelta(days=1)},             # dq.range: in the future
        7: {"revisited_at": NOW, "agent_id": None},               # the clock itself and a null agent are fine
    }
    # Nothing opened after 20 January: the feed is stale for dq.freshness.
    source = load(engine, [ticket(n, **planted.get(n, {})) for n in range(1, 20)], create=False)

    results = run_data_quality(source, ["tickets", "qa_reviews"], JANUARY, now=NOW)

    found = failed(results)
    assert set(found) == {("dq.range", "tickets.satisfaction"), ("dq.in_set", "tickets.channel"),
                          ("dq.reference", "tickets.department_id"), ("dq.time_order", "tickets.closed_at"),
                          ("dq.range", "tickets.revisited_at"), ("dq.freshness", "tickets.opened_at"),
                          ("dq.range", "qa_reviews.attitude_score"), ("dq.reference", "qa_reviews.ticket_id")}
    channel = found[("dq.in_set", "tickets.channel")]
    assert sorted(channel.evidence["sample_ids"]) == ["T0002", "T0003"]
    assert channel.population == 19 and channel.observed == pytest.approx(2 / 19) and channel.target == 0
    assert channel.evidence["unexpected_count"] == 2
    assert channel.evidence["expectation"]["kwargs"]["column"] == "channel"
    assert "opened_at >=" in channel.evidence["query"]
    assert found[("dq.reference", "tickets.department_id")].evidence["sample_ids"] == ["T0004"]
    assert found[("dq.reference", "qa_reviews.ticket_id")].evidence["sample_ids"] == ["R2"]
    assert found[("dq.time_order", "tickets.closed_at")].evidence["sample_ids"] == ["T0005"]
    assert found[("dq.range", "tickets.revisited_at")].evidence["sample_ids"] == ["T0006"]
    stale = found[("dq.freshness", "tickets.opened_at")]
    assert stale.severity is Severity.IMPORTANT and stale.facts["newest"].startswith("2026-01-20 09:00")
    assert all(r.department_id is None for r in results)


def test_nulls_duplicates_and_renamed_columns_through_a_mapping(engine) -> None:
    """A plain table without constraints, with its own column names, mapped to the contract."""
    renames = {"ticket_id": "case_no", "opened_at": "created"}
    raw = sa.Table("crm_cases", sa.MetaData(), *(
        sa.Column(renames.get(c.name, c.name), c.type, nullable=True) for c in T["tickets"].columns))
    raw.create(engine)
    rows = [ticket(n) for n in range(1, 11)] + [ticket(3), ticket(11, status=None),
                                                ticket(12, datetime(2026, 1, 30)), ticket(13, datetime(2026, 2, 1))]
    with engine.begin() as conn:
        conn.execute(raw.insert(), [{renames.get(k, k): v for k, v in row.items()} for row in rows])
    load(engine, [])
    source = Source(engine, SourceMapping(tables={"tickets": TableSource(table="crm_cases", columns=renames)}))
    rules = DataQualityRules.model_validate(rules_data("dq.in_set", enabled=False))

    results = run_data_quality(source, ["tickets"], JANUARY, now=NOW, rules=rules)

    found = failed(results)
    assert set(found) == {("dq.unique", "tickets.ticket_id"), ("dq.not_null", "tickets.status")}
    assert found[("dq.unique", "tickets.ticket_id")].evidence["sample_ids"] == ["T0003"]
    assert found[("dq.not_null", "tickets.status")].evidence["sample_ids"] == ["T0011"]
    assert {r.population for r in results} == {13}  # the February row is outside the period
    assert not any(r.rule_id == "dq.in_set" for r in results)  # switched off


def test_compound_keys_with_a_null_part_and_a_select_mapping(engine) -> None:
    loose = sa.MetaData()  # the key tables without their PK constraints, so duplicates can exist
    for name in ("plan_targets", "reported_metrics"):
        sa.Table(f"raw_{name}", loose, *(sa.Column(c.name, c.type) for c in T[name].columns))
    sa.Table("hr", loose, sa.Column("emp_no", sa.String(64)), sa.Column("full_name", sa.Text),
             sa.Column("dept", sa.String(64)), sa.Column("title", sa.String(32)), sa.Column("on_duty", sa.Boolean))
    loose.create_all(engine)
    load(engine, [])
    target = {"unit": None, "baseline": None, "target": 1.0, "actual": None, "higher_is_better": True}
    metric = {"report_id": "A1", "metric": "ticket_count", "department_id": None, "period": "2026-01", "value": 1.0}
    with engine.begin() as conn:
        conn.execute(T["plans"].insert(), [{"plan_id": "P1", "level": "monthly", "period": "2026-02",
                                            "department_id": "D1", "owner_id": "S1", "title": "February",
                                            "due_at": datetime(2026, 1, 31), "status": "approved"}])
        conn.execute(T["analysis_reports"].insert(), [
            {"report_id": report, "department_id": "D1", "author_id": "S1", "kind": "monthly", "period": "2026-01",
             "due_at": due} for report, due in (("A1", datetime(2026, 1, 5)), ("A0", datetime(2025, 12, 5)))])
        conn.execute(loose.tables["raw_plan_targets"].insert(), [
            target | {"plan_id": "P1", "metric": "revenue"}, target | {"plan_id": "P1", "metric": "revenue"},
            target | {"plan_id": "P1", "metric": "cost"}])
        conn.execute(loose.tables["raw_reported_metrics"].insert(), [
            metric, metric, metric | {"department_id": "D1"}, metric | {"report_id": "A0"},
            metric | {"report_id": "A0"}])
        conn.execute(loose.tables["hr"].insert(), [
            {"emp_no": "S1", "full_name": "Ann", "dept": "D1", "title": "agent", "on_duty": True},
            {"emp_no": "S2", "full_name": "Bob", "dept": "D9", "title": "Boss", "on_duty": True}])
    staff = ("SELECT emp_no AS staff_id, full_name AS name, dept AS department_id, title AS role, "
             "NULL AS email, on_duty AS active FROM hr")
    source = Source(engine, SourceMapping(tables={
        "plan_targets": TableSource(table="raw_plan_targets"),
        "reported_metrics": TableSource(table="raw_reported_metrics"), "staff": TableSource(select=staff)}))

    results = run_data_quality(source, ["plan_targets", "reported_metrics", "staff"], JANUARY, now=NOW)

    found = failed(results)
    assert set(found) == {("dq.unique", "plan_targets.plan_id+metric"),
                          ("dq.unique", "reported_metrics.report_id+metric+department_id"),
                          ("dq.in_set", "staff.role"), ("dq.reference", "staff.department_id")}
    assert found[("dq.unique", "plan_targets.plan_id+metric")].evidence["sample_ids"] == ["P1+revenue"]
    # A null department is the whole company: two such rows are duplicates. The metrics of
    # report A0 (due in December) are outside the period.
    duplicate = found[("dq.unique", "reported_metrics.report_id+metric+department_id")]
    assert duplicate.evidence["sample_ids"] == ["A1+ticket_count+null"] and duplicate.population == 3
    assert found[("dq.reference", "staff.department_id")].evidence["sample_ids"] == ["S2"]


def test_severity_follows_the_share_of_rows_on_both_sides_of_each_band(engine) -> None:
    bad = {"satisfaction": (1, 0), "channel": (2, "fax"), "status": (19, "lost"), "kind": (25, "spam")}
    rows = []
    for n in range(200):
        overrides = {column: value for column, (count, value) in bad.items() if n < count}
        rows.append(ticket(n, **overrides))
    source = load(engine, rows)

    found = failed(run_data_quality(source, ["tickets"], JANUARY, now=NOW))

    assert found[("dq.range", "tickets.satisfaction")].severity is Severity.GENERAL      # 0.5%
    assert found[("dq.in_set", "tickets.channel")].severity is Severity.IMPORTANT        # 1%
    assert found[("dq.in_set", "tickets.status")].severity is Severity.IMPORTANT         # 9.5%
    kind = found[("dq.in_set", "tickets.kind")]                                            # 12.5%
    assert kind.severity is Severity.MAJOR and kind.observed == pytest.approx(0.125)
    assert len(kind.evidence["sample_ids"]) == 20 and kind.facts["unexpected_count"] == 25


def test_rows_flagged_by_several_checks_are_sampled_in_one_reading_each_check_its_own(engine) -> None:
    """Tickets resolved in the future, closed before they opened, or of an unknown department:
    each check counts all of its rows and names its first 20 in key order, and one query reads
    the batch for the samples of all three."""
    rows = []
    for n in range(120):
        overrides: dict[str, Any] = {}
        if n % 2 == 0:
            overrides["resolved_at"] = NOW + timedelta(days=3)
        if n % 3 == 0:
            overrides["closed_at"] = datetime(2025, 12, 31, 8)
        if n % 5 == 0:
            overrides["department_id"] = "DX"
        rows.append(ticket(n, **overrides))
    source = load(engine, rows)
    executed: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        executed.append(statement)

    sa.event.listen(sa.Engine, "after_cursor_execute", record)
    try:
        found = failed(run_data_quality(source, ["tickets"], JANUARY, now=NOW))
    finally:
        sa.event.remove(sa.Engine, "after_cursor_execute", record)

    expected = {("dq.range", "tickets.resolved_at"): [n for n in range(120) if n % 2 == 0],
                ("dq.time_order", "tickets.closed_at"): [n for n in range(120) if n % 3 == 0],
                ("dq.reference", "tickets.department_id"): [n for n in range(120) if n % 5 == 0]}
    for key, offending in expected.items():
        assert found[key].facts["unexpected_count"] == len(offending), key
        assert found[key].evidence["sample_ids"] == [f"T{n:04d}" for n in offending[:20]], key
    assert len([statement for statement in executed if "row_number()" in statement]) == 1


@pytest.mark.parametrize(("share", "severity"), [
    (0.0099, Severity.GENERAL), (0.01, Severity.IMPORTANT), (0.0999, Severity.IMPORTANT), (0.10, Severity.MAJOR)])
def test_dq_severity_bands(share: float, severity: Severity) -> None:
    assert dq_severity(share, (0.01, 0.10)) is severity


def test_missing_and_empty_tables_are_major_and_never_raise(engine) -> None:
    T["tickets"].create(engine)
    T["departments"].create(engine)
    with engine.begin() as conn:  # a ticket, but not in January
        conn.execute(T["tickets"].insert(), [ticket(1, datetime(2025, 12, 1))])
    source = Source(engine, SourceMapping())

    results = run_data_quality(source, ["tickets", "qa_reviews", "departments"], JANUARY, now=NOW)

    assert [(r.entity_id, r.rule_id, r.severity, r.facts["reason"]) for r in results] == [
        ("tickets.*", "dq.freshness", Severity.MAJOR, "no_rows"),
        ("qa_reviews.*", "dq.freshness", Severity.MAJOR, "missing_table"),
        ("departments.*", "dq.freshness", Severity.MAJOR, "no_rows"),
    ]


def test_a_missing_column_is_major_and_the_rest_is_still_checked(engine) -> None:
    partial = sa.Table("tickets", sa.MetaData(), *(
        sa.Column(c.name, c.type) for c in T["tickets"].columns if c.name != "satisfaction"))
    partial.create(engine)
    rows = [ticket(n) for n in range(5)] + [ticket(5, channel="fax")]
    with engine.begin() as conn:
        conn.execute(partial.insert(), [{k: v for k, v in row.items() if k != "satisfaction"} for row in rows])
    source = Source(engine, SourceMapping())

    found = failed(run_data_quality(source, ["tickets"], JANUARY, now=NOW))

    missing = found[("dq.not_null", "tickets.satisfaction")]
    assert missing.severity is Severity.MAJOR and missing.facts["reason"] == "missing_column"
    # departments and staff are missing too: the references cannot resolve
    assert found[("dq.reference", "tickets.department_id")].facts["reason"] == "missing_referenced_table"
    assert found[("dq.in_set", "tickets.channel")].evidence["sample_ids"] == ["T0005"]


def test_the_shipped_rules_load() -> None:
    rules = load_rules()
    assert rules.rules.freshness.freshness_days == 2
    assert "tasks.due_at" in rules.rules.range.future_allowed
    assert rules.rules.enabled("dq.unique")


@pytest.mark.parametrize(("rule_id", "change", "message"), [
    ("dq.freshness", {"freshness_days": "soon"}, "rules.dq.freshness.freshness_days：“soon”不是整数"),
    ("dq.unique", {"colour": "red"}, "rules.dq.unique.colour：不是可识别的配置项"),
    ("dq.range", {"future_allowed": ["tickets.kind"]},
     "rules.dq.range.future_allowed：“tickets.kind”不是数据约定中的时间字段（表名.字段名，如tasks.due_at）"),
])
def test_a_bad_rules_file_names_the_file_and_key(tmp_path: Path, rule_id: str, change: dict[str, Any],
                                                 message: str) -> None:
    path = tmp_path / "data_quality.yaml"
    path.write_text(yaml.safe_dump(rules_data(rule_id, **change), allow_unicode=True), encoding="utf-8")

    with pytest.raises(ConfigError) as error:
        load_rules(path)

    assert error.value.text("zh-CN") == f"{path}：{message}"


def rules_data(rule_id: str, **values: Any) -> dict[str, Any]:
    """The shipped rules file as data, with some keys of one rule changed."""
    data = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    data["rules"][rule_id] |= values
    return data


def test_company_overrides_reach_the_dq_rules():
    from opsaudit.checks.quality_config import load_rules, with_overrides
    from opsaudit.config.models import RuleOverride
    from opsaudit.errors import ConfigError

    rules = with_overrides(load_rules(), {"dq.freshness": RuleOverride(params={"freshness_days": 5}),
                                          "dq.unique": RuleOverride(enabled=False)})
    assert rules.rules.freshness.freshness_days == 5 and not rules.rules.unique.enabled
    with pytest.raises(ConfigError) as refused:
        with_overrides(load_rules(), {"dq.freshness": RuleOverride(params={"days": 5})})
    assert refused.value.text("en") == ("config/thresholds.yaml: rules.dq.freshness.params.days: unknown parameter "
                                        "(known: freshness_days)")
    with pytest.raises(ConfigError) as refused:
        with_overrides(load_rules(), {"dq.speling": RuleOverride(enabled=False)})
    assert refused.value.text("zh-CN") == "config/thresholds.yaml：rules.dq.speling：没有这条稽查规则"


def test_a_quiet_period_of_an_occasional_table_is_not_a_finding(engine) -> None:
    T["plan_adjustments"].create(engine)
    with engine.begin() as conn:  # an adjustment, but not in January
        conn.execute(T["plan_adjustments"].insert(), [{
            "adjustment_id": "A1", "plan_id": "P1", "requested_by": "S1", "requested_at": datetime(2025, 12, 1),
            "reason": "market", "approved_by": "S2", "approved_at": datetime(2025, 12, 2),
            "effective_at": datetime(2025, 12, 3)}])
    assert run_data_quality(Source(engine), ["plan_adjustments"], JANUARY, now=NOW) == []
    with engine.begin() as conn:
        conn.execute(T["plan_adjustments"].delete())
    (empty,) = run_data_quality(Source(engine), ["plan_adjustments"], JANUARY, now=NOW)
    assert (empty.entity_id, empty.severity, empty.facts["reason"]) == ("plan_adjustments.*", Severity.MAJOR, "no_rows")


def test_results_read_well_in_both_languages(engine) -> None:
    from opsaudit.i18n import render_finding

    rows = [ticket(n) for n in range(1, 30)] + [ticket(30, satisfaction=7)]
    results = run_data_quality(load(engine, rows), ["tickets"], JANUARY, now=NOW)
    bad = failed(results)[("dq.range", "tickets.satisfaction")]
    assert bad.evidence["rule_version"] == 1
    english = render_finding(bad.rule_id, bad.entity_type, {**bad.facts, "entity_id": bad.entity_id}, "en")
    chinese = render_finding(bad.rule_id, bad.entity_type, {**bad.facts, "entity_id": bad.entity_id}, "zh-CN")
    assert english.description == ("The satisfaction rating column of the tickets table "
                                   "(tickets.satisfaction) holds a value outside 1 to 5 in 1 of 30 rows in the "
                                   "period (3.3%).")
    assert chinese.description == ("工单表的“满意度评分”字段（tickets.satisfaction）有1行的数值不在1至5之间，"
                                   "占本期30行的3.3%。")


def test_the_values_a_column_allows_are_named_in_words_with_the_codes_the_data_must_hold(engine) -> None:
    from opsaudit.i18n import render_finding

    rows = [ticket(n) for n in range(1, 30)] + [ticket(30, channel="fax")]
    bad = failed(run_data_quality(load(engine, rows), ["tickets"], JANUARY, now=NOW))[("dq.in_set", "tickets.channel")]
    chinese = render_finding(bad.rule_id, bad.entity_type, {**bad.facts, "entity_id": bad.entity_id}, "zh-CN")
    assert chinese.description.endswith("允许的取值为：电话（phone）、在线客服（chat）、电子邮件（email）、"
                                        "网页（web）、现场服务（onsite）、其他（other）。"), chinese.description


def test_undated_and_unreadable_timestamps_are_findings_in_every_audit_of_the_table(engine) -> None:
    """300 tickets without an opening time, and (where the database lets it be stored) text in a
    timestamp: both are data-quality findings, not a population that silently shrinks."""
    as_text = engine.dialect.name == "sqlite"   # only SQLite keeps text in a timestamp column
    raw = sa.Table("tickets", sa.MetaData(), *(
        sa.Column(c.name, sa.Text if as_text and isinstance(c.type, sa.DateTime) else c.type, nullable=True)
        for c in T["tickets"].columns))
    metadata.create_all(engine, tables=[T["departments"], T["staff"]])
    raw.create(engine)
    rows = [ticket(n) for n in range(1, 41)] + [ticket(n, opened_at=None) for n in range(100, 400)]
    if as_text:
        rows += [ticket(n, first_response_at="yesterday") for n in range(500, 504)]
        rows += [ticket(504, opened_at="yesterday")]
        rows = [{k: v.isoformat(sep=" ") if isinstance(v, datetime) else v for k, v in row.items()} for row in rows]
    with engine.begin() as conn:
        conn.execute(raw.insert(), rows)
    source = load(engine, [], create=False)

    results = run_data_quality(source, ["tickets"], JANUARY, now=NOW)

    found = failed(results)
    undated = found[("dq.not_null", "tickets.opened_at")]
    assert undated.evidence["unexpected_count"] == 300 and undated.severity is Severity.MAJOR
    if engine.dialect.name == "sqlite":
        typed = found[("dq.type", "tickets.first_response_at")]
        assert typed.evidence["sample_ids"] == ["T0500", "T0501", "T0502", "T0503"]
        assert found[("dq.type", "tickets.opened_at")].evidence["sample_ids"] == ["T0504"]
        assert {r.population for r in results if r.entity_id.startswith("tickets.")} == {345}
    # Another period's audit of the same table sees the undated rows too, until they are fixed.
    february = run_data_quality(source, ["tickets"], month(2026, 2), now=datetime(2026, 3, 1))
    assert failed(february)[("dq.not_null", "tickets.opened_at")].evidence["unexpected_count"] == 300


DEFERRED_CHECK = """
import sys
from datetime import datetime

import sqlalchemy as sa

from opsaudit.checks.quality import run_data_quality
from opsaudit.periods import month
from tests.test_quality import load, ticket

engine = sa.create_engine(f"sqlite:///{sys.argv[1]}")
source = load(engine, [ticket(n) for n in range(5)] + [ticket(5, satisfaction=9)])
results = run_data_quality(source, ["tickets"], month(2026, 1), now=datetime(2026, 2, 1))
assert any(r.rule_id == "dq.range" and r.outcome.value == "failed" for r in results)
print(sorted(m for m in sys.modules if m.startswith(("scipy.stats.", "altair.")))[:3])
from scipy import stats
print(round(float(stats.entropy([0.5, 0.5], [0.9, 0.1])), 4))
import altair
print(altair.Chart.__name__, type(sys.modules["scipy.stats"]).__name__)
"""


def test_great_expectations_runs_without_scipy_stats_and_altair_which_load_when_first_used(tmp_path) -> None:
    """GX imports both at module level for checks opsaudit never runs (quality_gx.DEFERRED_MODULES):
    85 MB of every audit. A clean interpreter validates a table without loading them, and a
    suite that did use them would still get them."""
    import subprocess
    import sys

    root = Path(__file__).parents[1]
    done = subprocess.run([sys.executable, "-c", DEFERRED_CHECK, str(tmp_path / "company.db")], cwd=root,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:3] == ["[]", "0.5108", "Chart module"], done.stdout


def task(number: int, **overrides: Any) -> dict[str, Any]:
    """A task of D1 due and done in January 2026, part of no plan."""
    due = datetime(2026, 1, 1 + number % 28, 18, 0)
    row = {"task_id": f"K{number:04d}", "plan_id": None, "department_id": "D1", "owner_id": "S1",
           "title": f"Task {number}", "priority": "normal", "due_at": due, "started_at": due - timedelta(days=2),
           "completed_at": due - timedelta(hours=1), "status": "done"}
    return row | overrides


def test_a_reference_to_a_table_the_source_lacks_is_a_finding_only_where_a_row_refers(engine) -> None:
    """A company without a planning system: no plans table, and its tasks leave plan_id empty.
    Nothing refers to a plan, so nothing is unresolvable; a task that names a plan is."""
    metadata.create_all(engine, tables=[T["departments"], T["staff"], T["tasks"]])
    source = load(engine, [], create=False)
    with engine.begin() as conn:
        conn.execute(T["tasks"].insert(), [task(n) for n in range(1, 6)])

    assert ("dq.reference", "tasks.plan_id") not in failed(run_data_quality(source, ["tasks"], JANUARY, now=NOW))

    with engine.begin() as conn:
        conn.execute(T["tasks"].insert(), [task(6, plan_id="P1")])
    unresolvable = failed(run_data_quality(source, ["tasks"], JANUARY, now=NOW))[("dq.reference", "tasks.plan_id")]
    assert unresolvable.severity is Severity.MAJOR and unresolvable.facts["reason"] == "missing_referenced_table"


def test_a_freshness_column_with_no_value_cannot_tell_how_fresh_the_table_is(engine) -> None:
    """A task log that keeps no deadlines: every due_at is empty. That is dq.not_null's major
    finding; freshness cannot be judged from the column, rather than "the newest is —, too old"."""
    raw = sa.Table("tasks", sa.MetaData(), *(sa.Column(c.name, c.type, nullable=True) for c in T["tasks"].columns))
    metadata.create_all(engine, tables=[T["departments"], T["staff"]])
    raw.create(engine)
    source = load(engine, [], create=False)
    with engine.begin() as conn:
        conn.execute(raw.insert(), [task(n, due_at=None) for n in range(1, 6)])

    results = {(r.rule_id, r.entity_id): r for r in run_data_quality(source, ["tasks"], JANUARY, now=NOW)}

    assert results[("dq.not_null", "tasks.due_at")].severity is Severity.MAJOR
    fresh = results[("dq.freshness", "tasks.due_at")]
    assert fresh.outcome is Outcome.INSUFFICIENT_DATA and fresh.severity is None and fresh.population == 5


def test_implausibly_old_or_future_timestamps_are_flagged_in_every_period(engine) -> None:
    """A 1970 or 2100 opened_at belongs to no period: it is in scope of the January audit (and of
    every other) and dq.range names it; a 1990 follow-up too. Deadlines may lie in the future."""
    rows = [ticket(n) for n in range(1, 20)]
    rows += [ticket(90, datetime(1970, 1, 1), first_response_at=None, resolved_at=None, closed_at=None,
                    revisited_at=None),
             ticket(91, datetime(2100, 1, 1), first_response_at=None, resolved_at=None, closed_at=None,
                    revisited_at=None),
             ticket(92, revisited_at=datetime(1990, 5, 1))]
    source = load(engine, rows)

    found = failed(run_data_quality(source, ["tickets"], JANUARY, now=NOW))

    opened = found[("dq.range", "tickets.opened_at")]
    assert opened.evidence["sample_ids"] == ["T0090", "T0091"] and opened.population == 22
    assert opened.facts["earliest"] == "2000-01-01" and opened.facts["not_after"] == "2026-02-01 06:00:00"
    assert found[("dq.range", "tickets.revisited_at")].evidence["sample_ids"] == ["T0092"]
    from opsaudit.i18n import render_finding

    text = render_finding("dq.range", "table_column", {**opened.facts, "entity_id": opened.entity_id}, "en")
    assert "before Jan 1, 2000 or later than the audit time" in text.description
    # A company that kept records before 2000 moves the earliest day (thresholds.yaml params).
    from opsaudit.checks.quality_config import with_overrides
    from opsaudit.config.models import RuleOverride

    older = with_overrides(load_rules(), {"dq.range": RuleOverride(params={"earliest": datetime(1960, 1, 1).date()})})
    found = failed(run_data_quality(source, ["tickets"], JANUARY, now=NOW, rules=older))
    assert found[("dq.range", "tickets.opened_at")].evidence["sample_ids"] == ["T0091"]
    assert ("dq.range", "tickets.revisited_at") not in found


def test_a_deadline_far_ahead_is_no_defect_but_one_from_1970_is(engine) -> None:
    metadata.create_all(engine)
    load(engine, [], create=False)
    due = [datetime(2026, 1, 20), datetime(2100, 1, 1), datetime(1970, 1, 1)]
    with engine.begin() as conn:
        conn.execute(T["tasks"].insert(), [
            {"task_id": f"K{n}", "department_id": "D1", "owner_id": "S1", "title": "t", "priority": "normal",
             "due_at": day, "status": "in_progress", "expected_output": 1.0} for n, day in enumerate(due)])
    found = failed(run_data_quality(Source(engine, SourceMapping()), ["tasks"], JANUARY, now=NOW))
    assert found[("dq.range", "tasks.due_at")].evidence["sample_ids"] == ["K2"]
    assert found[("dq.range", "tasks.due_at")].facts == {
        "table": "tasks", "column": "due_at", "earliest": "2000-01-01", "unexpected_count": 1, "population": 2,
        "share": 0.5, "period": "2026-01"}

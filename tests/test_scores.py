"""Monthly scores from a known set of findings, on SQLite and PostgreSQL; `opsaudit scores`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from opsaudit.config.models import Scoring
from opsaudit.errors import UsageError
from opsaudit.scores import month, scores_for
from opsaudit.store.lifecycle import Request, perform
from tests.rectification import ZONE, company, directory, problem, raise_findings
from tests.terminal import on_a_terminal, widest

NOW = datetime(2026, 11, 5, 12, tzinfo=ZONE)


def on(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=ZONE)


def due_on(day: str) -> datetime:
    """When a general problem due on `day` was found (15 days before)."""
    return on(day, 9) - timedelta(days=15)


@pytest.fixture
def october(engine):
    """Problems of October and rectifications overdue in it, with the ids of each by name."""
    company(engine)
    people = directory(engine)
    ids: dict[str, str] = {}

    def found(name: str, result, period: str, at: datetime = on("2026-11-01", 9)) -> None:
        [ids[name]] = raise_findings(engine, [result], period=period, found_at=at)

    found("monthly general", problem("CS1", "general", owner="O1"), "2026-10")
    # The same rule and department in a week of October and in the month: one problem, the graver.
    found("weekly important", problem("CS1", "important", owner="H1", rule="cs.first_response_rate"), "2026-W42")
    found("monthly major", problem("CS1", "major", owner="H1", rule="cs.first_response_rate"), "2026-10")
    found("quarter ended in September", problem("CS2", "important", owner="O3"), "2026Q3")
    found("week ending in November", problem("CS2", "general", owner="O3", rule="cs.revisit_rate"), "2026-W44")
    found("week ending in October", problem("CS2", "major", owner="O3", rule="cs.handling_rate"), "2026-W40")
    found("company", problem("COMPANY", "general", owner="M1", rule="cs.qa_compliance", department=None), "2026-10")
    # Rectification deadlines (general problems of August, due 15 days after they were found).
    for name, due, owner in (("open all along", "2026-09-16", "O1"), ("submitted in time", "2026-10-05", "O1"),
                             ("submitted late", "2026-10-10", "O1"), ("closed in September", "2026-09-20", "O2"),
                             ("returned after the deadline", "2026-10-10", "O2"), ("due in November", "2026-11-05",
                                                                                    "O2")):
        found(name, problem(name, "general", owner=owner, department="CS1", rule="exec.on_time_rate"), "2026-08",
              due_on(due))
    steps = {"submitted in time": [("start", "2026-10-01"), ("submit", "2026-10-03")],
             "submitted late": [("start", "2026-10-01"), ("submit", "2026-10-15")],
             "closed in September": [("start", "2026-09-10"), ("submit", "2026-09-18"), ("verify", "2026-09-24"),
                                     ("close", "2026-09-25")],
             "returned after the deadline": [("start", "2026-10-01"), ("submit", "2026-10-08"),
                                             ("reject", "2026-10-20")]}
    inputs = {"submit": {"evidence": "https://x/1"}, "reject": {"note": "未达标"}}
    for name, moves in steps.items():
        for action, day in moves:
            actor = "A1" if action in ("verify", "close", "reject") else "H1"
            with engine.begin() as conn:
                perform(conn, ids[name], Request(action, actor, **inputs.get(action, {})), people, now=on(day))
    return engine, people, ids


def test_scores_from_a_known_set_of_findings(october):
    engine, people, ids = october
    with engine.connect() as conn:
        results = scores_for(conn, "2026-10", scoring=Scoring(), zone=ZONE, now=NOW, directory=people)
    assert [(s.entity_type, s.entity_id, s.department_id, s.score) for s in results] == [
        ("department", "CS1", "CS1", 100 - 1 - 10 - 2 * 3), ("department", "CS2", "CS2", 90),
        ("department", "HQ", "HQ", 100), ("department", "OPS", "OPS", 100),
        ("staff", "H1", "CS1", 90), ("staff", "M1", "OPS", 99), ("staff", "O1", "CS1", 100 - 1 - 2 * 2),
        ("staff", "O2", "CS1", 98), ("staff", "O3", "CS2", 90)]
    cs1 = results[0]
    names = {finding_id: name for name, finding_id in ids.items()}
    assert [(d.reason, names[d.finding["id"]], d.points) for d in cs1.deductions] == [
        ("problem", "monthly major", 10), ("problem", "monthly general", 1), ("overdue", "open all along", 2),
        ("overdue", "returned after the deadline", 2), ("overdue", "submitted late", 2)]
    assert sum(d.points for d in cs1.deductions) == 100 - cs1.score


def test_the_deductions_follow_the_configured_points(october):
    engine, people, _ = october
    with engine.connect() as conn:
        results = scores_for(conn, "2026-10", scoring=Scoring(start=50, general=2, important=5, major=20, overdue=4),
                             zone=ZONE, now=NOW, directory=people)
    assert {s.entity_id: s.score for s in results if s.entity_type == "department"}["CS1"] == 50 - 2 - 20 - 3 * 4


def test_the_json_is_the_interface_shape_and_each_deduction_names_its_finding(october):
    engine, people, ids = october
    with engine.connect() as conn:
        data = [s.as_json(ZONE) for s in scores_for(conn, "2026-10", scoring=Scoring(), zone=ZONE, now=NOW,
                                                      directory=people)]
    assert all(list(entry) == ["entity_type", "entity_id", "department_id", "score", "deductions"] for entry in data)
    o1 = next(entry for entry in data if entry["entity_id"] == "O1")
    assert o1["deductions"][0] == {"reason": "problem", "points": 1, "finding_id": ids["monthly general"],
                                   "rule_id": "cs.satisfaction_rate", "entity_type": "department", "entity_id": "CS1",
                                   "period": "2026-10", "severity": "general", "due_at": None}
    assert o1["deductions"][1]["due_at"] == "2026-09-16T09:00:00+08:00"


def test_a_period_that_is_not_a_month_is_refused():
    for label, chinese, english in (("2026Q4", "--period：“2026Q4”是季度，不是月份（如2026-10）",
                                     "--period: '2026Q4' is a quarter, not a month (e.g. 2026-10)"),
                                    ("October", "--period：“October”不是有效的期间",
                                     "--period: 'October' is not a period")):
        with pytest.raises(UsageError) as refused:
            month(label)
        assert str(refused.value).startswith(chinese) and refused.value.text("en").startswith(english)


def opsaudit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_opsaudit_scores_prints_json_csv_and_a_table(october, db_url):
    engine, _, ids = october
    env = {**os.environ, "OPSAUDIT_DATABASE_URL": db_url}
    as_json = opsaudit("scores", "--period", "2026-10", "--format", "json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert {(e["entity_type"], e["entity_id"]): e["score"] for e in data}[("department", "CS1")] == 83
    as_csv = opsaudit("scores", "--period", "2026-10", "--format", "csv", env=env)
    rows = {row["entity_id"]: row for row in csv.DictReader(io.StringIO(as_csv.stdout))}
    assert (rows["CS1"]["score"], rows["CS1"]["major"], rows["CS1"]["overdue"], rows["CS1"]["deducted"]) == (
        "83", "1", "3", "17")
    assert rows["O3"]["name"] == "员工O3" and rows["CS1"]["name"] == "客服一部"
    handling = ids["week ending in October"][:8]
    assert rows["O3"]["deductions"] == f"问题处理率未达标（CS2）：重大问题，扣10分（问题{handling}）"
    # The table names departments as a manager reads them: a person's, and the one a department belongs to.
    chinese = opsaudit("scores", "--period", "2026-10", env=env)
    assert chinese.returncode == 0, chinese.stderr
    department = next(line for line in chinese.stdout.splitlines() if line.startswith("CS1 "))
    assert "客服一部" in department and "总部（HQ）" in department, chinese.stdout
    person = next(line for line in chinese.stdout.splitlines() if line.startswith("O3 "))
    assert "员工O3" in person, chinese.stdout
    table = opsaudit("scores", "--period", "2026-10", "--lang", "en", env=env)
    assert table.returncode == 0 and "Score" in table.stdout
    assert "Scores of October 2026: 4 departments and 5 owners with deductions" in table.stdout
    assert opsaudit("scores", "--period", "2026Q4", env=env).returncode == 2


def test_the_scores_table_fits_80_columns(october, db_url, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    for language, headings in (("zh-CN", ("部门得分", "责任人得分")), ("en", ("Departments", "Owners"))):
        shown = on_a_terminal("scores", "--period", "2026-10", "--lang", language)
        assert widest(shown) <= 80 and all(heading in shown.splitlines() for heading in headings), shown
        rows = {line.split()[0]: line.split() for line in shown.splitlines() if line.startswith(("CS1 ", "O3 "))}
        assert rows["CS1"][-6:] == ["83", "1", "0", "1", "3", "17"], shown   # score, problems, overdue, deducted

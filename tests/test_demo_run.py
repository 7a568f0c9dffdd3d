"""The demo company audited end to end: every planted problem is found, rule by rule, and
nothing else is raised."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from opsaudit.contract import staff
from opsaudit.demo import build_demo
from opsaudit.store.migrate import upgrade
from opsaudit.store.schema import findings

AS_OF = datetime(2026, 11, 21, 10, 0)


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("clock", ["fixed", "real"])
def test_the_audits_find_every_planted_problem(db_url, engine, monkeypatch, clock):
    """With --now, and on the real clock as production runs: the same problems, nothing else."""
    from opsaudit.flows.audits import PERIODIC_FLOWS

    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    summary = build_demo(engine, as_of=AS_OF if clock == "fixed" else None)
    upgrade(engine)
    now = AS_OF.replace(tzinfo=ZoneInfo("Asia/Shanghai")) if clock == "fixed" else None
    for audit_flow in PERIODIC_FLOWS.values():
        audit_flow(now=now)
    with engine.connect() as conn:
        found = {tuple(row) for row in conn.execute(
            sa.select(findings.c.rule_id, findings.c.entity_type, findings.c.entity_id, findings.c.period))}
        owners = conn.execute(sa.select(findings.c.area, findings.c.owner_id)).all()
        manager = conn.execute(sa.select(staff.c.staff_id).where(staff.c.department_id == "OPS",
                                                                 staff.c.role == "manager")).scalar_one()
    assert all(owner for _, owner in owners), "every finding has an owner"
    assert {owner for area, owner in owners if area == "data_quality"} == {manager}
    planted = {(p.rule_id, p.entity_type, p.entity_id, p.period) for p in summary.planted}
    missed, unplanted = defaultdict(list), defaultdict(list)
    for key in planted - found:
        missed[key[0]].append(key[1:])
    for key in found - planted:
        unplanted[key[0]].append(key[1:])
    assert not missed, f"planted problems the audits missed, by rule: {dict(missed)}"
    assert not unplanted, f"findings on healthy data, by rule: {dict(unplanted)}"
    _read_in_both_languages(engine)
    rules = {key[0] for key in planted}
    assert {r for r in rules if not r.startswith("dq.")} >= {
        "cs.satisfaction_rate", "cs.complaint_satisfaction_rate", "cs.handling_rate", "cs.revisit_rate",
        "cs.first_response_rate", "cs.qa_attitude", "cs.qa_compliance", "exec.on_time_rate", "exec.overdue_task",
        "exec.outcome_shortfall", "exec.cost_overrun", "exec.hours_overrun", "exec.idle_resources",
        "exec.process_violation", "plan.late_submission", "plan.unapproved", "plan.not_decomposed",
        "plan.target_unreasonable", "plan.missing_market_research", "plan.missing_signoff",
        "plan.adjustment_unapproved", "plan.completion_rate", "data.report_late", "data.report_incomplete",
        "data.report_unreviewed", "data.metric_mismatch", "cs.qa_resolution", "cs.reopen_rate", "plan.missing",
        "data.report_missing"}


def test_opsaudit_demo_needs_no_setup_and_writes_its_output(tmp_path):
    result = subprocess.run([sys.executable, "-m", "opsaudit", "demo", "--now", AS_OF.isoformat()],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "演示数据中共埋设" in result.stdout and "稽查输出已写入" in result.stdout
    # What was built, in the words of the contract's tables and with figures as people write them.
    built = result.stdout.splitlines()[0]
    assert built.startswith(f"已生成演示公司（随机种子20261101，数据截至{AS_OF:%Y-%m-%d}）：")
    assert "：部门表8条、员工表86条、工单表" in built
    assert re.search(r"、工单表\d{1,3}(,\d{3})+条、", built) and built.endswith("报告数据表178条。")
    out = tmp_path / "out"
    assert json.loads((out / "demo" / "planted.json").read_text())["planted"]
    for audit, period in (("cs-weekly", "2026-W46"), ("cs-monthly", "2026-10"), ("execution-monthly", "2026-10"),
                          ("planning-quarterly", "2026Q3"), ("data-quarterly", "2026Q3")):
        assert json.loads((out / audit / period / "results.json").read_text())["results"]
    assert list((out / "cs-weekly" / "2026-W46").glob("qa-review-sheet-*.xlsx"))
    listed = subprocess.run([sys.executable, "-m", "opsaudit", "findings", "list", "--format", "json"],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) > 20


def _read_in_both_languages(engine: sa.Engine) -> None:
    """Every real finding reads in Chinese without an English word, and in English without Chinese
    (ids and names, which are data, excepted), and no figure is left unfilled."""
    from test_finding_texts import CJK, LATIN, _without_data

    from opsaudit.store.finding_views import finding_text

    with engine.connect() as conn:
        rows = conn.execute(sa.select(findings)).mappings().all()
    assert rows
    for row in rows:
        facts = {**row["facts"], "entity_id": row["entity_id"]}
        chinese, english = (finding_text(row, language) for language in ("zh-CN", "en"))
        for title, description in (chinese, english):
            assert title and description and "{" not in description and "—" not in description, description
        for text in chinese:
            assert LATIN.findall(_without_data(text, facts, row["rule_id"])) == [], (row["rule_id"], text)
        for text in english:
            assert CJK.findall(_without_data(text, facts, row["rule_id"])) == [], (row["rule_id"], text)

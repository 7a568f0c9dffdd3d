"""A recurring finding on the web, on SQLite and PostgreSQL: `/api/findings/<id>` is exactly the JSON
of `findings show --format json`, the root cause recorded the last time included, and the finding's
page shows that cause as `findings show` does (issue 21, item 5)."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta

from typer.testing import CliRunner

from opsaudit.config.models import Deadlines
from opsaudit.store.lifecycle import Request, perform
from tests.rectification import CAUSE, ZONE, directory, problem, raise_findings
from tests.test_web import sign_in, site  # noqa: F401 (site: the fixture)

SEPTEMBER = datetime(2026, 10, 1, 9, tzinfo=ZONE)
# The earlier finding's way to closed, one day apart from the second day on: its plan states a cause.
STEPS = (("submit-plan", "O1", CAUSE), ("approve-plan", "M1", {}), ("start", "O1", {}),
         ("submit", "O1", {"evidence": "https://x/1"}), ("verify", "A2", {}), ("close", "A2", {}))


def closed_then_found_again(engine) -> tuple[str, str]:
    """A September finding of CS1 rectified with a stated cause, then the same problem in October:
    the earlier finding's id and the recurring one's."""
    people = directory(engine)
    [earlier] = raise_findings(engine, [problem("CS1", "important")], period="2026-09", found_at=SEPTEMBER)
    for day, (action, actor, inputs) in enumerate(STEPS, start=2):
        with engine.begin() as conn:
            perform(conn, earlier, Request(action, actor, **inputs), people, now=SEPTEMBER + timedelta(days=day),
                    deadlines=Deadlines())
    [recurring] = raise_findings(engine, [problem("CS1", "important")])
    return earlier, recurring


def cli_json(finding_id: str) -> dict:
    from opsaudit.cli import app

    shown = CliRunner().invoke(app, ["findings", "show", finding_id, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.stdout)


def test_the_api_gives_the_json_of_findings_show_with_the_previous_cause(site):  # noqa: F811
    earlier, recurring = closed_then_found_again(site.engine)
    head = sign_in(site, "H1")
    data = head.get(f"/api/findings/{recurring}").json()
    assert data["recurring"] and data["previous_cause"] == {
        "finding_id": earlier, "at": (SEPTEMBER + timedelta(days=2)).isoformat(timespec="seconds"), **CAUSE}
    assert data == cli_json(recurring)
    earlier_data = head.get(f"/api/findings/{earlier}").json()
    assert earlier_data["previous_cause"] is None and earlier_data == cli_json(earlier)


def test_the_page_of_a_recurring_finding_shows_the_cause_recorded_the_last_time(site):  # noqa: F811
    earlier, recurring = closed_then_found_again(site.engine)
    head = sign_in(site, "H1")
    page = html.unescape(head.get(f"/findings/{recurring}").text)
    assert "上次发现时记录的根本原因" in page and f'href="/findings/{earlier}"' in page
    assert f"问题{earlier[:8]}，" in page and "提交整改方案" in page
    assert f"<dt>根本原因</dt><dd>{CAUSE['cause']}</dd>" in page
    assert f"<dt>预防措施</dt><dd>{CAUSE['prevention']}</dd>" in page
    assert "上次发现时记录的根本原因" not in head.get(f"/findings/{earlier}").text

"""`/` at a contact centre's scale: the statements my work sends are a fixed number, whatever the
number of agents and findings (2,000 agents, 4,000 findings), for every role, with the directory
kept or read anew."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa

from opsaudit.store.migrate import upgrade
from tests.builders import Dataset
from tests.rectification import email, problem, raise_findings
from tests.test_web import make_site, sign_in

AGENTS, FINDINGS = 2000, 4000


def contact_centre(engine: sa.Engine) -> None:
    """OPS (manager M1, deputy M2, auditor A1) and 20 departments D00..D19 with a head each and
    2,000 agents between them, everyone with an address."""
    data = Dataset()
    data.department("OPS", name="运营部", head_id="M1")
    for staff_id, role in (("M1", "manager"), ("M2", "deputy_manager"), ("A1", "auditor"), ("E1", "executive")):
        data.staff(staff_id, "OPS" if role != "executive" else "HQ", role, email=email(staff_id))
    data.department("HQ", name="总部", head_id="E1")
    for d in range(20):
        data.department(f"D{d:02d}", name=f"客服{d}部", head_id=f"H{d:02d}", parent_id="HQ")
        data.staff(f"H{d:02d}", f"D{d:02d}", "manager", email=email(f"H{d:02d}"))
    for n in range(AGENTS):
        data.staff(f"S{n:04d}", f"D{n % 20:02d}", "agent", email=email(f"S{n:04d}"))
    data.insert(engine, {"departments", "staff"})
    upgrade(engine)


def statements_of(client, path: str = "/") -> tuple[int, float]:
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    started = time.perf_counter()
    try:
        answer = client.get(path)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
    assert answer.status_code == 200
    return len(seen), time.perf_counter() - started


def test_my_work_sends_the_same_statements_for_forty_or_four_thousand_findings(engine, db_url, monkeypatch,
                                                                                capsys):
    contact_centre(engine)
    site = make_site(engine, db_url, monkeypatch)
    people = ("M1", "M2", "A1", "H03", "S0003", "E1")
    browsers = {person: sign_in(site, person) for person in people}
    for browser in browsers.values():
        browser.get("/")   # the session's last-seen time is written now, not in the counts below

    def batch(start: int, count: int) -> None:
        raise_findings(site.engine, [problem(f"X{n:05d}", ("general", "important", "major")[n % 3],
                                             owner=f"S{n % AGENTS:04d}", department=f"D{n % 20:02d}")
                                     for n in range(start, start + count)])

    def rereading(browser) -> int:
        """The statements of a request that reads the directory anew (the clock set back before
        the time it was kept, which touches no session)."""
        site.clock.now -= timedelta(seconds=1)
        return statements_of(browser)[0]

    batch(0, 40)
    small = {person: statements_of(browser)[0] for person, browser in browsers.items()}
    small_rereading = rereading(browsers["H03"])
    batch(40, FINDINGS - 40)
    large = {person: statements_of(browser) for person, browser in browsers.items()}
    assert {person: counted for person, (counted, _) in large.items()} == small
    assert rereading(browsers["H03"]) == small_rereading
    with capsys.disabled():
        print(f"\n[{engine.dialect.name}] / with {AGENTS} agents, {FINDINGS} findings: "
              + ", ".join(f"{person} {counted} statements {seconds * 1000:.0f} ms"
                          for person, (counted, seconds) in large.items())
              + f"; H03 reading the directory anew {small_rereading} statements")


"""`opsaudit web` over HTTP, on SQLite and PostgreSQL: signing in by a one-time link, sessions,
CSRF, security headers, who sees what, and every lifecycle action by every role exactly as the
lifecycle table allows it (interface.md, "The web"), with the channel each event records."""

from __future__ import annotations

import hashlib
import html
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from opsaudit.config.models import Deadlines
from opsaudit.contract import staff
from opsaudit.settings import load_settings
from opsaudit.store.finding_views import events_of, get_finding
from opsaudit.store.schema import (
    finding_events,
    major_handling,
    outbox,
    reports,
    web_login_requests,
    web_logins,
    web_sessions,
)
from tests.rectification import FOUND, ZONE, company, email, problem, raise_findings, set_status, snapshot

STATES = ("open", "plan_submitted", "plan_approved", "in_progress", "submitted", "verified", "closed")
# interface.md's lifecycle table, as tests/test_lifecycle.py writes it out for the company of
# tests/rectification.py: a finding of CS1 owned by O1 (H1 heads CS1, M1 is the operations
# manager, M2 the deputy, A1 and A2 auditors).
FROM = {"assign": set(STATES) - {"closed"}, "submit-plan": {"open"}, "approve-plan": {"plan_submitted"},
        "reject-plan": {"plan_submitted"}, "start": {"plan_approved"}, "submit": {"in_progress"},
        "reject": {"submitted"}, "verify": {"submitted"}, "close": {"verified"}, "reopen": {"closed"},
        "regrade": set(STATES) - {"closed"}, "withdraw": set(STATES) - {"closed"}}
TO = {"submit-plan": "plan_submitted", "approve-plan": "plan_approved", "reject-plan": "open", "start": "in_progress",
      "submit": "submitted", "reject": "in_progress", "verify": "verified", "close": "closed", "reopen": "open",
      "withdraw": "withdrawn"}
WHO = {"assign": {"M1", "H1"}, "submit-plan": {"O1", "H1"}, "approve-plan": {"M1", "M2"},
       "reject-plan": {"M1", "M2"}, "start": {"O1", "H1"}, "submit": {"O1", "H1"}, "reject": {"A1", "A2"},
       "verify": {"A1", "A2"}, "close": {"A1", "A2"}, "reopen": {"A1", "A2", "M1"},
       "regrade": {"A1"}, "withdraw": {"A1"}}   # A1: the audit team lead
EVERYONE = ("E1", "M1", "M2", "A1", "A2", "H1", "O1", "O2", "H2", "O3")
SEES_CS1 = {"E1", "E2", "M1", "M2", "A1", "A2", "H1", "O1", "O2"}   # the others are of CS2
# What each action's form needs filled in (an important finding's plan states its cause and prevention).
INPUTS = {"assign": {"to": "O2"}, "reject-plan": {"note": "缺少时间表"}, "reject": {"note": "证据不足"},
          "reopen": {"note": "问题复发"}, "submit-plan": {"cause": "夜班人手不足", "prevention": "每月复核排班"},
          "regrade": {"severity": "major", "note": "影响扩大"}, "withdraw": {"note": "数据口径错误"}}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Clock:
    """The app's clock, moved by the tests (a link's 15 minutes, a session's idle time)."""

    now: datetime = FOUND + timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    engine: sa.Engine
    app: object
    clock: Clock

    def client(self, **options) -> TestClient:
        return TestClient(self.app, follow_redirects=False, **options)


def make_site(engine: sa.Engine, db_url: str, monkeypatch, clock=None, **environment: str) -> Site:
    from opsaudit.web.app import create_app

    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    monkeypatch.setenv("OPSAUDIT_WEB_SECRET", "test-secret-0123456789")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    clock = clock or Clock()
    return Site(engine, create_app(load_settings(), clock=clock), clock)


@pytest.fixture
def site(engine, db_url, monkeypatch) -> Site:
    company(engine)
    return make_site(engine, db_url, monkeypatch)


def form_token(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code, page.text[:300])
    return TOKEN.search(page.text).group(1)


def last_link(engine: sa.Engine) -> str:
    """The sign-in link of the newest mail in the outbox."""
    with engine.connect() as conn:
        body = conn.execute(sa.select(outbox.c.body_text).order_by(outbox.c.id.desc()).limit(1)).scalar_one()
    return re.search(r"https?://\S+/login/(\S+)", body).group(1)


def mails(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()


def ask_link(client: TestClient, address: str):
    return client.post("/login", data={"email": address, "csrf_token": form_token(client, "/login")})


def sign_in(site: Site, staff_id: str) -> TestClient:
    """A browser of staff_id, signed in through the mailed link."""
    client = site.client()
    assert ask_link(client, email(staff_id)).status_code == 200
    answer = client.get(f"/login/{last_link(site.engine)}")
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text[:300]
    return client


def csrf(client: TestClient) -> str:
    return form_token(client, "/")


def post_action(client: TestClient, finding_id: str, action: str, token: str, **inputs: str):
    """The action's form sent as the page would send it: INPUTS, then `inputs` over them."""
    data = {"csrf_token": token, **INPUTS.get(action, {}), **inputs}
    files = {"evidence": ("整改报告.txt", "已增加夜班。".encode(), "text/plain")} if action == "submit" else None
    return client.post(f"/findings/{finding_id}/{action}", data=data, files=files)


# --- signing in ---------------------------------------------------------------------------------

def test_a_mailed_link_signs_in_once_and_the_session_cookie_is_guarded(site):
    client = site.client()
    assert client.get("/").headers["location"] == "/login"
    assert ask_link(client, email("H1")).status_code == 200
    token = last_link(site.engine)
    with site.engine.connect() as conn:
        stored = conn.execute(sa.select(web_logins.c.token_hash)).scalars().all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]   # only the digest is kept
    answer = client.get(f"/login/{token}")
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "opsaudit_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie   # plain http in the test; https sets it
    home = client.get("/")
    assert home.status_code == 200 and "员工H1（H1）" in home.text
    again = site.client().get(f"/login/{token}")
    assert again.status_code == 400 and "已使用或已过期" in again.text


def test_the_session_cookie_is_secure_behind_https(site, db_url, monkeypatch):
    secure = make_site(site.engine, db_url, monkeypatch, clock=site.clock, OPSAUDIT_WEB_URL="https://audit.example.com")
    client = TestClient(secure.app, base_url="https://audit.example.com", follow_redirects=False)
    assert ask_link(client, email("H1")).status_code == 200
    cookie = client.get(f"/login/{last_link(site.engine)}").headers["set-cookie"]
    assert "opsaudit_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_the_signing_key_is_generated_once_and_kept_when_none_is_set(tmp_path, monkeypatch):
    from opsaudit.web.security import SECRET_FILE, signing_key

    monkeypatch.delenv("OPSAUDIT_WEB_SECRET", raising=False)
    monkeypatch.setenv("OPSAUDIT_DATA_DIR", str(tmp_path / "data"))
    first = signing_key(load_settings())
    kept = tmp_path / "data" / SECRET_FILE
    assert len(first) >= 48 and kept.read_bytes() == first
    assert kept.stat().st_mode & 0o777 == 0o600   # the owner's alone
    assert signing_key(load_settings()) == first   # a restart keeps every session signed with it
    monkeypatch.setenv("OPSAUDIT_WEB_SECRET", "set-by-the-company")
    assert signing_key(load_settings()) == b"set-by-the-company"


def test_an_expired_or_forged_link_starts_no_session(site):
    client = site.client()
    ask_link(client, email("O1"))
    token = last_link(site.engine)
    site.clock.now += timedelta(minutes=15, seconds=1)
    assert client.get(f"/login/{token}").status_code == 400
    assert client.get("/login/" + "A" * 43).status_code == 400
    assert client.get("/").status_code == 303
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(web_sessions)).scalar_one() == 0


def test_an_unknown_or_inactive_address_reads_the_same_and_is_mailed_nothing(site):
    browser = site.client()   # one browser: its form token is the same on every page
    known = ask_link(browser, email("O1"))
    before = mails(site.engine)
    for address in ("nobody@example.com", email("X1")):   # X1 left the company
        unknown = ask_link(browser, address)
        assert unknown.status_code == known.status_code == 200
        assert unknown.text == known.text
    assert mails(site.engine) == before


def test_sign_in_requests_are_limited_per_address_and_per_client(site):
    client = site.client()
    answers = [ask_link(client, email("O1")).status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    other = site.client(client=("10.1.1.1", 5000))
    answers = [ask_link(other, f"n{n}@example.com").status_code for n in range(21)]
    assert answers == [200] * 20 + [429]


def test_a_session_ends_when_its_person_is_made_inactive_or_idle_too_long(site):
    client = sign_in(site, "O1")
    assert client.get("/").status_code == 200
    site.clock.now += timedelta(hours=9)
    assert client.get("/").status_code == 303
    client = sign_in(site, "O1")
    with site.engine.begin() as conn:
        conn.execute(staff.update().where(staff.c.staff_id == "O1").values(active=False))
    assert client.get("/").headers["location"] == "/login"
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(web_sessions.c.ended_at).where(web_sessions.c.staff_id == "O1")).scalars().all()
        assert all(conn.execute(sa.select(web_sessions.c.ended_at)).scalars())


def test_logout_ends_the_session_and_needs_its_token(site):
    client = sign_in(site, "A1")
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf(client)}).status_code == 303
    assert client.get("/").status_code == 303


def test_the_trusted_header_signs_in_only_from_a_trusted_proxy(engine, db_url, monkeypatch):
    company(engine)
    site = make_site(engine, db_url, monkeypatch, OPSAUDIT_WEB_TRUSTED_HEADER="X-Remote-User",
                     OPSAUDIT_WEB_TRUSTED_PROXIES="10.0.0.0/8")
    proxy = site.client(client=("10.2.3.4", 443))
    assert proxy.get("/", headers={"X-Remote-User": email("H1")}).status_code == 200
    assert proxy.get("/", headers={"X-Remote-User": "X1"}).status_code == 303   # left the company
    stranger = site.client(client=("192.0.2.9", 443))
    assert stranger.get("/", headers={"X-Remote-User": "M1"}).status_code == 303


def test_every_answer_carries_the_security_headers_and_health_needs_no_session(site):
    health = site.client().get("/healthz")
    assert health.status_code == 200 and health.text == "ok"
    page = site.client().get("/login")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src" not in policy and "default-src 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in page.text


def test_the_language_is_chosen_and_remembered(site):
    client = sign_in(site, "H1")
    assert "我的待办" in client.get("/").text
    answer = client.post("/language", data={"language": "en", "csrf_token": csrf(client), "next": "/findings"})
    assert answer.status_code == 303 and answer.headers["location"] == "/findings"
    assert "My work" in client.get("/").text
    filtered = client.get("/findings?status=open&severity=major").text
    assert 'name="next" value="/findings?status=open&amp;severity=major"' in filtered   # the filters kept
    assert client.post("/language", data={"language": "zh-CN", "csrf_token": csrf(client),
                                          "next": "//evil.example"}).headers["location"] == "/"


# --- who may do what --------------------------------------------------------------------------

def test_every_action_by_every_role_is_allowed_exactly_where_the_lifecycle_table_says(site):
    browsers = {person: sign_in(site, person) for person in EVERYONE}
    tokens = {person: csrf(browser) for person, browser in browsers.items()}
    number = 0
    for action, sources in FROM.items():
        for person in EVERYONE:
            number += 1
            [finding] = raise_findings(site.engine, [problem(f"T{number}", "important", department="CS1")])
            set_status(site.engine, finding, sorted(sources)[0])
            before = snapshot(site.engine, finding)
            answer = post_action(browsers[person], finding, action, tokens[person])
            if person in WHO[action]:
                assert answer.status_code == 303, (action, person, answer.text[:400])
                assert answer.headers["location"] == f"/findings/{finding}"
                with site.engine.connect() as conn:
                    row = get_finding(conn, finding)
                    event = events_of(conn, finding, ZONE)[-1]
                assert row["status"] == TO.get(action, sorted(sources)[0]), (action, person)
                assert (event["actor"], event["action"], event["channel"]) == (person, action, "web")
            else:
                expected = 403 if person in SEES_CS1 else 404
                assert answer.status_code == expected, (action, person, answer.status_code)
                assert snapshot(site.engine, finding) == before, (action, person)
                if expected == 403:
                    assert "\n" not in re.search(r'class="refusal">([^<]*)<', answer.text).group(1)


def test_every_action_from_every_state_is_allowed_exactly_where_the_lifecycle_table_says(site):
    """Each action by a person who may take it, from each state: allowed only from the states of
    the lifecycle table, and a refusal is 403 with one line and changes nothing."""
    browsers = {person: sign_in(site, person) for person in ("A1", "M1", "H1")}
    tokens = {person: csrf(browser) for person, browser in browsers.items()}
    number = 0
    for action, sources in FROM.items():
        person = sorted(WHO[action])[0]
        for state in STATES:
            number += 1
            [finding] = raise_findings(site.engine, [problem(f"S{number}", "important", department="CS1")])
            set_status(site.engine, finding, state)
            before = snapshot(site.engine, finding)
            answer = post_action(browsers[person], finding, action, tokens[person])
            if state in sources:
                assert answer.status_code == 303, (action, state, answer.text[:400])
            else:
                assert answer.status_code == 403, (action, state, answer.status_code)
                assert snapshot(site.engine, finding) == before, (action, state)


def test_the_actions_a_page_offers_are_those_the_lifecycle_allows(site):
    """The web finds a visitor's roles once per page; what it offers is what check_allowed allows,
    for every person, state and severity, on a department's finding and on a company-wide one."""
    from opsaudit.store import lifecycle
    from opsaudit.web.context import Visitor
    from opsaudit.web.views import allowed_actions
    from tests.rectification import directory

    people = directory(site.engine)
    for staff_id in (*EVERYONE, "E2", "A3", "X1"):
        visitor = Visitor(people.people[staff_id], people, "zh-CN", "token")
        for status, severity, owner, department in ((s, v, o, d) for s in STATES
                                                    for v in ("general", "important", "major")
                                                    for o, d in (("O1", "CS1"), ("M1", None), (None, "CS2"))):
            row = {"status": status, "severity": severity, "owner_id": owner, "department_id": department}
            expected = []
            for name, action in lifecycle.ACTIONS.items():
                try:
                    lifecycle.check_allowed(row, action, staff_id, people, "zh-CN")
                except lifecycle.Refused:
                    continue
                expected.append(name)
            assert allowed_actions(row, visitor) == expected, (staff_id, row)


def test_pages_show_the_directory_read_at_most_30_seconds_ago_and_actions_read_it_anew(site):
    from opsaudit.contract import departments
    from opsaudit.web.context import DIRECTORY_AGE

    [finding] = raise_findings(site.engine, [problem("CS1", "important")])
    agent = sign_in(site, "O2")
    assert "待办0项" in agent.get("/").text
    with site.engine.begin() as conn:   # O2 now heads CS1
        conn.execute(departments.update().where(departments.c.department_id == "CS1").values(head_id="O2"))
    assert "待办0项" in agent.get("/").text
    site.clock.now += DIRECTORY_AGE
    assert "待办1项" in agent.get("/").text
    with site.engine.begin() as conn:   # and no longer: refused at once, though the page still offers it
        conn.execute(departments.update().where(departments.c.department_id == "CS1").values(head_id="H1"))
    assert f'action="/findings/{finding}/submit-plan"' in agent.get(f"/findings/{finding}").text
    assert post_action(agent, finding, "submit-plan", csrf(agent)).status_code == 403


def test_my_work_is_paged_overdue_first(site):
    from opsaudit.web.views import WORK_PAGE

    ids = raise_findings(site.engine, [problem(f"T{n}", "general", department="CS1") for n in range(WORK_PAGE + 5)])
    owner = sign_in(site, "O1")
    first, second = owner.get("/").text, owner.get("/?page=2").text
    assert f"待办{WORK_PAGE + 5}项" in first and "第1页，共2页" in first and "第2页，共2页" in second
    assert sum(i in first for i in ids) == WORK_PAGE and sum(i in second for i in ids) == 5


def test_a_post_without_the_sessions_own_token_changes_nothing(site):
    owner, head = sign_in(site, "O1"), sign_in(site, "H1")
    [finding] = raise_findings(site.engine, [problem("CS1", "general")])
    before = snapshot(site.engine, finding)
    assert post_action(owner, finding, "start", "").status_code == 403
    assert post_action(owner, finding, "start", csrf(head)).status_code == 403
    assert site.client().post(f"/findings/{finding}/start", data={"csrf_token": csrf(owner)}).status_code == 303
    assert snapshot(site.engine, finding) == before
    assert post_action(owner, finding, "start", csrf(owner)).status_code == 303


def test_another_departments_finding_is_not_found_and_company_wide_ones_are_seen(site):
    cs1, company_wide = raise_findings(site.engine, [problem("CS1", "major"),
                                                     problem("ALL", "general", department=None, owner="M1")])
    other_head, executive = sign_in(site, "H2"), sign_in(site, "E1")
    for path in (f"/findings/{cs1}", f"/api/findings/{cs1}", f"/findings/{cs1[:8]}"):
        assert other_head.get(path).status_code == 404
        assert executive.get(path).status_code == 200
    assert other_head.get(f"/findings/{company_wide}").status_code == 200
    listed = other_head.get("/findings").text
    assert cs1 not in listed and company_wide in listed
    assert other_head.get("/reports").status_code == 404


def test_the_finding_page_shows_the_actions_i_may_take_and_the_api_its_json(site):
    [finding] = raise_findings(site.engine, [problem("CS1", "major")])
    head = sign_in(site, "H1")
    page = head.get(f"/findings/{finding}").text
    assert f'action="/findings/{finding}/submit-plan"' in page and f'action="/findings/{finding}/assign"' in page
    assert "approve-plan" not in page and "SELECT 1" in page and "运营部经理应立即组织召开专题会议" in page
    data = head.get(f"/api/findings/{finding}").json()
    assert data["id"] == finding and data["severity_label"] == "重大问题"
    assert data["events"] == [{"at": FOUND.isoformat(), "actor": "system", "action": "raised", "from_status": None,
                               "to_status": "open", "note": None, "evidence": None, "channel": "system"}]


# --- a major problem's special meeting and task force, and the other declared forms ---------------

MAJOR_STEPS = {"special-meeting": {"held_on": "2026-11-03", "note": "专题研究夜班排班"},
               "task-force": {"lead": "H1", "members": ["O1", "O2"], "note": "三周内完成整改"}}


def handled(engine: sa.Engine, finding_id: str) -> tuple:
    """The finding's row and events, and its special meeting and task force: what a refusal leaves alone."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(major_handling).where(major_handling.c.finding_id == finding_id)
                           ).mappings().first()
    return snapshot(engine, finding_id), dict(row) if row else None


def refusal(answer) -> str:
    return html.unescape(re.search(r'class="refusal">([^<]*)<', answer.text).group(1))


def test_the_special_meeting_and_task_force_are_the_operations_manager_and_deputys_alone(site):
    from opsaudit.store import lifecycle
    from tests.rectification import directory

    browsers = {person: sign_in(site, person) for person in EVERYONE}
    for action, inputs in MAJOR_STEPS.items():
        for person, browser in browsers.items():
            [finding] = raise_findings(site.engine, [problem(f"{action}-{person}", "major", department="CS1")])
            offered = f'action="/findings/{finding}/{action}"' in browser.get(f"/findings/{finding}").text
            before = handled(site.engine, finding)
            answer = browser.post(f"/findings/{finding}/{action}", data={"csrf_token": csrf(browser), **inputs})
            if person in ("M1", "M2"):
                assert offered and answer.status_code == 303, (action, person, answer.text[:400])
                assert answer.headers["location"] == f"/findings/{finding}"
                with site.engine.connect() as conn:
                    event = events_of(conn, finding, ZONE)[-1]
                    done = lifecycle.major_handling_of(conn, [finding])[finding]
                assert (event["actor"], event["action"], event["channel"]) == (person, action, "web")
                assert event["note"] == inputs["note"] and event["to_status"] == "open"
                if action == "special-meeting":
                    assert (done.meeting_on, done.meeting_note) == (date(2026, 11, 3), inputs["note"])
                else:
                    assert (done.task_force_lead, done.task_force_members) == ("H1", ("H1", "O1", "O2"))
            else:
                assert not offered, (action, person)
                expected = 403 if person in SEES_CS1 else 404
                assert answer.status_code == expected, (action, person, answer.status_code)
                assert handled(site.engine, finding) == before, (action, person)
                if expected == 403:   # the CLI's line, word for word
                    with site.engine.connect() as conn:
                        row = get_finding(conn, finding)
                    step = lifecycle.SPECIAL_MEETING if action == "special-meeting" else lifecycle.TASK_FORCE
                    with pytest.raises(lifecycle.Refused) as refused:
                        lifecycle.check_allowed(row, step, person, directory(site.engine), "zh-CN")
                    assert refusal(answer) == str(refused.value)


def test_a_major_step_is_offered_on_a_major_finding_not_closed_and_checks_what_it_is_sent(site):
    important, major, closed = raise_findings(site.engine, [problem("CS1", "important"),
                                                            problem("CS1B", "major", department="CS1"),
                                                            problem("CS1C", "major", department="CS1")])
    set_status(site.engine, closed, "closed")
    manager, deputy = sign_in(site, "M1"), sign_in(site, "M2")
    token = csrf(manager)
    for finding in (important, closed):
        page = manager.get(f"/findings/{finding}").text
        assert "/special-meeting" not in page and "/task-force" not in page
        before = handled(site.engine, finding)
        for action, inputs in MAJOR_STEPS.items():
            answer = manager.post(f"/findings/{finding}/{action}", data={"csrf_token": token, **inputs})
            assert answer.status_code == 403 and "\n" not in refusal(answer)
        assert handled(site.engine, finding) == before
    page = manager.get(f"/findings/{major}").text
    assert 'type="date" value="2026-11-03" min="2026-11-02" max="2026-11-03" required' in page
    ticks = set(re.findall(r'name="members" value="([^"]+)"', page))
    assert {"H1", "O1", "O2", "M1", "M2", "A1", "A2"} <= ticks and not ticks & {"O3", "H2", "X1", "A3", "E1"}
    before = handled(site.engine, major)
    for action, data, status in (
            ("special-meeting", {"held_on": "2026-11-03"}, 403),                        # no token
            ("special-meeting", {"held_on": "2026-11-03", "csrf_token": csrf(deputy)}, 403),   # another's
            ("special-meeting", {"csrf_token": token}, 400),                            # no day
            ("special-meeting", {"held_on": "03/11/2026", "csrf_token": token}, 400),   # not a day
            ("special-meeting", {"held_on": "2026-11-04", "csrf_token": token}, 403),   # not held yet
            ("task-force", {"members": ["O1"], "csrf_token": token}, 400),              # no lead
            ("task-force", {"lead": "H1", "members": ["X1"], "csrf_token": token}, 403)):   # X1 left
        answer = manager.post(f"/findings/{major}/{action}", data=data)
        assert answer.status_code == status, (data, answer.status_code, answer.text[-600:])
        assert handled(site.engine, major) == before, data
    assert "会议召开日期" in manager.post(f"/findings/{major}/special-meeting", data={"csrf_token": token}).text


def test_the_audit_lead_regrades_and_withdraws_a_finding_by_their_forms(site):
    regraded, withdrawn = raise_findings(site.engine, [problem("CS1", "important"),
                                                       problem("CS1B", "general", department="CS1")])
    lead, manager = sign_in(site, "A1"), sign_in(site, "M1")   # A1: the first auditor of OPS
    page = lead.get(f"/findings/{regraded}").text
    assert f'action="/findings/{regraded}/regrade"' in page and f'action="/findings/{regraded}/withdraw"' in page
    assert '<option value="important" selected>' in page
    assert "/regrade" not in manager.get(f"/findings/{regraded}").text
    before = snapshot(site.engine, regraded)
    for client, data, status in ((manager, {"severity": "major", "note": "影响扩大"}, 403),
                                 (lead, {"severity": "major"}, 400),
                                 (lead, {"severity": "critical", "note": "影响扩大"}, 400)):
        assert client.post(f"/findings/{regraded}/regrade", data={"csrf_token": csrf(client), **data}
                           ).status_code == status, data
        assert snapshot(site.engine, regraded) == before
    answer = lead.post(f"/findings/{regraded}/regrade", data={"csrf_token": csrf(lead), "severity": "major",
                                                                "note": "影响扩大到全部客户"})
    assert answer.status_code == 303
    assert lead.post(f"/findings/{withdrawn}/withdraw", data={"csrf_token": csrf(lead), "note": "数据口径错误"}
                     ).status_code == 303
    with site.engine.connect() as conn:
        assert (get_finding(conn, regraded)["severity"], get_finding(conn, withdrawn)["status"]) == ("major",
                                                                                                      "withdrawn")
        assert [(e["action"], e["channel"]) for e in events_of(conn, regraded, ZONE)[1:]] == [("regrade", "web")]


def test_an_important_findings_plan_asks_for_its_cause_and_prevention(site):
    general, important = raise_findings(site.engine, [problem("CS1", "general"),
                                                      problem("CS1B", "important", department="CS1")])
    head = sign_in(site, "H1")
    assert 'name="cause" rows="2" required' in head.get(f"/findings/{important}").text
    assert 'name="cause" rows="2">' in head.get(f"/findings/{general}").text
    before = snapshot(site.engine, important)
    answer = post_action(head, important, "submit-plan", csrf(head), cause="")
    assert answer.status_code == 400 and "请填写问题原因" in answer.text
    assert snapshot(site.engine, important) == before
    assert post_action(head, general, "submit-plan", csrf(head), cause="", prevention="").status_code == 303
    assert post_action(head, important, "submit-plan", csrf(head)).status_code == 303
    with site.engine.connect() as conn:
        data = events_of(conn, important, ZONE)[-1]["data"]
    assert (data["cause"], data["prevention"]) == (INPUTS["submit-plan"]["cause"], INPUTS["submit-plan"]["prevention"])


def test_an_evidence_file_is_kept_with_its_digest_and_downloaded_from_the_history(site):
    [finding] = raise_findings(site.engine, [problem("CS1", "general")])
    owner = sign_in(site, "O1")
    token = csrf(owner)
    assert post_action(owner, finding, "start", token).status_code == 303
    assert post_action(owner, finding, "submit", token, note="已整改").status_code == 303
    with site.engine.connect() as conn:
        event = events_of(conn, finding, ZONE)[-1]
    content = "已增加夜班。".encode()
    assert event["data"]["evidence_file"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert event["channel"] == "web" and event["os_user"] is None
    page = owner.get(f"/findings/{finding}").text
    link = f"/findings/{finding}/evidence/{event['id']}"
    assert link in page
    download = owner.get(link)
    assert download.status_code == 200 and download.content == content
    assert sign_in(site, "H2").get(link).status_code == 404


def test_an_evidence_file_over_the_limit_is_refused_and_changes_nothing(site, monkeypatch):
    from opsaudit.web.pages import findings as pages

    monkeypatch.setattr(pages, "MAX_EVIDENCE_BYTES", 10)
    [finding] = raise_findings(site.engine, [problem("CS1", "general")])
    set_status(site.engine, finding, "in_progress")
    owner = sign_in(site, "O1")
    before = snapshot(site.engine, finding)
    answer = post_action(owner, finding, "submit", csrf(owner))
    assert answer.status_code == 413
    assert snapshot(site.engine, finding) == before


def test_a_missing_note_is_asked_for_and_changes_nothing(site):
    [finding] = raise_findings(site.engine, [problem("CS1", "important")])
    set_status(site.engine, finding, "plan_submitted")
    manager = sign_in(site, "M1")
    before = snapshot(site.engine, finding)
    answer = post_action(manager, finding, "reject-plan", csrf(manager), note="  ")
    assert answer.status_code == 400 and "请填写说明" in answer.text
    assert snapshot(site.engine, finding) == before


def test_my_work_lists_what_waits_for_me_overdue_first_with_counts(site):
    late, fresh = raise_findings(site.engine, [problem("CS1", "important"), problem("CS1B", "important",
                                                                                    department="CS1")])
    set_status(site.engine, fresh, "plan_submitted")
    with site.engine.begin() as conn:
        from opsaudit.store.schema import findings

        conn.execute(findings.update().where(findings.c.id == late).values(due_at=FOUND - timedelta(days=1)))
        conn.execute(findings.update().where(findings.c.id == fresh).values(status="open"))
    head = sign_in(site, "H1").get("/").text
    assert "待办2项" in head and "其中逾期1项" in head
    assert head.index(late) < head.index(fresh)
    auditor = sign_in(site, "A1").get("/").text
    assert "待办0项" in auditor


def test_the_command_line_records_its_channel_and_the_operating_system_user(site, db_url, monkeypatch):
    import getpass
    import json

    from typer.testing import CliRunner

    from opsaudit.cli import app

    [finding] = raise_findings(site.engine, [problem("CS1", "general")])
    runner = CliRunner()
    assert runner.invoke(app, ["findings", "start", finding, "--actor", "O1"]).exit_code == 0
    shown = runner.invoke(app, ["findings", "show", finding, "--format", "json"])
    events = json.loads(shown.stdout)["events"]
    assert [(e["action"], e["channel"]) for e in events] == [("raised", "system"), ("start", "cli")]
    assert events[-1]["os_user"] == getpass.getuser() and "os_user" not in events[0]
    with site.engine.connect() as conn:
        assert events_of(conn, finding, ZONE)[-1]["os_user"] == getpass.getuser()
    text = runner.invoke(app, ["findings", "show", finding]).stdout
    assert f"（命令行，系统用户{getpass.getuser()}）" in text


# --- reports --------------------------------------------------------------------------------

def draft_report(site: Site, tmp_path) -> str:
    """A finished run whose report waits for the audit lead (A1, the first auditor of OPS)."""
    from opsaudit.reports import review
    from opsaudit.store.roles import load_directory

    [finding] = raise_findings(site.engine, [problem("RPT", "major", department="CS1")], period="2026-08")
    with site.engine.connect() as conn:
        run_id = get_finding(conn, finding)["audit_run_id"]
    html, pdf = tmp_path / "report.zh-CN.html", tmp_path / "report.zh-CN.pdf"
    html.write_text("<html><body><h1>稽查报告</h1></body></html>", encoding="utf-8")
    pdf.write_bytes(b"%PDF-1.4 test")
    settings = load_settings()
    gate = review.Gate(load_directory(settings, settings.load_config()), settings.load_config().recipients, settings)
    with site.engine.begin() as conn:
        review.submit(conn, gate, run_id, "zh-CN", [html, pdf], now=FOUND)
    return run_id


def report_status(site: Site, run_id: str) -> set[str]:
    with site.engine.connect() as conn:
        return set(conn.execute(sa.select(reports.c.status).where(reports.c.audit_run_id == run_id)).scalars())


def test_the_audit_lead_approves_a_report_and_nobody_else_may(site, tmp_path):
    run_id = draft_report(site, tmp_path)
    manager, lead = sign_in(site, "M1"), sign_in(site, "A1")
    assert f"/reports/{run_id}" in lead.get("/").text   # waiting for my review
    page = manager.get(f"/reports/{run_id}")
    assert page.status_code == 200 and "/approve" not in page.text and "report.html" in page.text
    refused = manager.post(f"/reports/{run_id}/approve", data={"csrf_token": csrf(manager)})
    assert refused.status_code == 403 and report_status(site, run_id) == {"draft"}
    assert lead.post(f"/reports/{run_id}/approve", data={"csrf_token": ""}).status_code == 403
    approved = lead.post(f"/reports/{run_id}/approve", data={"csrf_token": csrf(lead), "note": "同意印发"})
    assert approved.status_code == 303
    assert report_status(site, run_id) <= {"approved", "sent"}
    framed = lead.get(f"/reports/{run_id}/report.html")
    assert framed.status_code == 200 and "frame-ancestors 'self'" in framed.headers["content-security-policy"]
    pdf = lead.get(f"/reports/{run_id}/report.pdf")
    assert pdf.content.startswith(b"%PDF") and "attachment" in pdf.headers["content-disposition"]


def test_the_audit_lead_rejects_a_report_with_a_note(site, tmp_path):
    run_id = draft_report(site, tmp_path)
    lead = sign_in(site, "A1")
    assert lead.post(f"/reports/{run_id}/reject", data={"csrf_token": csrf(lead)}).status_code == 403
    assert report_status(site, run_id) == {"draft"}
    answer = lead.post(f"/reports/{run_id}/reject", data={"csrf_token": csrf(lead), "note": "证据不足"})
    assert answer.status_code == 303 and report_status(site, run_id) == {"rejected"}


def test_the_findings_list_filters_pages_and_downloads(site):
    ids = raise_findings(site.engine, [problem(f"T{n}", "general" if n % 2 else "major", department="CS1")
                                       for n in range(60)])
    manager = sign_in(site, "M1")
    first = manager.get("/findings?severity=major")
    assert first.status_code == 200 and "共30条" in first.text
    assert manager.get("/findings?status=nonsense").status_code == 400
    everything = manager.get("/findings").text
    assert "第1页，共2页" in everything
    csv = manager.get("/findings.csv?severity=general")
    assert csv.status_code == 200 and csv.content.startswith("\ufeff".encode())
    assert len(csv.text.strip().splitlines()) == 31
    workbook = manager.get("/findings.xlsx")
    assert workbook.status_code == 200 and workbook.content[:2] == b"PK"
    assert all(i in manager.get("/findings?page=1").text + manager.get("/findings?page=2").text for i in ids)


def test_the_findings_list_filters_by_area_department_run_and_overdue(site):
    raise_findings(site.engine, [problem("CS1", "general"), problem("CS2", "important", owner="O3")])
    second = raise_findings(site.engine, [problem("CS1", "general")], period="2026-09")
    with site.engine.connect() as conn:
        run = get_finding(conn, second[0])["audit_run_id"]
    site.clock.now = FOUND + timedelta(days=20)   # a general problem's 15 days have passed, an important one's 30 not
    manager = sign_in(site, "M1")

    def count(query: str) -> str:
        answer = manager.get(f"/findings?{query}")
        assert answer.status_code == 200, (query, answer.text[:300])
        return re.search(r"共(\d+)条", answer.text).group(1)

    assert count("department=CS2") == "1" and count("department=CS1") == "2"
    assert count(f"audit_run={run[:8]}") == "1" and count("area=customer_service") == "3"
    assert count("area=execution") == "0" and count("overdue=1") == "2"
    assert manager.get("/findings?area=nonsense").status_code == 400


def test_the_scores_page_shows_the_months_scores_to_whom_they_concern(site):
    raise_findings(site.engine, [problem("CS1", "important"), problem("CS2", "general", owner="O3")])
    manager, head = sign_in(site, "M1"), sign_in(site, "H1")
    page = manager.get("/scores?period=2026-10")
    assert page.status_code == 200 and "2026年10月" in page.text
    scores = dict(re.findall(r'<tr class="department"><td>(\S+?)[（<].*?<td class="num">(\d+)</td>', page.text, re.S))
    assert scores["客服一部"] == "97" and scores["客服二部"] == "99"   # 100, less 3 and 1 (thresholds.yaml)
    own = head.get("/scores?period=2026-10").text
    assert "客服一部" in own and "客服二部" not in own
    for period in ("2026-13", "1900-01"):
        refused = manager.get(f"/scores?period={period}")
        assert refused.status_code == 400 and "<main" in refused.text, period


# --- sign-in limits shared by every process on the store ---------------------------------------

def test_two_servers_on_one_store_share_the_sign_in_limits(site, db_url, monkeypatch):
    other = make_site(site.engine, db_url, monkeypatch, clock=site.clock)
    first, second = site.client(), other.client()
    answers = [ask_link(first if n % 2 else second, email("O1")).status_code for n in range(6)]
    assert answers == [200] * 5 + [429]
    site.clock.now += timedelta(minutes=15)   # the window has passed: the requests counted are deleted
    assert ask_link(second, email("O1")).status_code == 200
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(web_login_requests)).scalar_one() == 1


def test_behind_a_trusted_proxy_each_person_is_limited_by_their_own_address(site, db_url, monkeypatch):
    """Every request reaches the server from the company's proxy: the limit per client is of the
    address it forwards for, and a forwarded address from anyone else is not believed."""
    proxied = make_site(site.engine, db_url, monkeypatch, clock=site.clock,
                        OPSAUDIT_WEB_TRUSTED_PROXIES="10.0.0.0/8")

    def asked(peer: str, forwarded: str, address: str) -> int:
        client = TestClient(proxied.app, follow_redirects=False, client=(peer, 5000))
        token = form_token(client, "/login")
        return client.post("/login", data={"email": address, "csrf_token": token},
                           headers={"X-Forwarded-For": forwarded}).status_code

    people = [asked("10.0.0.2", f"192.168.1.{n}, 10.0.0.9", f"p{n}@example.com") for n in range(25)]
    assert people == [200] * 25   # 25 people behind one proxy: none limited by the others
    one = [asked("10.0.0.2", "192.168.2.1", f"q{n}@example.com") for n in range(21)]
    assert one == [200] * 20 + [429]   # one of them asking too often is
    spoofed = [asked("172.16.0.5", f"192.168.3.{n}", f"r{n}@example.com") for n in range(21)]
    assert spoofed == [200] * 20 + [429]   # an untrusted peer's forwarded address is its own word


def test_requests_at_the_same_moment_are_counted_one_by_one(site):
    """Twelve requests for one address at once, each on its own connection as separate servers send
    them: exactly the limit is let through, none fails, and only those are kept."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from opsaudit.web.sessions import PER_ADDRESS, allow_link_request

    start = Barrier(12)

    def request(n: int) -> bool:
        start.wait()
        with site.engine.begin() as conn:
            return allow_link_request(conn, email("O1"), f"10.0.0.{n}", site.clock.now)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(request, range(12)))
    assert answers.count(True) == PER_ADDRESS
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(web_login_requests)).scalar_one() == PER_ADDRESS


def test_an_unknown_address_is_limited_exactly_like_a_known_one(site):
    browser = site.client()
    known = [ask_link(browser, email("O1")) for _ in range(6)]
    unknown = [ask_link(browser, "nobody@example.com") for _ in range(6)]
    assert [a.status_code for a in known] == [a.status_code for a in unknown] == [200] * 5 + [429]
    assert [a.text for a in known] == [a.text for a in unknown]
    with site.engine.connect() as conn:
        kept = conn.execute(sa.select(web_login_requests.c.address_hash)).scalars().all()
    assert sorted(kept) == sorted([hashlib.sha256(email("O1").encode()).hexdigest()] * 5 +
                                  [hashlib.sha256(b"nobody@example.com").hexdigest()] * 5)   # never the address


# --- a problem an auditor records by hand (findings add) ----------------------------------------

AUDITORS = {"A1", "A2"}
MANUAL = {"area": "execution", "department": "CS1", "severity": "important", "title": "现场检查发现交接班记录缺失",
          "description": "11月2日现场检查，客服一部夜班交接班记录连续三天未填写。"}


def store_state(engine: sa.Engine) -> tuple[int, ...]:
    """How many findings, events, runs and messages the store holds: what a refusal leaves alone."""
    from opsaudit.store.schema import audit_runs, finding_events, findings

    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                     for table in (findings, finding_events, audit_runs, outbox))


def kept_evidence(tmp_path) -> set[str]:
    folder = tmp_path / "data" / "evidence"
    return {str(path.relative_to(folder)) for path in folder.rglob("*")} if folder.exists() else set()


def record(client: TestClient, token: str, files: list | None = None, **changes: str):
    return client.post("/findings/new", data={"csrf_token": token, **MANUAL, **changes}, files=files)


def test_only_an_auditor_of_the_operations_department_may_record_a_problem(site):
    from opsaudit.manual import ManualFinding, record_manual_finding
    from opsaudit.store import lifecycle
    from tests.rectification import directory

    people = directory(site.engine)
    for person in (*EVERYONE, "E2"):
        browser = sign_in(site, person)
        before = store_state(site.engine)   # the sign-in mail is in the outbox
        listed = browser.get("/findings").text
        page = browser.get("/findings/new")
        answer = record(browser, csrf(browser), entity_type="task", entity_id=f"TSK-{person}")
        if person in AUDITORS:
            assert 'href="/findings/new"' in listed and page.status_code == 200, person
            assert answer.status_code == 303, (person, answer.text[-400:])
            continue
        assert 'href="/findings/new"' not in listed and (page.status_code, answer.status_code) == (403, 403), person
        # The command line's line, word for word, on the page and in the answer to the form.
        with site.engine.connect() as conn, pytest.raises(lifecycle.Refused) as refused:
            record_manual_finding(conn, ManualFinding(person, **MANUAL), people, deadlines=Deadlines(),
                                  config_hash="test", now=site.clock.now, zone=ZONE)
        assert refusal(page) == refusal(answer) == str(refused.value), person
        assert store_state(site.engine) == before, person
    with site.engine.connect() as conn:
        events = conn.execute(sa.select(finding_events.c.actor, finding_events.c.channel, finding_events.c.os_user)
                              .where(finding_events.c.action == "raised")).all()
    assert sorted(events) == [("A1", "web", None), ("A2", "web", None)]


def test_a_problem_is_recorded_only_with_the_sessions_token_and_what_it_needs(site, tmp_path):
    auditor, other = sign_in(site, "A2"), sign_in(site, "H1")
    token = csrf(auditor)
    before = store_state(site.engine)
    upload = [("files", ("记录.txt", "交接班记录空白".encode(), "text/plain"))]
    for data, files, status, words in (
            ({"csrf_token": ""}, upload, 403, "表单已失效"),
            ({"csrf_token": csrf(other)}, upload, 403, "表单已失效"),
            ({"title": "  "}, upload, 400, "请填写问题（一句话）。"),
            ({"description": ""}, None, 400, "请填写问题描述。"),
            ({"severity": "critical"}, None, 400, "问题等级“critical”无效。"),
            ({"links": "/etc/passwd"}, None, 400, "证明材料网址“/etc/passwd”无效。"),
            ({"entity_type": "task"}, upload, 400, "须同时给出"),                  # the store refuses
            ({"department": "CS9"}, upload, 400, "部门表中没有部门CS9。")):
        answer = auditor.post("/findings/new", data={"csrf_token": token, **MANUAL, **data}, files=files)
        assert answer.status_code == status and words in refusal(answer), (data, answer.status_code, refusal(answer))
        assert store_state(site.engine) == before and kept_evidence(tmp_path) == set(), data
        if status == 400:   # the form again, with what was typed in
            assert 'action="/findings/new"' in answer.text and '<option value="execution" selected>' in answer.text


def test_an_auditor_records_a_major_problem_with_evidence_files_and_links_and_it_is_alerted(mailbox, site):
    auditor = sign_in(site, "A2")
    files = [("files", ("现场照片.jpg", b"\xff\xd8\xff photo", "image/jpeg")),
             ("files", ("访谈记录.txt", "夜班组长：记录本丢失。".encode(), "text/plain"))]
    links = "https://wiki.example.com/visit/12\n\nhttps://wiki.example.com/visit/13"
    answer = record(auditor, csrf(auditor), files, severity="major", entity_type="task", entity_id="TSK-00001",
                    links=links)
    assert answer.status_code == 303
    finding = answer.headers["location"].removeprefix("/findings/")
    with site.engine.connect() as conn:
        row = get_finding(conn, finding)
        [event] = events_of(conn, finding, ZONE)
    assert (row["rule_id"], row["audit"], row["severity"], row["owner_id"], row["status"]) == (
        "manual", "manual", "major", "H1", "open")
    assert (row["entity_type"], row["entity_id"], row["title"]) == ("task", "TSK-00001", MANUAL["title"])
    assert (event["actor"], event["action"], event["channel"], event["os_user"]) == ("A2", "raised", "web", None)
    attachments = row["evidence"]["attachments"]
    assert [a["evidence"] for a in attachments[2:]] == links.split("\n\n")
    page = auditor.get(f"/findings/{finding}").text
    assert ">manual<" in page and MANUAL["title"] in page and 'href="https://wiki.example.com/visit/13"' in page
    for number, (_, (name, content, _)) in enumerate(files):
        assert attachments[number]["sha256"] == hashlib.sha256(content).hexdigest()
        assert attachments[number]["bytes"] == len(content)
        assert f"/findings/{finding}/attachments/{number}" in page and name in page
        download = auditor.get(f"/findings/{finding}/attachments/{number}")
        assert download.status_code == 200 and download.content == content
    assert auditor.get(f"/findings/{finding}/attachments/2").status_code == 404   # a link: nothing to download
    assert sign_in(site, "H2").get(f"/findings/{finding}/attachments/0").status_code == 404
    # Alerted at once, as `findings add` alerts it, through the real SMTP server (beside the sign-in mails).
    deadline = time.monotonic() + 20
    while not (alerts := [n for n, mail in enumerate(mailbox.received) if mail["Subject"].startswith("重大问题")]):
        assert time.monotonic() < deadline, "no alert arrived"
        time.sleep(0.1)
    [number] = alerts
    assert mailbox.received[number]["Subject"] == f"重大问题：{MANUAL['title']}（TSK-00001）"
    assert set(mailbox.envelopes[number].rcpt_tos) == {email(staff_id) for staff_id in ("M1", "M2", "H1", "E1", "E2")}

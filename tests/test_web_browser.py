"""The web in a real browser (headless Chromium through Selenium): a major finding from the
department head's sign-in mail, received by a real SMTP server, to its closing by an auditor, who
then records a problem found on site from a phone. WEB_SCREENSHOTS=<folder> also takes the
README's pictures (1366×900 and 390×844)."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from opsaudit.store.finding_views import events_of, get_finding
from tests.rectification import ZONE, company, email, problem, raise_findings
from tests.smtp import free_port
from tests.test_web import draft_report, make_site, report_status

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver "
                                                                  "(apt install chromium chromium-driver)")


@pytest.fixture
def db_url(tmp_path) -> str:
    """One database is enough for the browser: the store's behaviour on both is tests/test_web.py's."""
    return f"sqlite:///{tmp_path / 'ops.db'}"


@pytest.fixture
def server(engine, db_url, monkeypatch, mailbox):
    """`opsaudit web` on a free port, sending its mail to the test SMTP server."""
    import uvicorn

    from opsaudit.store.times import utcnow

    company(engine)
    port = free_port()
    monkeypatch.setenv("OPSAUDIT_WEB_URL", f"http://127.0.0.1:{port}")
    site = make_site(engine, db_url, monkeypatch, clock=utcnow)
    instance = uvicorn.Server(uvicorn.Config(site.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    while not instance.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", site
    instance.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=zh-CN",
                     "--window-size=1366,900", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def replaced(element):
    """A wait's condition: the page holding `element` has been replaced by the next one. Chromium
    tells a node of an unloaded page either as stale or as not belonging to the document."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def check(_driver) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" not in str(error):
                raise
            return True
        return False

    return check


# What "my work" is headed in each language.
MY_WORK = {"zh-CN": "我的待办", "en": "My work"}


def sign_in(driver, base: str, mailbox, staff_id: str, language: str = "zh-CN") -> None:
    """As that person: ask for the link, take it from the mail the SMTP server received, follow it;
    then, for English, choose it on the page as a person does."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()
    before = len(mailbox.received)
    driver.get(f"{base}/login")
    driver.find_element(By.NAME, "email").send_keys(email(staff_id))
    form = driver.find_element(By.CSS_SELECTOR, "form[action='/login']")
    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(driver, 20).until(replaced(form))
    assert "请查收邮件" in driver.page_source
    deadline = time.monotonic() + 20
    while not (mine := [m for m in mailbox.received[before:] if m["To"].addresses[0].addr_spec == email(staff_id)
                        and "/login/" in m.get_body(("plain",)).get_content()]):
        assert time.monotonic() < deadline, "no sign-in mail arrived"
        time.sleep(0.1)
    link = re.search(r"(http://\S+/login/\S+)", mine[-1].get_body(("plain",)).get_content()).group(1)
    driver.get(link)
    assert MY_WORK["zh-CN"] in driver.page_source
    if language != "zh-CN":
        switch = driver.find_element(By.CSS_SELECTOR, f"form[action='/language'] button[value='{language}']")
        switch.click()
        WebDriverWait(driver, 20).until(replaced(switch))
        assert MY_WORK[language] in driver.page_source


def act(driver, base: str, finding: str, action: str, **fields: str | list[str]) -> None:
    """Fill in and send the action's form on the finding's page: a text typed in, a list's values
    ticked among the field's boxes."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/findings/{finding}")
    form = driver.find_element(By.CSS_SELECTOR, f"form[action='/findings/{finding}/{action}']")
    for name, value in fields.items():
        if isinstance(value, list):
            for one in value:
                form.find_element(By.CSS_SELECTOR, f"input[name='{name}'][value='{one}']").click()
        else:
            form.find_element(By.NAME, name).send_keys(value)
    # Usable at the width of the window: nothing wider than the page.
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 20).until(replaced(form))   # the 303 back to the finding has loaded
    assert driver.current_url.rstrip("/") == f"{base}/findings/{finding}", driver.page_source[:500]


def approve_report(driver, base: str, run_id: str, note: str) -> None:
    """As the audit lead on the report's page: a note, then approve and issue it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/reports/{run_id}")
    form = driver.find_element(By.CSS_SELECTOR, f"form[action='/reports/{run_id}/approve']")
    form.find_element(By.NAME, "note").send_keys(note)
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 20).until(replaced(form))
    assert driver.current_url.rstrip("/") == f"{base}/reports/{run_id}", driver.page_source[:500]


def record_by_hand(driver, base: str, **fields: str) -> str:
    """As an auditor, from the findings list: the form of a problem found by hand filled in (a
    list's option picked by its value, a text typed in) and sent; the new finding's id."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(f"{base}/findings")
    driver.find_element(By.CSS_SELECTOR, "a[href='/findings/new']").click()
    form = driver.find_element(By.CSS_SELECTOR, "form[action='/findings/new']")
    for name, value in fields.items():
        field = form.find_element(By.NAME, name)
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        else:
            field.send_keys(value)
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 20).until(replaced(form))
    assert re.fullmatch(rf"{base}/findings/[0-9a-f-]{{36}}", driver.current_url), driver.page_source[:500]
    return driver.current_url.rsplit("/", 1)[-1]


def alert_link(site, mailbox, finding: str, staff_id: str) -> str:
    """The major problem's alert, mailed through the outbox to the SMTP server as an audit sends it;
    the link to the finding in the mail `staff_id` received."""
    from opsaudit.config.models import Recipients
    from opsaudit.reports.alerts import alert_major_findings
    from opsaudit.reports.delivery import deliver_pending
    from opsaudit.settings import load_settings
    from opsaudit.store.roles import load_directory
    from opsaudit.store.times import utcnow

    settings = load_settings()
    with site.engine.begin() as conn:
        run_id = get_finding(conn, finding)["audit_run_id"]
        alert_major_findings(conn, load_directory(settings, settings.load_config()), Recipients(), run_id,
                             deadlines=settings.load_config().thresholds.deadlines, language="zh-CN", zone=ZONE,
                             now=utcnow(), settings=settings)
    deliver_pending(site.engine, settings)
    [alert] = [m for m in mailbox.received if m["To"] and email(staff_id) in str(m["To"])
               and f"/findings/{finding}" in m.get_body(("plain",)).get_content()]
    return re.search(rf"(http://\S+/findings/{finding})", alert.get_body(("plain",)).get_content()).group(1)


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_a_major_finding_goes_from_the_heads_mail_to_closed_in_a_browser(server, browser, mailbox, tmp_path,
                                                                        language):
    base, site = server
    [finding] = raise_findings(site.engine, [problem("CS1", "major")])
    plan = tmp_path / "整改方案.txt"
    plan.write_text("增加夜班人手，11月底前完成。", encoding="utf-8")
    proof = tmp_path / "整改结果.txt"
    proof.write_text("满意率已回升至92%。", encoding="utf-8")

    link = alert_link(site, mailbox, finding, "H1")   # the head follows the alert's link: sign in first
    browser.delete_all_cookies()
    browser.set_window_size(390, 844)   # department heads read their mail on a phone
    browser.get(link)
    assert browser.current_url.startswith(f"{base}/login")
    sign_in(browser, base, mailbox, "H1", language)
    assert finding in browser.page_source   # my work: the plan to write
    browser.get(link)
    assert browser.find_elements("css selector", f"form[action='/findings/{finding}/submit-plan']")
    act(browser, base, finding, "submit-plan", note="增加夜班", cause="夜班人手不足",
        prevention="每月复核排班", evidence=str(plan))
    sign_in(browser, base, mailbox, "M1", language)   # the operations manager approves on a phone too
    act(browser, base, finding, "approve-plan", note="同意")
    act(browser, base, finding, "special-meeting", note="专题研究夜班排班")
    act(browser, base, finding, "task-force", lead="H1", members=["O1", "O2"])
    browser.set_window_size(1366, 900)
    sign_in(browser, base, mailbox, "H1", language)
    act(browser, base, finding, "start")
    act(browser, base, finding, "submit", note="已整改", evidence=str(proof))
    sign_in(browser, base, mailbox, "A1", language)
    act(browser, base, finding, "verify")
    act(browser, base, finding, "close")
    assert browser.find_element("css selector", "html").get_attribute("lang") == language

    with site.engine.connect() as conn:
        assert get_finding(conn, finding)["status"] == "closed"
        events = events_of(conn, finding, ZONE)
    assert [(e["action"], e["actor"], e["channel"]) for e in events[1:]] == [
        ("submit-plan", "H1", "web"), ("approve-plan", "M1", "web"), ("special-meeting", "M1", "web"),
        ("task-force", "M1", "web"), ("start", "H1", "web"),
        ("submit", "H1", "web"), ("verify", "A1", "web"), ("close", "A1", "web")]
    assert events[1]["data"]["evidence_file"]["bytes"] == plan.stat().st_size
    assert events[4]["data"] == {"lead": "H1", "members": ["H1", "O1", "O2"]}
    assert "整改结果.txt" in browser.page_source   # downloadable from the history
    run_id = draft_report(site, tmp_path)   # and the audit lead approves a report in the browser
    approve_report(browser, base, run_id, note="同意印发")
    assert report_status(site, run_id) in ({"approved"}, {"sent"})   # sent: mailed to the managers already
    photo = tmp_path / "现场照片.txt"
    photo.write_text("交接班记录本空白三页。", encoding="utf-8")
    browser.set_window_size(390, 844)
    manual = record_by_hand(browser, base, title="交接班记录缺失", area="execution", department="CS1",
                            severity="important", description="现场检查发现夜班交接班记录连续三天未填写。",
                            files=str(photo), links="https://wiki.example.com/visit/12")
    with site.engine.connect() as conn:
        row = get_finding(conn, manual)
        [raised] = events_of(conn, manual, ZONE)
    assert (row["rule_id"], row["severity"], row["owner_id"], raised["actor"], raised["channel"]) == (
        "manual", "important", "H1", "A1", "web")
    assert [a["evidence"].rsplit("/", 1)[-1] for a in row["evidence"]["attachments"]] == [
        "现场照片.txt", "12"]
    folder = os.environ.get("WEB_SCREENSHOTS")
    if folder and language == "zh-CN":
        screenshots(browser, base, mailbox, site, Path(folder), tmp_path)


def screenshots(driver, base: str, mailbox, site, folder: Path, tmp_path: Path) -> None:
    """`/` and a finding as the head of its department sees them, and a report page as the audit
    lead does, at a laptop's and a phone's width."""
    findings = raise_findings(site.engine, [problem("CS1", "major"), problem("CS1B", "important", department="CS1",
                                                                             owner="O2")], period="2026-09")
    run_id = draft_report(site, tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for person, pages in (("H1", (("work", "/"), ("finding", f"/findings/{findings[0]}"))),
                          ("A1", (("report", f"/reports/{run_id}"),))):
        sign_in(driver, base, mailbox, person)
        for width, height, name in ((1366, 900, "desktop"), (390, 844, "phone")):
            driver.set_window_size(width, height)
            for page, path in pages:
                driver.get(base + path)
                driver.save_screenshot(str(folder / f"web-{page}-{name}.png"))

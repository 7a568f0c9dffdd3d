"""A hostile user's inputs (issue 19, item 8): each is refused at once in one line naming what is
wrong, instead of being accepted silently or failing later with an unexpected error."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from opsaudit.config.loader import load_config
from opsaudit.config.models import Scoring
from opsaudit.errors import ConfigError, InputError, UsageError
from opsaudit.i18n import text
from opsaudit.scores import scores_for
from opsaudit.settings import load_settings
from opsaudit.store import lifecycle
from opsaudit.store.lifecycle import Refused, Request, perform
from opsaudit.store.roles import load_directory
from tests.rectification import FOUND, ZONE, company, directory, problem, raise_findings
from tests.terminal import error_line

NOW = datetime(2026, 11, 5, 12, tzinfo=ZONE)


def opsaudit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120,
                          env=env)


@pytest.fixture
def store(engine):
    company(engine)
    return engine


# --- scores of a month never audited -------------------------------------------------------------

def test_scores_of_a_month_no_audit_covered_are_refused_naming_the_audited_months(store):
    raise_findings(store, [problem("CS1")], period="2026-08")
    raise_findings(store, [problem("CS2")], period="2026-10")
    with store.connect() as conn:
        assert scores_for(conn, "2026-10", scoring=Scoring(), zone=ZONE, now=NOW)
        for label in ("1900-01", "2026-09"):
            with pytest.raises(UsageError) as refused:
                scores_for(conn, label, scoring=Scoring(), zone=ZONE, now=NOW, language="en")
            assert str(refused.value) == text("validation.scores.not_audited", "en", option="--period", period=label,
                                              first="2026-08", last="2026-10")


def test_scores_before_any_audit_say_so(store):
    with store.connect() as conn, pytest.raises(UsageError, match="no audit has run yet"):
        scores_for(conn, "2026-10", scoring=Scoring(), zone=ZONE, now=NOW, language="en")


def test_opsaudit_scores_refuses_an_empty_or_unaudited_period_in_one_line(store, db_url):
    raise_findings(store, [problem("CS1")], period="2026-10")
    env = {**os.environ, "OPSAUDIT_DATABASE_URL": db_url, "OPSAUDIT_LANGUAGE": "en"}
    for period, message in (("", "--period: is empty (expected one of 2026, 2026Q4"),
                            ("1900-01", "--period 1900-01: no audit covered this month; audited months run from "
                                        "2026-10 to 2026-10")):
        result = opsaudit("scores", "--period", period, env=env)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(error_line(message, "en")) and result.stderr.count("\n") == 1
        assert result.stdout == ""


# --- a special meeting's date --------------------------------------------------------------------

@pytest.mark.parametrize(("held_on", "key"), [(date(1999, 1, 1), "meeting_before_found"),
                                              (date(2099, 12, 31), "meeting_in_future")])
def test_a_special_meeting_before_the_finding_or_in_the_future_is_refused(store, held_on, key):
    [major] = raise_findings(store, [problem("CS1", "major")], found_at=FOUND)
    people = directory(store)
    with store.begin() as conn, pytest.raises(Refused) as refused:
        lifecycle.record_special_meeting(conn, major, actor="M1", held_on=held_on, note=None, directory=people,
                                         now=NOW)
    assert refused.value.key == key
    with store.begin() as conn:   # the day it was found and today are both fine
        for day in (FOUND.date(), NOW.date()):
            handling = lifecycle.record_special_meeting(conn, major, actor="M1", held_on=day, note=None,
                                                        directory=people, now=NOW)
            assert handling.meeting_on == day


# --- evidence that is not a file -----------------------------------------------------------------

def test_evidence_that_is_a_device_a_pipe_or_a_folder_is_refused_at_once(store, tmp_path):
    [finding] = raise_findings(store, [problem("CS1")], found_at=FOUND)
    people = directory(store)
    with store.begin() as conn:
        perform(conn, finding, Request("start", "O1"), people, now=FOUND)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for given in ("/dev/zero", str(fifo), str(tmp_path)):
        with store.begin() as conn, pytest.raises(InputError) as refused:
            perform(conn, finding, Request("submit", "O1", evidence=given), people, now=FOUND, language="en")
        assert str(refused.value) == text("validation.evidence.not_a_file", "en", option="--evidence", given=given)
    proof = tmp_path / "proof.pdf"
    proof.write_bytes(b"%PDF-1.4 proof")
    with store.begin() as conn:
        done = perform(conn, finding, Request("submit", "O1", evidence=str(proof)), people, now=FOUND)
    assert done.to_status == "submitted"


# --- the audit lead ------------------------------------------------------------------------------

@pytest.mark.parametrize("lead", ["H1", "M1"])
def test_an_audit_lead_who_is_not_an_auditor_of_operations_is_refused_when_the_directory_loads(store, db_url,
                                                                                               monkeypatch, lead):
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)
    monkeypatch.setenv("OPSAUDIT_AUDIT_LEAD", lead)
    settings = load_settings()
    with pytest.raises(ConfigError) as refused:
        load_directory(settings, settings.load_config())
    message = str(refused.value)
    assert message.startswith("环境变量OPSAUDIT_AUDIT_LEAD：") and lead in message and "\n" not in message
    monkeypatch.setenv("OPSAUDIT_AUDIT_LEAD", "A2")
    settings = load_settings()
    assert load_directory(settings, settings.load_config()).audit_lead().staff_id == "A2"


# --- the audit calendar --------------------------------------------------------------------------

@pytest.mark.parametrize(("yaml", "message"), [
    ("audits:\n  cs-monthly:\n    period: week\n",
     "audits.yaml：audits.cs-monthly.period：cs-monthly按月稽查，不能按周；请写作period: month"),
    ("audits:\n  planning-quarterly:\n    period: month\n",
     "audits.yaml：audits.planning-quarterly.period：planning-quarterly按季度稽查，不能按月"),
    ("audits:\n  cs-monthly:\n    cron: '0 8 31 2 *'\n",
     "audits.yaml：audits.cs-monthly.cron：“0 8 31 2 *”永远不会触发：没有日期同时符合其中的日和月"),
    ("rectification_tracking:\n  cron: '0 8 30 2 *'\n",
     "audits.yaml：rectification_tracking.cron：“0 8 30 2 *”永远不会触发"),
], ids=["week for a monthly audit", "month for a quarterly audit", "31 February", "30 February"])
def test_an_audit_calendar_that_cannot_work_is_refused_naming_file_and_key(tmp_path, yaml, message):
    folder = tmp_path / "config"
    (folder / "audits.yaml").write_text(yaml, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(folder)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert Path(str(refused.value).split("：")[0]).name == "audits.yaml"


def test_leap_day_cron_still_validates(tmp_path):
    folder = tmp_path / "config"
    (folder / "audits.yaml").write_text("circulation:\n  cron: '0 12 29 2 *'\n", encoding="utf-8")
    assert load_config(folder).audits.circulation.cron == "0 12 29 2 *"

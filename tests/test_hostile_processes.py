"""A hostile environment (issue 19, item 8): an unreachable Prefect API, a store that cannot be
written, and a `serve` killed with SIGKILL while it runs an audit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from opsaudit.db import check_reachable, create_engine, source_engine
from opsaudit.errors import StoreError
from opsaudit.flows.server import PrefectServerError, free_port, prefect_api


def test_an_unreachable_prefect_api_url_is_one_line_naming_it(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/api"
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", url)
    monkeypatch.setenv("OPSAUDIT_LANGUAGE", "en")
    # The setting, not only the variable: the suite's shared Prefect harness sets the setting.
    with temporary_settings(updates={PREFECT_API_URL: url}), pytest.raises(PrefectServerError) as refused, \
            prefect_api():
        pass
    message = str(refused.value)
    assert message.startswith(f"PREFECT_API_URL {url}: the Prefect API does not answer (") and "\n" not in message


def test_a_store_that_sqlite_opens_read_only_says_it_is_not_writable(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_LANGUAGE", "en")
    path = tmp_path / "store.db"
    sa.create_engine(f"sqlite:///{path}").connect().close()
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", purpose="store", create=False)
    with pytest.raises(StoreError) as refused:
        check_reachable(engine, purpose="store")
    assert str(refused.value).startswith("audit store: ") and "is not writable (attempt to write a readonly database)" \
        in str(refused.value) and "OPSAUDIT_STORE_URL" in str(refused.value)
    assert refused.value.text("zh-CN").startswith("稽查数据库：")


def test_a_source_on_a_read_only_mount_is_opened_immutable(tmp_path, monkeypatch):
    """A WAL database on a read-only mount cannot create the index file readers need: SQLite opens
    it only as immutable, which it is there."""
    path = tmp_path / "ops.db"
    sa.create_engine(f"sqlite:///{path}").connect().close()
    assert "immutable" not in str(source_engine(f"sqlite:///{path}", timezone="UTC").url)
    monkeypatch.setattr("opsaudit.db._unwritable", lambda _path: True)
    engine = source_engine(f"sqlite:///{path}", timezone="UTC")
    assert engine.url.query["immutable"] == "1" and engine.url.query["mode"] == "ro"
    check_reachable(engine, purpose="database")


# The flow run process as serve's runner starts it: its parent's pid in OPSAUDIT_SERVE_PID, then
# the flows package imported (every flow module is in it). `ignore` makes it deaf to SIGTERM, as a
# run busy in a C extension would be, so that only the watchdog can end it.
CHILD = """
import signal, sys, time
import opsaudit.flows.server as server
server.ORPHAN_GRACE_SECONDS = 1
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
import opsaudit.flows
print("ready", flush=True)
time.sleep(120)
"""
SERVE = """
import os, subprocess, sys, time
env = {**os.environ, "OPSAUDIT_SERVE_PID": str(os.getpid())}
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], env=env, stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("child", ["plain", "ignore"])
def test_a_run_started_by_serve_dies_when_serve_is_killed(child):
    serve = subprocess.Popen([sys.executable, "-c", SERVE, CHILD, child], stdout=subprocess.PIPE, text=True)
    try:
        run = int(serve.stdout.readline())
        assert Path(f"/proc/{run}").exists()
        serve.send_signal(signal.SIGKILL)
        serve.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(run):
            time.sleep(0.2)
        assert not _alive(run), "the run outlived its serve"
    finally:
        serve.kill()


def test_a_process_not_started_by_serve_is_left_alone():
    env = {**os.environ, "OPSAUDIT_SERVE_PID": "1"}
    result = subprocess.run([sys.executable, "-c", "import opsaudit.flows, threading; "
                             "print(sorted(t.name for t in threading.enumerate()))"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "die-with-serve" not in result.stdout, result.stderr


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by init, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


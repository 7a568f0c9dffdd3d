"""The Prefect API a command runs against: the server PREFECT_API_URL names, or a local one that
this process starts and that ends with it.

Prefect's own temporary server outlives a parent killed with SIGKILL and gives up after 20 s on a
busy machine. This one is started with the kernel's parent-death signal, so it never outlives
opsaudit, and gets a start-up timeout suited to a loaded two-core machine.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

from opsaudit.errors import OpsauditError

DEFAULT_STARTUP_TIMEOUT = 180.0
_PR_SET_PDEATHSIG = 1
# Set by `opsaudit serve` for the flow run processes its runner starts (see die_with_server).
SERVE_PID = "OPSAUDIT_SERVE_PID"
# After `serve` is gone: time for a run told to stop to record itself interrupted, before it is killed.
ORPHAN_GRACE_SECONDS = 15.0


class PrefectServerError(OpsauditError):
    """The local Prefect server could not be started."""


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment or the active Prefect profile, if any."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies, however it dies (Linux)."""
    # Not Linux: no such call; the `finally` of local_server still covers every ordinary exit.
    with suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_server() -> None:
    """In a flow run process that `opsaudit serve` started: end when serve ends, however it ends.

    Killed with SIGKILL, serve can tell its runs nothing, and a run left running keeps its period
    locked and retries a Prefect API that is gone. So the run gets SIGTERM from the kernel when
    serve dies (the flow records its audit run interrupted), and a watchdog kills it if it is still
    there after a grace period: its run, still `running` with a dead process, is then marked
    abandoned by the next run. Anywhere else (a command's own flow, serve itself) this does nothing.
    """
    server = os.environ.get(SERVE_PID, "")
    if not server.isdigit() or os.getppid() != int(server):
        return
    _die_with_parent()
    threading.Thread(target=_kill_when_orphaned, args=(int(server),), name="die-with-serve", daemon=True).start()


def _kill_when_orphaned(parent: int) -> None:
    """Watch the parent; once it is gone (this process adopted), wait the grace period, then SIGKILL."""
    while os.getppid() == parent:
        time.sleep(1)
    time.sleep(ORPHAN_GRACE_SECONDS)
    os.kill(os.getpid(), signal.SIGKILL)


def startup_timeout() -> float:
    """Prefect's own setting when the user set it, otherwise a generous default."""
    value = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
    try:
        return float(value) if value else DEFAULT_STARTUP_TIMEOUT
    except ValueError:
        return DEFAULT_STARTUP_TIMEOUT


def _server_command(port: int) -> list[str]:
    import prefect

    return [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).resolve().parent.parent),
            "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "error", "--lifespan", "on"]


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, timeout: float, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise PrefectServerError(f"Prefect server on {url} exited with status {process.returncode}: "
                                         f"{tail[0]}")
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise PrefectServerError(f"Prefect server on {url} did not answer within {timeout:.0f} s "
                             "(set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS to wait longer)")


@contextmanager
def local_server(*, port: int | None = None, full: bool = False, timeout: float | None = None) -> Iterator[str]:
    """Start a Prefect server on 127.0.0.1 and yield its API URL; it stops when the block ends.

    `full`: the UI and every background service (scheduler included), as `opsaudit serve` needs;
    otherwise the light server a single run needs.
    """
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_UI_ENABLED": "1" if full else "0",
           "PREFECT_UI_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    if not full:
        env["PREFECT__SERVER_EPHEMERAL"] = "1"
    with tempfile.NamedTemporaryFile(prefix="opsaudit-prefect-", suffix=".log", delete=False) as handle:
        log = Path(handle.name)
    with log.open("wb") as output:
        process = subprocess.Popen(_server_command(port), env=env, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    try:
        _wait_until_healthy(process, url, timeout or startup_timeout(), log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.unlink(missing_ok=True)


def check_api(url: str) -> None:
    """PREFECT_API_URL answers, or one line naming it: every flow would fail later in Prefect's
    client with a bare RuntimeError. Only the connection counts: a server that answers /health
    with an error (a cloud workspace wanting a key) still is there."""
    import httpx

    from opsaudit.i18n import resolve_language, text

    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10)
    except httpx.TransportError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PrefectServerError(text("validation.prefect.unreachable", resolve_language(None),
                                      setting="PREFECT_API_URL", product="Prefect", url=url,
                                      reason=reason)) from None


def _import_great_expectations() -> None:
    from opsaudit.checks.quality_gx import import_great_expectations

    import_great_expectations()


@contextmanager
def prefect_api(*, port: int | None = None, full: bool = False) -> Iterator[str]:
    """The API to run flows against: PREFECT_API_URL when set, else a local server for this block.

    Great Expectations takes seconds to import: it is imported while the local server starts,
    instead of after, in the audit's first data-quality step. The import is joined before the
    block runs, so no two threads ever import at once.
    """
    configured = configured_api_url()
    if configured:
        check_api(configured)
        yield configured
        return
    import httpx  # noqa: F401 - the health checks' import, done before the other thread starts
    from prefect.settings import PREFECT_API_URL, temporary_settings

    importing = threading.Thread(target=_import_great_expectations, name="import-gx", daemon=True)
    importing.start()
    with local_server(port=port, full=full) as url, temporary_settings(updates={PREFECT_API_URL: url}):
        importing.join()
        try:
            yield url
        finally:
            _drain_workers()


def _drain_workers() -> None:
    """Send the logs and events still queued while the server is up; afterwards they would be
    retried against a closed port for over a minute at exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    EventsWorker.drain_all(timeout=30)

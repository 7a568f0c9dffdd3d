"""Fixtures shared by every test: each database-backed test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.smtp import Mailbox, free_port, smtp_server

PG_URL = os.environ.get("OPSAUDIT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/opsaudit_test")


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch) -> None:
    """No test sees the developer's OPSAUDIT_* settings, data directory or working directory."""
    for name in list(os.environ):
        if name.startswith("OPSAUDIT_") and name != "OPSAUDIT_TEST_PG_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPSAUDIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPSAUDIT_OUTPUT_DIR", str(tmp_path / "out"))
    (tmp_path / "config").mkdir()
    monkeypatch.setenv("OPSAUDIT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pg_database() -> str:
    """The PostgreSQL test database, created when missing."""
    from opsaudit.store.create_database import ensure_database

    url = make_url(PG_URL)
    try:
        ensure_database(PG_URL)
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {url.render_as_string(hide_password=True)} is not reachable "
                    f"(run `make postgres`): {exc.orig}")
    return PG_URL


def _pg_schema_url(base: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    # psycopg passes URL query items to connect(): every connection searches the test's schema.
    yield f"{base}?options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, or a private schema in the PostgreSQL test database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ops.db'}"
    else:
        yield from _pg_schema_url(request.getfixturevalue("pg_database"))


@pytest.fixture
def pg_url(pg_database) -> Iterator[str]:
    """A private schema in the PostgreSQL test database, for a test of PostgreSQL's own types."""
    yield from _pg_schema_url(pg_database)


@pytest.fixture
def engine(db_url) -> Iterator[sa.Engine]:
    from opsaudit.db import create_engine

    eng = create_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the whole session (it takes ~15 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def port() -> int:
    """A free local port, for a test SMTP server."""
    return free_port()


@pytest.fixture
def mailbox(monkeypatch, port) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) in the test process, which OPSAUDIT_SMTP_* point to."""
    monkeypatch.setenv("OPSAUDIT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OPSAUDIT_SMTP_PORT", str(port))
    monkeypatch.setenv("OPSAUDIT_SMTP_FROM", "运营稽查 <audit@example.com>")
    with smtp_server(port) as box:
        yield box

"""Engines for the operational database and the store, with errors that hide passwords."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from opsaudit.errors import SourceError, StoreError
from opsaudit.settings import mask_url


def create_engine(url: str, *, purpose: str = "database", timezone: str | None = None) -> Engine:
    """An engine for url; SQLite files get their folder created. With `timezone`, PostgreSQL
    sessions use it, so timestamptz columns compare with the naive local period bounds."""
    error = StoreError if purpose == "store" else SourceError
    try:
        parsed = make_url(url)
    except Exception:
        raise error(f"{purpose}: {mask_url(url)}: not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True)
    except Exception as exc:  # missing driver and the like
        raise error(f"{purpose}: {mask_url(url)}: {type(exc).__name__}: {exc}") from None
    if timezone and engine.dialect.name == "postgresql":
        sa.event.listen(engine, "connect", lambda dbapi_connection, _record: _set_timezone(dbapi_connection, timezone))
    return engine


def _set_timezone(dbapi_connection, timezone: str) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SELECT set_config('TimeZone', %s, false)", (timezone,))
    cursor.close()
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def check_reachable(engine: Engine, *, purpose: str) -> None:
    """Connect once, so an unreachable database is one clear line, not a traceback later."""
    error = StoreError if purpose == "store" else SourceError
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise error(f"{purpose}: {mask_url(engine.url.render_as_string(hide_password=False))}: "
                    f"cannot connect: {reason}") from None

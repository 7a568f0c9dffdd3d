"""Engines for the operational database and the store, with errors that hide passwords."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from opsaudit.errors import SourceError, StoreError
from opsaudit.settings import mask_url


def create_engine(url: str, *, purpose: str = "database") -> Engine:
    """An engine for url; SQLite files get their folder created and foreign keys on."""
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
        return sa.create_engine(parsed, pool_pre_ping=True)
    except Exception as exc:  # missing driver and the like
        raise error(f"{purpose}: {mask_url(url)}: {type(exc).__name__}: {exc}") from None


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

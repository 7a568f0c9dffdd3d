"""Engines for the operational database and the store, with errors that hide passwords.

opsaudit never writes to the operational database (data-contract.md): its engine is read-only,
a read-only session on PostgreSQL and `mode=ro` on SQLite, and a SQLite file that is not there is
an error, never an empty company. The store is the one database opsaudit writes and creates.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from opsaudit.errors import SourceError, StoreError
from opsaudit.i18n.render import Message
from opsaudit.settings import mask_url

# The variable that names each database: an error says which one to fix.
SETTINGS = {"database": "OPSAUDIT_DATABASE_URL", "store": "OPSAUDIT_STORE_URL"}
URL_EXAMPLE = "postgresql+psycopg://user@host:5432/name"


def _error(purpose: str) -> type[SourceError] | type[StoreError]:
    return StoreError if purpose == "store" else SourceError


def _fault(purpose: str, key: str, **values: object) -> SourceError | StoreError:
    """The error of `purpose`'s database: `key`'s line, naming the database and its setting."""
    return _error(purpose)(Message.of(key, purpose=Message.of(f"error.purpose.{purpose}"),
                                      setting=SETTINGS.get(purpose, SETTINGS["database"]), **values))


def create_engine(url: str, *, purpose: str = "database", timezone: str | None = None, read_only: bool = False,
                  create: bool = True) -> Engine:
    """An engine for `url`.

    `create`: a SQLite file may be created (with its folder); otherwise a missing file is an error
    naming the path. `read_only`: the database refuses every write, whatever SQL is sent. With
    `timezone`, PostgreSQL sessions use it, so timestamptz columns compare with the naive local
    period bounds.
    """
    try:
        parsed = make_url(url)
    except Exception:
        # Not shown at all: what cannot be parsed cannot have its password masked.
        raise _fault(purpose, "error.database.bad_url", format="SQLAlchemy", example=URL_EXAMPLE) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, purpose=purpose, read_only=read_only, create=create)
    if parsed.get_backend_name() == "postgresql":
        parsed = _postgres_session(parsed, timezone=timezone, read_only=read_only)
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except Exception as exc:  # missing driver and the like
        raise _fault(purpose, "error.database.no_engine", url=mask_url(url),
                     reason=f"{type(exc).__name__}: {exc}") from None


def store_engine(url: str) -> Engine:
    """The audit store: written by opsaudit, created on first use."""
    return create_engine(url, purpose="store")


def source_engine(url: str, *, timezone: str) -> Engine:
    """The operational database as the audits read it: read-only, never created."""
    return create_engine(url, purpose="database", timezone=timezone, read_only=True, create=False)


def _sqlite_engine(parsed: URL, *, purpose: str, read_only: bool, create: bool) -> Engine:
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    if not in_memory:
        path = Path(database.removeprefix("file:")).expanduser()
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise _fault(purpose, "error.database.no_file", url=parsed.render_as_string(), path=str(path))
        if read_only:
            # A URI filename with mode=ro: SQLite itself refuses every write on this connection.
            query = {"mode": "ro", "uri": "true"}
            if path.is_file() and _unwritable(path):
                # A read-only mount: a WAL database there cannot get the index file every reader
                # needs, and SQLite cannot open it at all unless told nothing changes the file,
                # which holds where no one can write.
                query["immutable"] = "1"
            parsed = parsed.set(database=f"file:{path.resolve()}").update_query_dict(query)
    engine = sa.create_engine(parsed, connect_args={"timeout": 30})
    if purpose == "store":
        # WAL lets audits write while the CLI reads; it is a setting of the file, so the store's only.
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _unwritable(path: Path) -> bool:
    """Whether the SQLite file or its folder refuses writes (a read-only mount, or permissions)."""
    return not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK))


def _sqlite_path(engine: Engine) -> Path | None:
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
        return None
    return Path(database.removeprefix("file:")).expanduser()


def _postgres_session(parsed: URL, *, timezone: str | None, read_only: bool) -> URL:
    """The URL with libpq `options` for the session: its time zone, and read-only transactions.

    In the URL, not in a connect hook, so that every engine built from it (Great Expectations
    builds its own) gets the same session, and a COMMIT inside a mapped SELECT cannot open a
    writable transaction.
    """
    existing = parsed.query.get("options")
    options = [existing] if isinstance(existing, str) else list(existing or ())
    if timezone:
        options.append(f"-c TimeZone={timezone}")
    if read_only:
        # An audit's grouped queries sort and hash a month of records: room for that in memory.
        options += ["-c default_transaction_read_only=on", "-c work_mem=64MB"]
    return parsed.update_query_dict({"options": " ".join(options)}) if options else parsed


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def check_reachable(engine: Engine, *, purpose: str) -> None:
    """Connect once, so an unreachable database is one clear line, not a traceback later."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        path = _sqlite_path(engine)
        if purpose == "store" and path is not None and ("readonly" in reason or _unwritable(path)):
            raise _fault(purpose, "validation.database.not_writable", url=shown_url(engine), path=str(path),
                         reason=reason) from None
        raise _fault(purpose, "error.database.unreachable", url=shown_url(engine), reason=reason) from None


def shown_url(engine: Engine) -> str:
    """The engine's URL as the user gave it, password masked: without the session options added here."""
    return mask_url(engine.url.difference_update_query(["options"]).render_as_string(hide_password=False))


def unsupported_store(feature: Message, dialect: str) -> StoreError:
    """The error of a store step written for the two dialects whose upserts it uses."""
    return StoreError(Message.of("error.store.dialect", feature=feature, sqlite="SQLite", postgresql="PostgreSQL",
                                 dialect=dialect))

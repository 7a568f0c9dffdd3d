"""Create or upgrade the store schema with Alembic, programmatically, and check a store before use."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from opsaudit.db import shown_url
from opsaudit.errors import StoreError
from opsaudit.i18n.render import Message
from opsaudit.store.schema import VERSION_TABLE, audit_runs, metadata

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    return _scripts().get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _where(engine: Engine) -> str:
    return shown_url(engine)


def _check_known(engine: Engine, found: str | None) -> None:
    """A store written by a newer opsaudit, or whose version record is gone, is not ours to touch."""
    if found is not None:
        known = {script.revision for script in _scripts().walk_revisions()}
        if found not in known:
            raise StoreError(Message.of("error.store.newer", url=_where(engine), found=found, program="opsaudit",
                                        head=head_revision()))
        return
    ours = [name for name in sa.inspect(engine).get_table_names() if name in metadata.tables]
    if ours:
        raise StoreError(Message.of("error.store.no_version_table", url=_where(engine), tables=sorted(ours),
                                    table=VERSION_TABLE, setting="OPSAUDIT_STORE_URL"))


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the store to `revision` (default: the newest); returns the revision reached."""
    _check_known(engine, current_revision(engine))
    config = _alembic_config()
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StoreError(Message.of("error.store.cannot_upgrade", url=_where(engine), reason=reason)) from None
    return current_revision(engine) or ""


def require_current(engine: Engine) -> None:
    """Raise a StoreError telling the user what to do when the schema is not this opsaudit's."""
    found = current_revision(engine)
    _check_known(engine, found)
    if found != head_revision():
        key = "error.store.no_schema" if found is None else "error.store.old_revision"
        raise StoreError(Message.of(key, found=found, head=head_revision(), command="opsaudit init"))


def require_writable(engine: Engine) -> None:
    """Update no row and roll back: a read-only database refuses even that, so a read-only store
    fails before an audit instead of after it."""
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            conn.execute(audit_runs.update().where(audit_runs.c.id == "").values(status="running"))
            transaction.rollback()
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StoreError(Message.of("error.store.not_writable", url=_where(engine), reason=reason)) from None

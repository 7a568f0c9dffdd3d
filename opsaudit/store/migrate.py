"""Create or upgrade the store schema with Alembic, programmatically."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from opsaudit.errors import StoreError
from opsaudit.store.schema import VERSION_TABLE

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the store to `revision` (default: the newest); returns the revision reached."""
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return current_revision(engine) or ""


def require_current(engine: Engine) -> None:
    """Raise a StoreError telling the user to run `opsaudit init` when the schema is behind."""
    found = current_revision(engine)
    if found != head_revision():
        state = "has no opsaudit schema" if found is None else f"is at revision {found}"
        raise StoreError(f"audit store {state}, expected {head_revision()}: run `opsaudit init`")

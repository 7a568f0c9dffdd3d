"""`python -m opsaudit.store.create_database URL`: create the PostgreSQL database a URL names when
it does not exist yet (the Makefile's test database, whatever PG_URL says)."""

from __future__ import annotations

import sys

import sqlalchemy as sa
from sqlalchemy.engine import make_url


def ensure_database(url: str) -> bool:
    """Create the database of `url` through the server's `postgres` database; True if it was created."""
    target = make_url(url)
    if target.get_backend_name() != "postgresql" or not target.database:
        raise SystemExit(f"create_database: {target.render_as_string()}: not a PostgreSQL URL naming a database")
    maintenance = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with maintenance.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                  {"name": target.database}).first()
            if not exists:
                quoted = conn.dialect.identifier_preparer.quote(target.database)
                conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
        return not exists
    finally:
        maintenance.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m opsaudit.store.create_database POSTGRESQL_URL")
    ensure_database(sys.argv[1])

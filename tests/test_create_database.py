"""`make postgres` creates the database PG_URL names (it once created opsaudit_test whatever PG_URL said)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from opsaudit.store.create_database import ensure_database

ROOT = Path(__file__).resolve().parents[1]


def exists(admin: sa.Engine, name: str) -> bool:
    with admin.connect() as conn:
        return conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None


def test_the_database_of_the_url_is_created_once(pg_database):
    name = f"opsaudit_made_{uuid.uuid4().hex[:8]}"
    url = make_url(pg_database).set(database=name).render_as_string(hide_password=False)
    admin = sa.create_engine(make_url(pg_database).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        assert (ensure_database(url), ensure_database(url)) == (True, False)
        assert exists(admin, name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def test_make_postgres_passes_pg_url_on():
    planned = subprocess.run(["make", "-n", "postgres", "PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/other"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "opsaudit.store.create_database \"postgresql+psycopg://postgres@127.0.0.1:5432/other\"" in planned
    assert "opsaudit_test" not in planned

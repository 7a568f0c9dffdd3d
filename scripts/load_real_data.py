"""Load a data set of ../shared/real-data into a PostgreSQL database as it is: a table of text
columns per file, named as the CSV's header, every value unchanged ("?" stays "?", dates stay as
written), only decoded from the file's own encoding.

What the audit reads is then only the source mapping's work (config/examples/<data>/source.yaml),
as it would be on a company's own database:

    .venv/bin/python scripts/load_real_data.py servicenow postgresql+psycopg://postgres@127.0.0.1/opsaudit_real
    .venv/bin/python scripts/load_real_data.py sip postgresql+psycopg://postgres@127.0.0.1/opsaudit_real
    .venv/bin/python scripts/load_real_data.py fdaaa postgresql+psycopg://postgres@127.0.0.1/opsaudit_real
"""

from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "real-data"
# The data sets with a source mapping: each file, the table it is loaded into, and its encoding
# (the SiP task log is Windows-1252: its summaries have curly quotes).
DATA_SETS = {
    "servicenow": (("servicenow_incident_event_log.csv.gz", "servicenow_incident_events", "utf-8"),),
    "sip": (("sip_task_info.csv.gz", "sip_task_info", "cp1252"),
            ("sip_est_act_dates.csv.gz", "sip_task_dates", "cp1252")),
    "fdaaa": (("fdaaa_results_reporting.csv.gz", "fdaaa_trials", "utf-8"),),
}


def load(name: str, url: str, folder: Path = REAL_DATA) -> dict[str, int]:
    """(Re)create data set `name`'s tables in the database at `url` and copy its files into them;
    the rows of each table."""
    if make_url(url).get_backend_name() != "postgresql":
        raise SystemExit(f"{url}: the real-data mappings are written for PostgreSQL")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:   # the whole data set, or none of it
            return {table: _load_file(conn, folder / file, table, encoding)
                    for file, table, encoding in DATA_SETS[name]}
    finally:
        engine.dispose()


def _load_file(conn: sa.Connection, path: Path, table: str, encoding: str) -> int:
    """The file copied into a fresh table of text columns; the rows copied."""
    with gzip.open(path, "rt", encoding=encoding, newline="") as source:
        header = next(csv.reader(source))
        body = source.read()
    columns = ", ".join(f'"{column}" text' for column in header)
    conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
    conn.execute(sa.text(f'CREATE TABLE "{table}" ({columns})'))
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f'COPY "{table}" FROM STDIN WITH (FORMAT csv)') as copy:
        copy.write(body)
    rows = cursor.rowcount
    conn.execute(sa.text(f'ANALYZE "{table}"'))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(DATA_SETS))
    parser.add_argument("url", help="a PostgreSQL database (SQLAlchemy URL)")
    parser.add_argument("--folder", type=Path, default=REAL_DATA, help="where the real-data files are")
    args = parser.parse_args()
    for table, rows in load(args.name, args.url, args.folder).items():
        print(f"{table}: {rows:,} rows")


if __name__ == "__main__":
    main()

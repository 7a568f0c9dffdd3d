"""Time build_demo on a database: `python benchmarks/load_demo.py [--url URL] [--tickets N]`.

The PostgreSQL database in the URL is created (through the `postgres` database) when missing.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from sqlalchemy.engine import make_url

from opsaudit.db import create_engine
from opsaudit.demo import build_demo
from opsaudit.store.create_database import ensure_database

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/opsaudit_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="SQLAlchemy URL of the target database")
    parser.add_argument("--tickets", type=int, default=1_000_000, help="total tickets to generate")
    parser.add_argument("--as-of", type=datetime.fromisoformat, default=datetime(2026, 11, 18),
                        help="the demo's as_of (fixed, so runs are comparable)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    args = parser.parse_args()

    if make_url(args.url).get_backend_name() == "postgresql":
        ensure_database(args.url)
    engine = create_engine(args.url)
    started = time.perf_counter()
    summary = build_demo(engine, as_of=args.as_of, total_tickets=args.tickets, progress=args.progress)
    seconds = time.perf_counter() - started
    engine.dispose()
    rows = sum(summary.row_counts.values())
    print(f"{engine.url.render_as_string(hide_password=True)}: {summary.row_counts['tickets']:,} tickets, "
          f"{rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s, "
          f"{summary.row_counts['tickets'] / seconds:,.0f} tickets/s)")


if __name__ == "__main__":
    main()

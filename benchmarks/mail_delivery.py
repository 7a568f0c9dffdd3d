"""How fast the outbox enqueues and delivers, on SQLite and the local PostgreSQL, to a local aiosmtpd.

Enqueues N messages (each with a PDF-sized attachment), each in its own transaction, delivers
them in one run through one SMTP connection, and prints messages per second for both steps.

    .venv/bin/python benchmarks/mail_delivery.py [--messages 500] [--attachment-kib 256] [--url URL]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from opsaudit.db import create_engine
from opsaudit.reports import outbox
from opsaudit.reports.delivery import deliver_pending
from opsaudit.reports.outbox import Address, OutgoingMail
from opsaudit.settings import load_settings
from opsaudit.store.create_database import ensure_database
from opsaudit.store.migrate import upgrade

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/opsaudit_bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def smtp_sink(port: int) -> Iterator[None]:
    """aiosmtpd in its own process, accepting and discarding every message, as a real relay would
    (in this process it would compete with the sender for the interpreter)."""
    process = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink",
                                "-l", f"127.0.0.1:{port}"])
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait()


@contextmanager
def private_schema(url: str) -> Iterator[str]:
    """A URL whose connections use a new schema of the PostgreSQL database (created if missing),
    dropped afterwards, so the benchmark never touches other tables."""
    ensure_database(url)
    parsed = make_url(url)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    owner = sa.create_engine(parsed)
    with owner.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        owner.dispose()


def measure(label: str, url: str, messages: int, attachment: Path, port: int) -> None:
    engine = create_engine(url, purpose="store")
    upgrade(engine)
    started = time.perf_counter()
    for i in range(messages):
        with engine.begin() as conn:
            outbox.enqueue(conn, OutgoingMail(
                f"bench:{i}", "report", (Address(f"s{i:04d}@example.com", f"员工{i}"),), f"稽查报告 {i}",
                "正文" * 200, "<p>" + "正文" * 200 + "</p>", (attachment,)))
    enqueued = time.perf_counter() - started
    started = time.perf_counter()
    report = deliver_pending(engine, load_settings(smtp_host="127.0.0.1", smtp_port=port,
                                                   smtp_from="audit@example.com"))
    delivered = time.perf_counter() - started
    assert len(report.sent) == messages, "the server did not take every message"
    print(f"{label:>10}: enqueue {messages / enqueued:,.0f} msg/s, deliver {messages / delivered:,.0f} msg/s "
          f"({messages} messages, {attachment.stat().st_size // 1024} KiB attachment each)")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--attachment-kib", type=int, default=256, help="size of each message's attachment")
    parser.add_argument("--url", default=DEFAULT_PG, help="a PostgreSQL database; a private schema is used")
    args = parser.parse_args()
    port = free_port()
    with smtp_sink(port), tempfile.TemporaryDirectory() as folder:
        attachment = Path(folder) / "report.pdf"
        attachment.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 4 * args.attachment_kib)
        measure("SQLite", f"sqlite:///{folder}/store.db", args.messages, attachment, port)
        with private_schema(args.url) as url:
            measure("PostgreSQL", url, args.messages, attachment, port)

if __name__ == "__main__":
    main()

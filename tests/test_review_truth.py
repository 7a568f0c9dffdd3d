"""What a manager receives agrees with itself: the report states where its review stands in every
file written after each step (draft, approved by whom and when, returned, submitted again), on
SQLite and PostgreSQL, read back from a real SMTP server; and two decisions at the same moment on
a SQLite store decide the report once."""

from __future__ import annotations

import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from opsaudit.reports.delivery import deliver_pending
from opsaudit.reports.render import write_report
from opsaudit.reports.review import ReviewError, approve, reject, resubmit, submit
from opsaudit.store.schema import outbox, report_events
from tests.smtp import settings_for
from tests.test_review import T0, a_run, gate, mailbox, report_files, store  # noqa: F401 - fixtures

DRAFT = "报告状态 草稿，待稽查小组组长审核后提交运营部经理"
APPROVED = "报告状态 已审核通过：稽查小组组长员工A1（A1）于2026-11-02 19:00审核"
RETURNED = "报告状态 已退回修改：稽查小组组长员工A1（A1）于2026-11-02 19:00退回"


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "read.pdf"
    path.write_bytes(data)
    words = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(words.stdout.split())


def html_text(html: str) -> str:
    import re

    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def attached(message, name: str) -> bytes:
    return next(part for part in message.iter_attachments() if part.get_filename() == name).get_content()


def folder_of(tmp_path: Path) -> Path:
    return tmp_path / "out"


def test_every_file_sent_and_written_after_a_review_states_that_review(db_url, store, mailbox, port,  # noqa: F811
                                                                       tmp_path, monkeypatch):
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", db_url)   # the report names people from the staff table
    settings = settings_for(port)
    run = a_run(store)
    with store.begin() as conn:
        submit(conn, gate(store, settings), run, "zh-CN", report_files(folder_of(tmp_path)), now=T0)
    with store.begin() as conn:
        reject(conn, gate(store, settings), run, "A1", "请补充抽样说明", now=T0 + timedelta(hours=1), language="zh-CN")
    html = (folder_of(tmp_path) / "report.zh-CN.html").read_text(encoding="utf-8")
    assert RETURNED in html_text(html) and "审核意见 请补充抽样说明" in html_text(html)
    deliver_pending(store, settings, now=T0 + timedelta(hours=1))
    returned = mailbox.received[-1].get_body(("plain",)).get_content()
    assert f"opsaudit reports resubmit {run} --actor" in returned and f"/reports/{run}" in returned

    with store.begin() as conn, pytest.raises(ReviewError, match="只有运营部在职的稽查人员可以"):
        resubmit(conn, gate(store, settings), run, "M1", None, now=T0, language="zh-CN")
    with store.begin() as conn:
        again = resubmit(conn, gate(store, settings), run[:8], "A2", "已补充", now=T0 + timedelta(hours=2),
                         language="zh-CN")
    assert again.status == "draft"
    assert DRAFT in html_text((folder_of(tmp_path) / "report.zh-CN.html").read_text(encoding="utf-8"))
    with store.begin() as conn, pytest.raises(ReviewError, match="正在等待稽查小组组长审核"):
        resubmit(conn, gate(store, settings), run, "A2", None, now=T0, language="zh-CN")
    deliver_pending(store, settings, now=T0 + timedelta(hours=2))
    redraft = mailbox.received[-1]
    assert "曾被退回" in redraft.get_body(("plain",)).get_content()
    assert f"在网页上查看并审核：http://127.0.0.1:8400/reports/{run}" in redraft.get_body(("plain",)).get_content()
    assert DRAFT in pdf_text(attached(redraft, "report.zh-CN.pdf"), tmp_path)

    with store.begin() as conn:
        approve(conn, gate(store, settings), run[:8], "A1", "同意", now=T0 + timedelta(hours=1), language="zh-CN")
    deliver_pending(store, settings, now=T0 + timedelta(hours=3))
    report = mailbox.received[-1]
    assert report["Subject"].startswith("稽查报告：")
    assert APPROVED in pdf_text(attached(report, "report.zh-CN.pdf"), tmp_path)
    mailed_html = attached(report, "report.zh-CN.html")
    mailed_html = mailed_html if isinstance(mailed_html, str) else mailed_html.decode("utf-8")
    assert APPROVED in html_text(mailed_html) and "审核意见 同意" in html_text(mailed_html)
    # What stays on disk is what was mailed; a copy rendered later, in English too, says the same.
    assert (folder_of(tmp_path) / "report.zh-CN.html").read_text(encoding="utf-8") == mailed_html
    english = write_report(store, settings, run, "en", tmp_path / "later")
    assert "Approved by the audit team lead" in html_text(english.html.read_text(encoding="utf-8"))
    with store.connect() as conn:
        actions = conn.execute(sa.select(report_events.c.action, report_events.c.actor)
                               .where(report_events.c.audit_run_id == run).order_by(report_events.c.id)).all()
    assert [tuple(a) for a in actions] == [("submitted", "system"), ("rejected", "A1"), ("submitted", "A2"),
                                           ("revised", "A2"), ("approved", "A1"), ("sent", "system")]


def test_a_sqlite_store_decides_a_report_once_when_approved_and_returned_at_once(port, tmp_path):
    from opsaudit.db import create_engine
    from tests.rectification import company

    settings = settings_for(port)
    for attempt in range(3):
        engine = create_engine(f"sqlite:///{tmp_path / f'store{attempt}.db'}", purpose="store")
        company(engine)
        run = a_run(engine)
        with engine.begin() as conn:
            submit(conn, gate(engine, settings), run, "zh-CN", report_files(tmp_path / f"out{attempt}"), now=T0)
        decided: list[str] = []
        start = threading.Barrier(2)

        def decide(step, *args, engine=engine, run=run, decided=decided, start=start) -> None:
            start.wait()
            try:
                with engine.begin() as conn:
                    step(conn, gate(engine, settings), run, "A1", *args, now=T0, language="zh-CN")
                decided.append(step.__name__)
            except ReviewError as refused:
                decided.append(f"refused: {refused}")

        threads = [threading.Thread(target=decide, args=(approve, None)),
                   threading.Thread(target=decide, args=(reject, "请修改"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(decided) == 2 and sum(not d.startswith("refused") for d in decided) == 1, decided
        with engine.connect() as conn:
            actions = conn.execute(sa.select(report_events.c.action).where(report_events.c.audit_run_id == run)
                                   .order_by(report_events.c.id)).scalars().all()
            kinds = conn.execute(sa.select(outbox.c.kind).order_by(outbox.c.id)).scalars().all()
        assert actions in (["submitted", "approved"], ["submitted", "rejected"])
        assert kinds == ["report", "report" if actions[-1] == "approved" else "notice"]
        engine.dispose()

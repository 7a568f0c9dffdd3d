"""Look at the audit report as a manager would: build the demo company, audit customer service for
four months (the last through `opsaudit demo`, three before it by `opsaudit backfill`, so the trend
has history), write the October report in both languages, and photograph it: the PDF's first page
with pdftoppm, the whole HTML page with headless Chromium.

    .venv/bin/python scripts/report_pictures.py [--docs docs] [--work DIR]

Keeps docs/report-zh-CN.png and docs/report-en.png (the PDF's first page) for the README; the
HTML pictures and the reports stay in the work folder, printed at the end. Installs Debian's
chromium when it is missing (apt-get, as root).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LANGUAGES = ("zh-CN", "en")
AUDIT, PERIOD, EARLIER = "cs-monthly", "2026-10", ("2026-07", "2026-09")


def run(*command: str, env: dict[str, str]) -> None:
    subprocess.run(command, check=True, env=env, cwd=env["WORK"], stdout=subprocess.DEVNULL)


def audited_company(work: Path) -> dict[str, str]:
    """The demo company with four months of the customer-service audit; the environment that reads it."""
    env = {**os.environ, "WORK": str(work), "OPSAUDIT_DATA_DIR": str(work / "data"),
           "OPSAUDIT_OUTPUT_DIR": str(work / "out"), "PREFECT_HOME": str(work / "prefect-home"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    run(str(BIN / "opsaudit"), "demo", env=env)
    run(str(BIN / "opsaudit"), "backfill", AUDIT, "--from", EARLIER[0], "--to", EARLIER[1], env=env)
    return env


def write_reports(env: dict[str, str]) -> dict[str, tuple[Path, Path]]:
    """The October report in each language: (html, pdf) by language."""
    import sqlalchemy as sa

    os.environ.update({key: value for key, value in env.items() if key.startswith("OPSAUDIT_")})
    from opsaudit.audit import audit_store
    from opsaudit.reports.render import write_report
    from opsaudit.settings import load_settings
    from opsaudit.store.schema import audit_runs

    settings = load_settings()
    store = audit_store(settings)
    with store.connect() as conn:
        run_id = conn.execute(sa.select(audit_runs.c.id).where(audit_runs.c.audit == AUDIT,
                                                               audit_runs.c.period == PERIOD)
                              .order_by(audit_runs.c.started_at.desc()).limit(1)).scalar_one()
    folder = settings.output_dir / AUDIT / PERIOD
    written = {}
    for language in LANGUAGES:
        files = write_report(store, settings, run_id, language, folder)
        written[language] = (files.html, files.pdf)
    return written


def photograph(html: Path, pdf: Path, picture: Path, page: Path) -> None:
    """The PDF's first page (for the README) and the whole HTML page."""
    stem = picture.with_suffix("")
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(stem)],
                   check=True)
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tempfile.mkdtemp()}", "--window-size=1200,3000",
                    f"--screenshot={page}", html.as_uri()], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where the README's pictures go")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a new temporary one)")
    options = parser.parse_args()
    if shutil.which("chromium") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
    work = options.work or Path(tempfile.mkdtemp(prefix="opsaudit-report-"))
    work.mkdir(parents=True, exist_ok=True)
    env = audited_company(work)
    options.docs.mkdir(parents=True, exist_ok=True)
    for language, (html, pdf) in write_reports(env).items():
        picture, page = options.docs / f"report-{language}.png", work / f"report-{language}-html.png"
        photograph(html, pdf, picture, page)
        print(picture, page, html, pdf)


if __name__ == "__main__":
    main()

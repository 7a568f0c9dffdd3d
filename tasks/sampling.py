"""The weekly quality sample as a Prefect task: draw, record, and write the review sheet."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from opsaudit.audit import AuditContext
from opsaudit.checks.sampling import draw_sample, new_seed, record_sample, ticket_details
from opsaudit.i18n import text
from opsaudit.reports.review_sheet import write_review_sheet
from opsaudit.store.runs import RunInfo, set_run_seed
from opsaudit.store.schema import audit_runs


def seed_for(context: AuditContext) -> int:
    """The seed of an earlier run of the same audit and period, so a rerun draws the same sample;
    otherwise a fresh one (recorded, so anyone can re-perform the draw)."""
    with context.store.connect() as conn:
        earlier = conn.execute(
            sa.select(audit_runs.c.seed).where(audit_runs.c.audit == context.audit,
                                               audit_runs.c.period == context.period.label,
                                               audit_runs.c.seed.is_not(None))
            .order_by(audit_runs.c.started_at).limit(1)).scalar()
    return int(earlier) if earlier is not None else new_seed()


@task(cache_policy=NO_CACHE)
def draw_quality_sample(context: AuditContext, run: RunInfo) -> dict[str, Any]:
    """Draw the stratified attribute sample of the week's tickets and write the review sheet."""
    seed = seed_for(context)
    draw = draw_sample(context.source, context.period, context.config.audits.sampling, seed)
    with context.store.begin() as conn:
        record_sample(conn, run.id, context.period.label, draw)
        set_run_seed(conn, run.id, seed, draw.parameters())
    info = ticket_details(context.source, [row.ticket_id for row in draw.rows])
    folder = context.output_folder(run.id)
    csv_path, xlsx_path = write_review_sheet(draw, info, folder, context.period.label)
    get_run_logger().info(text("log.sampling.drawn", context.settings.language, size=len(draw.rows), seed=seed))
    return {"seed": seed, "size": len(draw.rows), "sheet_csv": str(csv_path), "sheet_xlsx": str(xlsx_path)}

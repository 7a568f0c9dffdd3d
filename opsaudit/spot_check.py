"""A spot check as an audit: the draw (checks/spot_check.py) made on the operational data, and the
context of the audit it scopes, recorded so that anyone can re-perform it.

A draw is re-performed from its seed: given a seed that an earlier spot check recorded, and no
clock, the draw is made again on that spot check's window, so `opsaudit run spot-check --seed N`
picks the same area, department and sample (from the same data).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from opsaudit.audit import AuditContext, audit_store, local_now, open_source, preflight, scoped_context
from opsaudit.checks import spot_check
from opsaudit.checks.sampling import new_seed
from opsaudit.db import check_reachable
from opsaudit.periods import Period, parse_period
from opsaudit.settings import Settings
from opsaudit.store.schema import audit_runs

AUDIT = "spot-check"
KIND = "spot_check"


def reperform_command(seed: int) -> str:
    """The command that re-performs the draw of `seed`."""
    return f"opsaudit run spot-check --seed {seed}"


def recorded_window(store: Engine, seed: int) -> Period | None:
    """The window of the first spot check that recorded `seed`, if any."""
    with store.connect() as conn:
        label = conn.execute(sa.select(audit_runs.c.period).where(audit_runs.c.audit == AUDIT,
                                                                  audit_runs.c.seed == seed)
                             .order_by(audit_runs.c.started_at).limit(1)).scalar()
    return parse_period(label) if label is not None else None


def prepare(settings: Settings, seed: int | None = None, now: datetime | None = None) -> AuditContext:
    """Draw the spot check (a fresh secure seed unless `seed` is given) and check everything the
    audit needs; its context."""
    config = settings.load_config()
    source = open_source(settings, config)
    check_reachable(source.engine, purpose="database")
    window = recorded_window(audit_store(settings), seed) if seed is not None and now is None else None
    drawn = spot_check.draw(source, config.audits.spot_check.areas, window or spot_check.window_before(
        local_now(settings, now)), new_seed() if seed is None else seed, config.audits.sampling)
    context = scoped_context(settings, AUDIT, KIND, (drawn.area,), drawn.window, drawn.scope, now=now,
                             parameters={"draw": drawn.as_json()}, seed=drawn.seed, config=config)
    preflight(context)
    return context

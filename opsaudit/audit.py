"""What one audit needs, assembled once: settings, config, rules, period, source and store.

Prefect tasks (tasks/) receive this context; nothing here knows about Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from opsaudit import periods
from opsaudit.checks.metrics import MetricContext, load_builtin_metrics
from opsaudit.checks.spec import Rule, effective_rules
from opsaudit.config.loader import Config, display_path, load_config
from opsaudit.config.models import AuditPlan
from opsaudit.db import check_reachable, create_engine
from opsaudit.errors import ConfigError
from opsaudit.periods import Period
from opsaudit.settings import Settings
from opsaudit.source import Source
from opsaudit.store.migrate import require_current

PERIODIC_AUDITS = ("cs-weekly", "cs-monthly", "execution-monthly", "planning-quarterly", "data-quarterly")
# The directory tables give labels and owners to every audit's findings.
DIRECTORY_TABLES = ("departments", "staff")


def load_rules(settings: Settings, config: Config) -> list[Rule]:
    thresholds_file = display_path(settings.config_dir / "thresholds.yaml")
    return effective_rules(config.thresholds, thresholds_file=thresholds_file)


def audit_plan(config: Config, audit: str) -> AuditPlan:
    try:
        return config.audits.audits[audit]  # type: ignore[index]
    except KeyError:
        raise ConfigError(f"unknown audit {audit!r} (periodic audits: {', '.join(PERIODIC_AUDITS)})") from None


def local_now(settings: Settings, now: datetime | None = None) -> datetime:
    """`now` (or the clock) as a naive local time in OPSAUDIT_TIMEZONE, like the contract's timestamps."""
    moment = now or datetime.now(settings.tz)
    if moment.tzinfo is not None:
        moment = moment.astimezone(settings.tz)
    return moment.replace(tzinfo=None)


def resolve_period(settings: Settings, config: Config, audit: str, period: str | None,
                   now: datetime | None) -> Period:
    """The given period, or the last complete period of the audit's kind before `now`."""
    plan = audit_plan(config, audit)
    if period:
        try:
            return periods.parse_period(period)
        except ValueError as exc:
            raise ConfigError(f"--period: {exc}") from None
    return periods.previous(plan.period, local_now(settings, now))


def operations_manager(source: Source, department: str, available: set[str]) -> str | None:
    """The operations manager: the first active `manager` of the operations department by staff_id."""
    if "staff" not in available:
        return None
    s = source.table("staff")
    query = (sa.select(s.c.staff_id).where(s.c.department_id == department, s.c.role == "manager",
                                           s.c.active.is_(True)).order_by(s.c.staff_id).limit(1))
    with source.engine.connect() as conn:
        return conn.execute(query).scalar()


@dataclass(frozen=True)
class AuditContext:
    """One audit run's inputs, resolved."""

    settings: Settings
    config: Config
    audit: str
    kind: str
    period: Period
    rules: tuple[Rule, ...]
    all_rules: tuple[Rule, ...]
    now: datetime  # naive local time of the run (the clock, or --now)

    @cached_property
    def source(self) -> Source:
        return Source(create_engine(self.settings.database, purpose="database", timezone=self.settings.timezone),
                      self.config.source)

    @cached_property
    def store(self) -> Engine:
        engine = create_engine(self.settings.store, purpose="store")
        check_reachable(engine, purpose="store")
        require_current(engine)
        return engine

    @property
    def plan(self) -> AuditPlan:
        return audit_plan(self.config, self.audit)

    def tables_read(self) -> tuple[str, ...]:
        """Every contract table this audit's rules read, plus the directory tables."""
        registry = load_builtin_metrics()
        shared = {rule.rule_id: rule for rule in self.all_rules}
        tables = set(DIRECTORY_TABLES)
        for rule in self.rules:
            tables.update(registry[rule.metric](MetricContext(self.source, self.period, rule, self.now, shared)).tables)
        return tuple(sorted(tables))


def build_context(settings: Settings, audit: str, *, period: str | None = None, now: datetime | None = None,
                  kind: str = "periodic", config: Config | None = None) -> AuditContext:
    """Load config and rules and resolve the period of one periodic audit."""
    config = config or load_config(settings.config_dir)
    plan = audit_plan(config, audit)
    all_rules = load_rules(settings, config)
    rules = tuple(rule for rule in all_rules if rule.area in plan.areas and rule.runs_in(audit))
    return AuditContext(settings, config, audit, kind, resolve_period(settings, config, audit, period, now),
                        rules, tuple(all_rules), local_now(settings, now))

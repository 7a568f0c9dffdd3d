"""What one audit needs, assembled once: settings, config, rules, period, scope, source and store;
and the pre-flight that checks all of it before an audit writes anything.

Three kinds of audit (seed 000 §4.1): periodic audits on the calendar of config/audits.yaml, and
special audits and spot checks, which run chosen areas' rules on a date range within a scope.
Prefect tasks (tasks/) receive this context; nothing here knows about Prefect.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from opsaudit import periods
from opsaudit.checks.metrics import MetricContext, load_builtin_metrics
from opsaudit.checks.scope import EVERYTHING, Scope
from opsaudit.checks.spec import Rule, effective_rules
from opsaudit.config.loader import Config, display_path
from opsaudit.config.models import AuditPlan
from opsaudit.db import check_reachable, source_engine, store_engine
from opsaudit.errors import ConfigError, SourceError, option_error, os_reason
from opsaudit.i18n.render import Message
from opsaudit.periods import Period
from opsaudit.settings import Settings
from opsaudit.source import Source, check_source, missing_tables
from opsaudit.store.migrate import require_current, require_writable
from opsaudit.store.runs import run_output_folder

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
        raise ConfigError(Message.of("error.config.unknown_audit", audit=audit, audits=list(PERIODIC_AUDITS))) from None


def local_now(settings: Settings, now: datetime | None = None) -> datetime:
    """`now` (or the clock) as a naive local time in OPSAUDIT_TIMEZONE, like the contract's timestamps."""
    moment = now or datetime.now(settings.tz)
    if moment.tzinfo is not None:
        moment = moment.astimezone(settings.tz)
    return moment.replace(tzinfo=None)


def resolve_period(settings: Settings, config: Config, audit: str, period: str | None,
                   now: datetime | None, option: str = "--period") -> Period:
    """The given period, or the last complete period of the audit's kind before `now`.

    A given period must be of the audit's kind and must have ended by `now`: a month still running
    has no final figures, and auditing it would raise problems that are not problems yet. A
    mistake names `option`: the command's option, or the flow's parameter.
    """
    plan = audit_plan(config, audit)
    clock = local_now(settings, now)
    if not period:
        return periods.previous(plan.period, clock)
    parsed = periods.given_period(period, option)
    if parsed.kind != plan.period:
        raise option_error(option, Message.of("error.period.wrong_kind", audit=audit, kind=plan.period,
                                              value=period.strip(), given=parsed.kind))
    problem = not_ended(settings, parsed, clock)
    if problem:
        raise option_error(option, problem)
    return parsed


def not_ended(settings: Settings, period: Period, clock: datetime) -> Message | None:
    """Why `period` cannot be audited at the naive local time `clock`, or None when it has ended."""
    if period.end <= clock:
        return None
    return Message.of("error.period.not_ended", period=period.label, end=f"{period.end:%Y-%m-%d %H:%M}",
                      zone=settings.timezone, now=f"{clock:%Y-%m-%d %H:%M}")


def audit_store(settings: Settings) -> Engine:
    """The audit store, reachable and at the current schema revision."""
    engine = store_engine(settings.store)
    check_reachable(engine, purpose="store")
    require_current(engine)
    return engine


def open_source(settings: Settings, config: Config) -> Source:
    """The operational database, read-only, with the company's source mapping."""
    engine = source_engine(settings.database, timezone=settings.timezone)
    return Source(engine, config.source, zone=settings.timezone)


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
    """One audit run's inputs, resolved.

    `parameters` is what the run records beyond its period and rules (a special audit's reason and
    scope, a spot check's draw); `seed` the seed of a spot check's draw.
    """

    settings: Settings
    config: Config
    audit: str
    kind: str
    period: Period
    rules: tuple[Rule, ...]
    all_rules: tuple[Rule, ...]
    now: datetime  # naive local time of the run (the clock, or --now)
    scope: Scope = EVERYTHING
    parameters: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def __repr__(self) -> str:
        # Prefect shows task inputs by their repr: say what the context is, not its every rule.
        scope = f", {len(self.scope.departments)} departments" if self.scope.departments else ""
        sample = f", a sample of {len(self.scope.sample_ids)} {self.scope.sample_table}" if self.scope.sample_table \
            else ""
        return (f"AuditContext({self.audit} {self.period.label}, {len(self.rules)} rules{scope}{sample}, "
                f"now {self.now:%Y-%m-%d %H:%M})")

    @cached_property
    def source(self) -> Source:
        return open_source(self.settings, self.config)

    @cached_property
    def store(self) -> Engine:
        return audit_store(self.settings)

    @property
    def plan(self) -> AuditPlan:
        """The calendar entry of a periodic audit."""
        return audit_plan(self.config, self.audit)

    @property
    def draws_quality_sample(self) -> bool:
        """The weekly customer-service audit draws the QA review sample (audit-rules §5)."""
        return self.kind == "periodic" and self.plan.sampling

    @property
    def checks_data_quality(self) -> bool:
        """Data-quality expectations judge whole tables, which a periodic audit covers; an audit of
        some departments or of a sample leaves them to the periodic audits of the same data."""
        return not self.scope.restricted

    @property
    def period_folder(self) -> Path:
        """The audit's folder for the period: its runs' output, or the folders of each run's."""
        return self.settings.output_dir / self.audit / self.period.label

    def output_folder(self, run_id: str) -> Path:
        """Where run `run_id` of this audit writes its results and report (see run_output_folder)."""
        return run_output_folder(self.settings.output_dir, self.audit, self.kind, self.period.label, run_id)

    def tables_read(self) -> tuple[str, ...]:
        """Every contract table this audit's rules read, plus the directory tables."""
        registry = load_builtin_metrics()
        shared = {rule.rule_id: rule for rule in self.all_rules}
        tables = set(DIRECTORY_TABLES)
        for rule in self.rules:
            tables.update(registry[rule.metric](MetricContext(self.source, self.period, rule, self.now, shared)).tables)
        return tuple(sorted(tables))

    def tables_checked(self) -> tuple[str, ...]:
        """The tables data quality covers: those read, or every contract table for the data audit."""
        if self.kind == "periodic" and self.plan.data_quality == "all_tables":
            from opsaudit.contract import TABLE_NAMES

            return tuple(TABLE_NAMES)
        return self.tables_read()


def build_context(settings: Settings, audit: str, *, period: str | None = None, now: datetime | None = None,
                  kind: str = "periodic", config: Config | None = None, option: str = "--period") -> AuditContext:
    """Load config and rules and resolve the period of one periodic audit (a mistake in it names `option`)."""
    config = config or settings.load_config()
    plan = audit_plan(config, audit)
    all_rules = load_rules(settings, config)
    rules = tuple(rule for rule in all_rules if rule.area in plan.areas and rule.runs_in(audit))
    if not rules:
        where = display_path(settings.config_dir / "audits.yaml")
        raise ConfigError(Message.of("error.config.no_rule", file=where, key=f"audits.{audit}.areas",
                                     areas=list(plan.areas)))
    return AuditContext(settings, config, audit, kind, resolve_period(settings, config, audit, period, now, option),
                        rules, tuple(all_rules), local_now(settings, now))


def scoped_context(settings: Settings, audit: str, kind: str, areas: Sequence[str], period: Period, scope: Scope, *,
                   now: datetime | None = None, parameters: Mapping[str, Any] | None = None,
                   seed: int | None = None, config: Config | None = None) -> AuditContext:
    """A special audit or spot check: every enabled rule of `areas` on `period`, within `scope`.

    The `audits:` lists of checks/*.yaml choose which periodic audit runs a rule; an audit of
    chosen areas runs all of their rules.
    """
    config = config or settings.load_config()
    all_rules = load_rules(settings, config)
    rules = tuple(rule for rule in all_rules if rule.area in areas)
    if not rules:
        where = display_path(settings.config_dir / "thresholds.yaml")
        raise ConfigError(Message.of("error.config.no_rule", file=where, key="rules", areas=list(areas)))
    return AuditContext(settings, config, audit, kind, period, rules, tuple(all_rules), local_now(settings, now),
                        scope, dict(parameters or {}), seed)


def preflight(context: AuditContext) -> None:
    """Everything an audit needs, checked before it writes anything, each mistake one line.

    The source answers and has the contract's columns and types (a missing table is allowed: it is
    a data-quality finding); the operations department and the audit lead exist; the output folder
    and the store take writes.
    """
    check_reachable(context.source.engine, purpose="database")
    tables = context.tables_checked()
    absent = missing_tables(context.source, tables)
    problems = check_source(context.source, tuple(t for t in tables if t not in absent))
    if problems:
        purpose = Message.of("error.purpose.database")
        raise SourceError(Message.of("error.database.problem", purpose=purpose, problem=problems[0])
                          if len(problems) == 1 else
                          Message.of("error.database.problems", purpose=purpose, problem=problems[0],
                                     more=len(problems) - 1, command="opsaudit init --check-source"))
    check_directory_settings(context.settings, context.source, set(tables) - absent)
    check_output_folder(context.period_folder)
    require_writable(context.store)


def check_directory_settings(settings: Settings, source: Source, available: set[str]) -> None:
    """OPSAUDIT_OPERATIONS_DEPARTMENT and OPSAUDIT_AUDIT_LEAD name people and places that exist:
    otherwise company and data-quality findings would have no owner, and reports no reviewer."""
    if not {"departments", "staff"} <= available:
        return  # the missing directory table is itself a major data-quality finding
    d, s = source.table("departments"), source.table("staff")
    department = settings.operations_department
    with source.engine.connect() as conn:
        known = conn.execute(sa.select(d.c.department_id).where(d.c.department_id == department)).first()
        lead = conn.execute(sa.select(s.c.staff_id, s.c.active, s.c.role, s.c.department_id)
                            .where(s.c.staff_id == settings.audit_lead)).first() \
            if settings.audit_lead else None
    if known is None:
        raise ConfigError(Message.of("error.setting.unknown_department", setting="OPSAUDIT_OPERATIONS_DEPARTMENT",
                                     value=department, table="departments", column="department_id"))
    if operations_manager(source, department, available) is None:
        raise ConfigError(Message.of("error.setting.no_manager", setting="OPSAUDIT_OPERATIONS_DEPARTMENT",
                                     value=department, table="staff", role="manager"))
    if settings.audit_lead and (lead is None or not lead.active):
        key = "error.setting.unknown_staff" if lead is None else "error.setting.inactive_staff"
        raise ConfigError(Message.of(key, setting="OPSAUDIT_AUDIT_LEAD", value=settings.audit_lead, table="staff",
                                     column="staff_id"))
    if lead is not None:
        settings.check_audit_lead(lead.role, lead.department_id)


def check_output_folder(folder: Path) -> None:
    """The run's output folder can be created and written, or a ConfigError names it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(Message.of("error.setting.not_writable", setting="OPSAUDIT_OUTPUT_DIR",
                                     path=display_path(folder), reason=os_reason(exc))) from None

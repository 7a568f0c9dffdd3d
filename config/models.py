"""Frozen pydantic models of the YAML configuration; unknown keys are rejected."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from opsaudit.i18n.render import Message

Severity = Literal["general", "important", "major"]
AuditName = Literal["cs-weekly", "cs-monthly", "execution-monthly", "planning-quarterly", "data-quarterly"]
PeriodKind = Literal["week", "month", "quarter"]
Area = Literal["customer_service", "execution", "planning", "data_analysis"]


def _not_a_bool(value: Any) -> Any:
    # YAML's `true` is an int to Python; a count or a threshold written as true is a mistake.
    if isinstance(value, bool):
        raise ValueError(Message.of("error.value.not_a_bool_number", yes="true", no="false"))
    return value


Count = Annotated[int, BeforeValidator(_not_a_bool), Field(strict=True)]
Number = Annotated[float, BeforeValidator(_not_a_bool)]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _share(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError(Message.of("error.value.between", low=0, high=1))
    return value


Fraction = Annotated[Number, AfterValidator(_share)]


def _bands(value: tuple[float, float]) -> tuple[float, float]:
    if not 0 <= value[0] <= value[1]:
        raise ValueError(Message.of("error.config.bands", example="[0.05, 0.15]"))
    return value


Bands = Annotated[tuple[Number, Number], AfterValidator(_bands)]
ShareBands = Annotated[tuple[Fraction, Fraction], AfterValidator(_bands)]


class GradingOverride(Strict):
    bands: Bands | None = Field(
        None, description="Miss up to bands[0] is general, up to bands[1] important, beyond major.")


class EntityOverride(Strict):
    enabled: bool | None = None
    target: Number | None = None
    warning_band: Number | None = Field(None, ge=0)
    min_population: Count | None = Field(None, ge=1)
    max_severity: Severity | None = Field(None, description="the most severe grade this rule may give")
    grading: GradingOverride | None = None
    params: dict[str, float | int | str | bool | date] = Field(default_factory=dict)


class RuleOverride(EntityOverride):
    """A company's change to one rule of checks/; entity keys narrow it to one entity type."""

    entities: dict[str, EntityOverride] = Field(default_factory=dict)


class Deadlines(Strict):
    general: Count = Field(15, ge=1, description="days to fix")
    important: Count = Field(30, ge=1)
    major_plan: Count = Field(7, ge=1, description="days for the major problem's rectification plan")
    major: Count = Field(30, ge=1)


class Scoring(Strict):
    start: Count = Field(100, ge=0)
    general: Count = Field(1, ge=0)
    important: Count = Field(3, ge=0)
    major: Count = Field(10, ge=0)
    overdue: Count = Field(2, ge=0)


class Thresholds(Strict):
    """config/thresholds.yaml: defaults every rule inherits, and per-rule overrides."""

    min_population: Count = Field(20, ge=1)
    min_reviews_per_agent: Count = Field(3, ge=1)
    warning_band_rate: Fraction = 0.02
    rate_bands: ShareBands = (0.05, 0.15)
    full_target_bands: ShareBands = (0.02, 0.10)
    dq_bands: ShareBands = (0.01, 0.10)
    # audit-rules §3: one person's shortfall is a performance problem, not one that endangers the operation.
    agent_max_severity: Severity = "important"
    recurrence_periods: Count = Field(2, ge=0)
    deadlines: Deadlines = Deadlines()
    scoring: Scoring = Scoring()
    rules: dict[str, RuleOverride] = Field(default_factory=dict)


PlanLevel = Literal["annual", "quarterly", "monthly"]
ReportKind = Literal["monthly", "quarterly", "annual"]
BELOW_OPERATIONS = "below_operations"
AFTER_FIRST_REPORT = "after_first_report"


def _departments(word: str) -> Any:
    """`word`, or a list of department ids: who owes a deliverable."""

    def check(value: Any) -> Any:
        if value == word or (isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)):
            return tuple(value) if isinstance(value, list) else value
        raise ValueError(Message.of("error.config.departments", word=word, example="[CS1, CS2]"))

    return BeforeValidator(check)


class PlanDue(Strict):
    days_before: Count = Field(ge=1, le=366, description="the last day to make the plan: this many days before "
                                                          "the first day of the period it covers (1: the day before)")


class ReportDue(Strict):
    days_after: Count = Field(ge=1, le=366, description="the last day to register the report: this many days "
                                                         "after the last day of the period it analyses")


class PlanDeliverables(Strict):
    """The plans the rules require (seed 004): who makes them and by when, per level (null: none)."""

    departments: Annotated[Literal["below_operations"] | tuple[str, ...], _departments(BELOW_OPERATIONS)] = \
        BELOW_OPERATIONS
    due: dict[PlanLevel, PlanDue | None] = Field(default_factory=lambda: {
        level: PlanDue(days_before=1) for level in ("annual", "quarterly", "monthly")})


class ReportDeliverables(Strict):
    """The analysis reports the rules require: by default a department that has registered a
    report of a kind owes one for every later period; per kind, by when (null: none)."""

    departments: Annotated[Literal["after_first_report"] | tuple[str, ...], _departments(AFTER_FIRST_REPORT)] = \
        AFTER_FIRST_REPORT
    due: dict[ReportKind, ReportDue | None] = Field(default_factory=lambda: {
        "monthly": ReportDue(days_after=5), "quarterly": ReportDue(days_after=10),
        "annual": ReportDue(days_after=10)})


class Deliverables(Strict):
    """config/deliverables.yaml: what must exist (audit-rules.md section 4, "What must exist")."""

    plans: PlanDeliverables = PlanDeliverables()
    reports: ReportDeliverables = ReportDeliverables()


class KeyedValueError(ValueError):
    """A validator's error about a key below the one it validates: the loader names `loc` too."""

    def __init__(self, loc: tuple[str, ...], message: Message) -> None:
        super().__init__(message)
        self.loc = loc


def _cron(value: str) -> str:
    from croniter import CroniterBadDateError, croniter

    # croniter also takes "random" (R) and "hashed" (H) fields, which Prefect's schedules refuse.
    if not croniter.is_valid(value) or any(field.upper() in ("R", "H") for field in value.split()):
        raise ValueError(Message.of("error.config.not_a_cron", value=value, example="0 8 1 * *"))
    try:
        # A day that never comes (31 February) is valid syntax, but the schedule would never fire.
        croniter(value, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(Message.of("error.config.never_fires", value=value)) from None
    return value


Cron = Annotated[str, AfterValidator(_cron)]


class AuditPlan(Strict):
    """One periodic audit: its period, areas, calendar and what it reads."""

    period: PeriodKind
    areas: tuple[Area, ...] = Field(min_length=1)
    cron: Cron
    description: str = ""
    data_quality: Literal["read_tables", "all_tables"] = "read_tables"
    sampling: bool = False


class Sampling(Strict):
    """Attribute sampling for the weekly quality review (audit-rules section 5)."""

    confidence: Fraction = 0.95
    tolerable_rate: Fraction = 0.05
    expected_rate: Fraction = 0.01
    min_per_agent: Count = Field(1, ge=0)

    @model_validator(mode="after")
    def _expected_below_tolerable(self) -> Sampling:
        if self.expected_rate >= self.tolerable_rate:
            raise ValueError(Message.of("error.config.below_key", key="expected_rate", other="tolerable_rate"))
        return self


class SpotCheck(Strict):
    """Unannounced spot checks: a daily tick that audits on random days (seed 000 §4.1)."""

    checks_per_month: Count = Field(2, ge=0, le=20, description="spot checks in an average month")
    areas: tuple[Area, ...] = Field(("customer_service", "execution", "planning", "data_analysis"), min_length=1,
                                    description="the key areas a spot check draws from")
    cron: Cron = Field("0 10 * * *", description="the daily tick that decides whether to audit that day")


class EscalationDays(Strict):
    """Days after a rectification deadline's date at which each level is told (seed 000 §5.4)."""

    department_head: Count = Field(1, ge=0)
    operations_manager: Count = Field(7, ge=0)
    executives: Count = Field(14, ge=0)

    @model_validator(mode="after")
    def _climbs(self) -> EscalationDays:
        if not self.department_head <= self.operations_manager <= self.executives:
            raise ValueError(Message.of("error.config.ladder",
                                        keys=["department_head", "operations_manager", "executives"]))
        return self


class RectificationTracking(Strict):
    """The daily rectification-tracking flow: reminders, the escalation ladder, the weekly progress report."""

    cron: Cron = "0 8 * * *"
    reminder_days: tuple[Annotated[Count, Field(ge=1)], ...] = (7, 1)
    escalation_days: EscalationDays = EscalationDays()
    progress_report_weekday: Count = Field(1, ge=1, le=7, description="ISO weekday: 1 Monday ... 7 Sunday")


class Circulation(Strict):
    """The monthly circulation to all operations staff (seed 000 §6.3): the month before its cron."""

    cron: Cron = Field("0 12 1 * *", description="after the monthly audits of the 1st")


class KeyTaskWatch(Strict):
    """The daily key-task watch (seed 000 §4.2.2): its calendar and which tasks it warns of; the
    defaults are audit-rules.md's."""

    cron: Cron = Field("30 8 * * *", description="every morning, in OPSAUDIT_TIMEZONE")
    priorities: tuple[Literal["low", "normal", "high", "critical"], ...] = Field(
        ("high", "critical"), min_length=1, description="the priorities of the key tasks")
    due_soon_days: Count = Field(2, ge=0, description="a task not started and due within this many calendar days "
                                                      "is due soon")


# The period each audit's name promises (seed 000 §4): its flow, report and schedule are built for it.
AUDIT_PERIODS: dict[str, PeriodKind] = {"cs-weekly": "week", "cs-monthly": "month", "execution-monthly": "month",
                                        "planning-quarterly": "quarter", "data-quarterly": "quarter"}


class Audits(Strict):
    """config/audits.yaml: the audit calendar of seed 000 section 4."""

    audits: dict[AuditName, AuditPlan]
    sampling: Sampling = Sampling()
    spot_check: SpotCheck = SpotCheck()
    rectification_tracking: RectificationTracking = RectificationTracking()
    circulation: Circulation = Circulation()
    key_task_watch: KeyTaskWatch = KeyTaskWatch()

    @field_validator("audits")
    @classmethod
    def _period_fits(cls, value: dict[str, AuditPlan]) -> dict[str, AuditPlan]:
        for name, plan in value.items():
            if plan.period != AUDIT_PERIODS[name]:
                raise KeyedValueError((name, "period"), Message.of(
                    "error.config.wrong_period", audit=name, period=AUDIT_PERIODS[name], given=plan.period,
                    setting=f"period: {AUDIT_PERIODS[name]}"))
        return value


class Recipient(Strict):
    staff_id: str | None = None
    email: str | None = None
    language: Literal["zh-CN", "en"] | None = None

    @model_validator(mode="after")
    def _one_address(self) -> Recipient:
        if not (self.staff_id or self.email):
            raise ValueError(Message.of("error.config.recipient", staff_id="staff_id", email="email"))
        return self


class Recipients(Strict):
    """config/recipients.yaml: who receives reports beyond the operations manager."""

    reports: dict[str, tuple[Recipient, ...]] = Field(default_factory=dict)
    alerts: tuple[Recipient, ...] = ()
    circulation: tuple[Recipient, ...] = ()


class TableSource(Strict):
    """Where one contract table comes from: a table or view, or a SELECT, plus renames."""

    table: str | None = None
    schema_: str | None = Field(None, alias="schema")
    select: str | None = None
    columns: dict[str, str] = Field(default_factory=dict, description="contract column: source column")

    @model_validator(mode="after")
    def _table_or_select(self) -> TableSource:
        if self.table and self.select:
            raise ValueError(Message.of("error.config.table_or_select", table="table", select="select"))
        return self

    @field_validator("select")
    @classmethod
    def _one_select(cls, value: str | None) -> str | None:
        """One SELECT statement and nothing else: opsaudit only ever reads the source."""
        if value is None:
            return None
        import sqlglot
        from sqlglot import exp

        try:
            statements = [s for s in sqlglot.parse(value) if s is not None]
        except sqlglot.errors.SqlglotError:
            raise ValueError(Message.of("error.config.not_a_select", statement="SELECT")) from None
        writes = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Drop, exp.Create, exp.Alter, exp.Command,
                  exp.TruncateTable)
        if len(statements) != 1 or not isinstance(statements[0], exp.Query) or statements[0].find(*writes):
            raise ValueError(Message.of("error.config.only_one_select", statement="SELECT"))
        return value


class SourceMapping(Strict):
    """config/source.yaml: the operational database's names for the contract tables."""

    tables: dict[str, TableSource] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value: dict[str, TableSource]) -> dict[str, TableSource]:
        from opsaudit.contract import TABLE_NAMES, metadata

        for name, source in value.items():
            if name not in TABLE_NAMES:
                raise KeyedValueError((name,), Message.of("error.config.not_a_table", tables=list(TABLE_NAMES)))
            known = metadata.tables[name].columns
            for column in source.columns:
                if column not in known:
                    raise KeyedValueError((name, "columns", column), Message.of("error.config.not_a_column",
                                                                                table=name))
        return value

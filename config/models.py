"""Frozen pydantic models of the YAML configuration; unknown keys are rejected."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

Severity = Literal["general", "important", "major"]
AuditName = Literal["cs-weekly", "cs-monthly", "execution-monthly", "planning-quarterly", "data-quarterly"]
PeriodKind = Literal["week", "month", "quarter"]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _share(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


Fraction = Annotated[float, AfterValidator(_share)]


class GradingOverride(Strict):
    bands: tuple[float, float] | None = Field(
        None, description="Miss up to bands[0] is general, up to bands[1] important, beyond major.")


class EntityOverride(Strict):
    enabled: bool | None = None
    target: float | None = None
    warning_band: float | None = Field(None, ge=0)
    min_population: int | None = Field(None, ge=1)
    grading: GradingOverride | None = None
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)


class RuleOverride(EntityOverride):
    """A company's change to one rule of checks/; entity keys narrow it to one entity type."""

    entities: dict[str, EntityOverride] = Field(default_factory=dict)


class Deadlines(Strict):
    general: int = Field(15, ge=1, description="days to fix")
    important: int = Field(30, ge=1)
    major_plan: int = Field(7, ge=1, description="days for the major problem's rectification plan")
    major: int = Field(30, ge=1)


class Scoring(Strict):
    start: int = 100
    general: int = 1
    important: int = 3
    major: int = 10
    overdue: int = 2


class Thresholds(Strict):
    """config/thresholds.yaml: defaults every rule inherits, and per-rule overrides."""

    min_population: int = Field(20, ge=1)
    min_reviews_per_agent: int = Field(3, ge=1)
    warning_band_rate: Fraction = 0.02
    rate_bands: tuple[float, float] = (0.05, 0.15)
    full_target_bands: tuple[float, float] = (0.02, 0.10)
    dq_bands: tuple[Fraction, Fraction] = (0.01, 0.10)
    recurrence_periods: int = Field(2, ge=0)
    deadlines: Deadlines = Deadlines()
    scoring: Scoring = Scoring()
    rules: dict[str, RuleOverride] = Field(default_factory=dict)

    @field_validator("rate_bands", "full_target_bands", "dq_bands")
    @classmethod
    def _ascending(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] <= value[1]:
            raise ValueError("the first band must not exceed the second")
        return value


class AuditPlan(Strict):
    """One periodic audit: its period, areas, calendar and what it reads."""

    period: PeriodKind
    areas: tuple[str, ...]
    cron: str
    description: str = ""
    data_quality: Literal["read_tables", "all_tables"] = "read_tables"
    sampling: bool = False


class Sampling(Strict):
    """Attribute sampling for the weekly quality review (audit-rules section 5)."""

    confidence: Fraction = 0.95
    tolerable_rate: Fraction = 0.05
    expected_rate: Fraction = 0.01
    min_per_agent: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _expected_below_tolerable(self) -> Sampling:
        if self.expected_rate >= self.tolerable_rate:
            raise ValueError("expected_rate must be below tolerable_rate")
        return self


class SpotCheck(Strict):
    checks_per_month: int = Field(2, ge=0, le=20)
    areas: tuple[str, ...] = ("customer_service", "execution", "planning", "data_analysis")


class Audits(Strict):
    """config/audits.yaml: the audit calendar of seed 000 section 4."""

    audits: dict[AuditName, AuditPlan]
    sampling: Sampling = Sampling()
    spot_check: SpotCheck = SpotCheck()


class Recipient(Strict):
    staff_id: str | None = None
    email: str | None = None
    language: Literal["zh-CN", "en"] | None = None

    @model_validator(mode="after")
    def _one_address(self) -> Recipient:
        if not (self.staff_id or self.email):
            raise ValueError("a recipient needs staff_id or email")
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
            raise ValueError("give table or select, not both")
        return self


class SourceMapping(Strict):
    """config/source.yaml: the operational database's names for the contract tables."""

    tables: dict[str, TableSource] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value: dict[str, TableSource]) -> dict[str, TableSource]:
        from opsaudit.contract import TABLE_NAMES, metadata

        for name, source in value.items():
            if name not in TABLE_NAMES:
                raise ValueError(f"{name!r} is not a contract table ({', '.join(TABLE_NAMES)})")
            known = metadata.tables[name].columns
            for column in source.columns:
                if column not in known:
                    raise ValueError(f"{name}.columns: {column!r} is not a column of {name}")
        return value

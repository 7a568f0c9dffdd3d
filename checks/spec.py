"""Rule specs: the checks/*.yaml files as frozen models, and the effective rule per entity after a
company's overrides (config/thresholds.yaml) are applied."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsaudit.config.loader import display_path, format_validation_error, read_yaml
from opsaudit.config.models import RuleOverride, Severity, Thresholds
from opsaudit.errors import ConfigError, config_error
from opsaudit.i18n.render import Message

CHECKS_DIR = Path(__file__).resolve().parent
AREA_FILES: dict[str, str] = {
    "customer_service": "customer_service.yaml",
    "execution": "execution.yaml",
    "planning": "planning.yaml",
    "data_analysis": "data_analysis.yaml",
}

Kind = Literal["rate", "ratio", "mean", "record"]
Unit = Literal["rate", "ratio", "score"]
Op = Literal["at_least", "at_most"]
ParamValue = float | int | str | bool


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Condition(Strict):
    """A test on one fact of a record: all given comparisons must hold."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    eq: ParamValue | None = None
    in_: tuple[ParamValue, ...] | None = Field(None, alias="in")

    def holds(self, value: Any) -> bool:
        if value is None:
            return False
        checks = (
            self.gt is None or value > self.gt,
            self.ge is None or value >= self.ge,
            self.lt is None or value < self.lt,
            self.eq is None or value == self.eq,
            self.in_ is None or value in self.in_,
        )
        return all(checks)


class Escalation(Strict):
    """Raise a per-record problem to `severity` when every condition holds."""

    severity: Severity
    when: dict[str, Condition]


class EntitySpec(Strict):
    """How one rule judges one entity type; unset fields come from the rule."""

    audits: tuple[str, ...] | None = None
    kind: Kind | None = None
    metric: str | None = None
    unit: Unit | None = None
    op: Op | None = None
    target: float | None = None
    warning_band: float | None = None
    bands: tuple[float, float] | None = None
    min_population: int | None = None
    max_severity: Severity | None = None
    severity: Severity | None = None
    escalate: tuple[Escalation, ...] | None = None
    params: dict[str, ParamValue] = Field(default_factory=dict)


class RuleSpec(EntitySpec):
    """One rule of the catalogue (audit-rules.md section 4)."""

    version: int = Field(ge=1)
    entities: dict[str, EntitySpec]


class AreaSpec(Strict):
    area: str
    rules: dict[str, RuleSpec]


# Compared by identity: each effective rule is one object, and params is a dict.
@dataclass(frozen=True, eq=False)
class Rule:
    """One rule on one entity type, every setting resolved: what the engine runs."""

    rule_id: str
    version: int
    area: str
    entity_type: str
    kind: Kind
    metric: str
    unit: Unit
    op: Op
    target: float | None
    warning_band: float
    bands: tuple[float, float]
    min_population: int
    max_severity: Severity
    severity: Severity
    escalate: tuple[Escalation, ...]
    params: dict[str, ParamValue]
    audits: tuple[str, ...] | None

    @property
    def is_aggregate(self) -> bool:
        return self.kind != "record"

    def runs_in(self, audit: str) -> bool:
        return self.audits is None or audit in self.audits

    def severity_for(self, facts: dict[str, Any]) -> Severity:
        """The record's severity: the rule's own, raised by every escalation that holds."""
        order = ("general", "important", "major")
        level = order.index(self.severity)
        for step in self.escalate:
            if all(cond.holds(facts.get(name)) for name, cond in step.when.items()):
                level = max(level, order.index(step.severity))
        return order[level]  # type: ignore[return-value]


def load_area(area: str, path: Path | None = None) -> AreaSpec:
    """One area's spec file, validated; errors name the file and key."""
    path = path or CHECKS_DIR / AREA_FILES[area]
    data = read_yaml(path)
    try:
        spec = AreaSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, [(path, data)])) from None
    if spec.area != area:
        raise ConfigError(Message.of("error.config.area", file=display_path(path), key="area", expected=area,
                                     found=spec.area))
    return spec


def _default_bands(unit: Unit, target: float | None, thresholds: Thresholds) -> tuple[float, float]:
    if unit == "score":
        return (thresholds.rate_bands[0] * 100, thresholds.rate_bands[1] * 100)
    if unit == "rate" and target is not None and target >= 1:
        return thresholds.full_target_bands
    return thresholds.rate_bands


def _default_warning_band(unit: Unit, thresholds: Thresholds) -> float:
    return thresholds.warning_band_rate * (100 if unit == "score" else 1)


def resolve_rule(area: str, rule_id: str, spec: RuleSpec, entity_type: str, entity: EntitySpec,
                 override: RuleOverride | None, thresholds: Thresholds, where: tuple[str, str]) -> Rule | None:
    """The effective rule for one entity: spec, then entity spec, then company overrides.

    `where`: the file and key that set the rule, named by its errors."""
    layers: list[BaseModel] = [spec, entity]
    if override is not None:
        layers.append(override)
        if entity_type in override.entities:
            layers.append(override.entities[entity_type])

    def pick(name: str) -> Any:
        value = None
        for layer in layers:
            if name in layer.model_fields and getattr(layer, name) is not None:
                value = getattr(layer, name)
        return value

    enabled = [flag for flag in (getattr(layer, "enabled", None) for layer in layers) if flag is not None]
    if enabled and not enabled[-1]:
        return None
    kind: Kind = pick("kind") or "record"
    unit: Unit = pick("unit") or "rate"
    target = pick("target")
    _check_target(unit, target, kind, where)
    grading = [getattr(layer, "grading", None) for layer in layers[2:]]
    bands = next((g.bands for g in reversed(grading) if g is not None and g.bands), None)
    params = _merge_params(layers, where)
    default_min = thresholds.min_reviews_per_agent if entity_type == "agent" and unit == "score" \
        else thresholds.min_population
    return Rule(
        rule_id=rule_id, version=spec.version, area=area, entity_type=entity_type, kind=kind,
        metric=pick("metric") or rule_id, unit=unit, op=pick("op") or "at_least", target=target,
        warning_band=pick("warning_band") if pick("warning_band") is not None
        else _default_warning_band(unit, thresholds),
        bands=bands or pick("bands") or _default_bands(unit, target, thresholds),
        min_population=pick("min_population") or (default_min if kind != "record" else 1),
        max_severity=pick("max_severity") or (thresholds.agent_max_severity if entity_type == "agent" else "major"),
        severity=pick("severity") or "general", escalate=pick("escalate") or (),
        params=params, audits=pick("audits"),
    )


# The range of a target by the rule's unit: a rate is a share, a score is out of 100.
_TARGET_RANGES: dict[str, tuple[float, float]] = {"rate": (0, 1), "score": (0, 100)}


def _check_target(unit: Unit, target: float | None, kind: Kind, where: tuple[str, str]) -> None:
    if kind == "record":
        return
    file, key = where[0], f"{where[1]}.target"
    if target is None:
        raise config_error(file, key, Message.of("error.config.target_required", kind=kind))
    if unit in _TARGET_RANGES and not _TARGET_RANGES[unit][0] <= target <= _TARGET_RANGES[unit][1]:
        low, high = _TARGET_RANGES[unit]
        raise config_error(file, key, Message.of("error.value.between", low=low, high=high))
    if unit == "ratio" and target < 0:
        raise config_error(file, key, Message.of("error.value.not_negative"))


def _parameter_kind(value: ParamValue) -> str:
    """The kind of value a parameter takes, as the catalogue names it (enum.parameter_kind)."""
    if isinstance(value, bool):
        return "switch"
    return "number" if isinstance(value, (int, float)) else "text" if isinstance(value, str) else "date"


def _merge_params(layers: list[BaseModel], where: tuple[str, str]) -> dict[str, ParamValue]:
    params: dict[str, ParamValue] = {}
    numbers = (int, float)
    for index, layer in enumerate(layers):
        for key, value in layer.params.items():  # type: ignore[attr-defined]
            if index < 2:  # the shipped spec declares the parameters
                params[key] = value
                continue
            if key not in params:
                problem = Message.of("error.config.unknown_parameter", known=sorted(params)) if params \
                    else Message.of("error.config.no_parameters")
                raise config_error(where[0], f"{where[1]}.params.{key}", problem)
            declared = type(params[key])
            if not (declared is type(value) or (declared in numbers and type(value) in numbers)):
                raise config_error(where[0], f"{where[1]}.params.{key}", Message.of(
                    "error.config.parameter_kind", kind=_parameter_kind(params[key])))
            params[key] = value
    return params


def effective_rules(thresholds: Thresholds, *, thresholds_file: str = "config/thresholds.yaml",
                    areas: tuple[str, ...] = tuple(AREA_FILES)) -> list[Rule]:
    """Every enabled rule per entity type, with the company's overrides applied and checked."""
    specs = {area: load_area(area) for area in areas}
    known = {rule_id for spec in specs.values() for rule_id in spec.rules}
    for rule_id in thresholds.rules:
        if rule_id not in known and not rule_id.startswith("dq."):
            raise config_error(thresholds_file, f"rules.{rule_id}", Message.of("error.config.unknown_rule"))
    rules: list[Rule] = []
    for area, area_spec in specs.items():
        for rule_id, spec in area_spec.rules.items():
            override = thresholds.rules.get(rule_id)
            if override is not None:
                for entity_type in override.entities:
                    if entity_type not in spec.entities:
                        raise config_error(thresholds_file, f"rules.{rule_id}.entities.{entity_type}",
                                           Message.of("error.config.no_entity", entities=list(spec.entities)))
            for entity_type, entity in spec.entities.items():
                where = (thresholds_file if override is not None
                         else display_path(CHECKS_DIR / AREA_FILES[area]), f"rules.{rule_id}")
                rule = resolve_rule(area, rule_id, spec, entity_type, entity, override, thresholds, where)
                if rule is not None:
                    rules.append(rule)
    return rules


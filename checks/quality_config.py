"""checks/data_quality.yaml: the dq.* rules as data (titles, switches, parameters), validated."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opsaudit.config.loader import dotted_key, key_problem, read_yaml
from opsaudit.config.models import RuleOverride
from opsaudit.contract import metadata
from opsaudit.errors import ConfigError, config_error
from opsaudit.i18n.render import Message

RULES_FILE = Path(__file__).resolve().parent / "data_quality.yaml"
RULE_IDS: tuple[str, ...] = (
    "dq.not_null", "dq.in_set", "dq.range", "dq.type", "dq.unique", "dq.reference", "dq.time_order", "dq.freshness",
)


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DqRule(Strict):
    enabled: bool = True


class RangeRule(DqRule):
    future_allowed: tuple[str, ...] = Field(
        (), description="table.column timestamps that may lie in the future (deadlines, plans)")
    earliest: date | None = Field(
        date(2000, 1, 1), description="a timestamp before this day is implausible (a 1970 default, a typo)")

    @field_validator("future_allowed")
    @classmethod
    def _timestamp_columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            table, _, column = item.partition(".")
            contract = metadata.tables.get(table)
            found = contract.c.get(column) if contract is not None else None
            if found is None or not isinstance(found.type, sa.DateTime):
                raise ValueError(Message.of("error.config.not_a_timestamp", value=item, example="tasks.due_at"))
        return value


class FreshnessRule(DqRule):
    freshness_days: int = Field(2, ge=0, description="the newest row at most this many days before the end")


class DqRules(Strict):
    not_null: DqRule = Field(alias="dq.not_null")
    in_set: DqRule = Field(alias="dq.in_set")
    range: RangeRule = Field(alias="dq.range")
    type: DqRule = Field(alias="dq.type")
    unique: DqRule = Field(alias="dq.unique")
    reference: DqRule = Field(alias="dq.reference")
    time_order: DqRule = Field(alias="dq.time_order")
    freshness: FreshnessRule = Field(alias="dq.freshness")

    def rule(self, rule_id: str) -> DqRule:
        return getattr(self, rule_id.removeprefix("dq."))

    def enabled(self, rule_id: str) -> bool:
        return self.rule(rule_id).enabled


class DataQualityRules(Strict):
    """The whole file."""

    rules: DqRules


def load_rules(path: Path = RULES_FILE) -> DataQualityRules:
    """The dq rules from `path`; a ConfigError names the file and the key."""
    return _load(path.resolve())


@cache
def _load(path: Path) -> DataQualityRules:
    try:
        return DataQualityRules.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise _one_line(_label(path), (), exc) from None


def _label(path: Path) -> str:
    # The shipped file is named as it sits in the repository, wherever the process runs.
    return "checks/data_quality.yaml" if path == RULES_FILE else str(path)


def _one_line(label: str, prefix: tuple[str, ...], exc: ValidationError) -> ConfigError:
    """The first error as one line: the file, the dotted key below `prefix`, the problem."""
    error = exc.errors()[0]
    return config_error(label, dotted_key((*prefix, *error["loc"])), key_problem(error))


def with_overrides(rules: DataQualityRules, overrides: Mapping[str, RuleOverride],
                   where: str = "config/thresholds.yaml") -> DataQualityRules:
    """The dq rules with a company's `rules.dq.*` entries of thresholds.yaml applied (enabled, params)."""
    changed: dict[str, DqRule] = {}
    for rule_id, override in overrides.items():
        if not rule_id.startswith("dq."):
            continue
        if rule_id not in RULE_IDS:
            raise config_error(where, f"rules.{rule_id}", Message.of("error.config.unknown_rule"))
        current = rules.rules.rule(rule_id)
        update: dict[str, object] = {} if override.enabled is None else {"enabled": override.enabled}
        for key, value in override.params.items():
            if key not in type(current).model_fields or key == "enabled":
                known = sorted(set(type(current).model_fields) - {"enabled"})
                raise config_error(where, f"rules.{rule_id}.params.{key}",
                                   Message.of("error.config.unknown_parameter", known=known))
            update[key] = value
        try:
            changed[rule_id] = type(current).model_validate({**current.model_dump(by_alias=True), **update})
        except ValidationError as exc:
            raise _one_line(where, ("rules", rule_id, "params"), exc) from None
    if not changed:
        return rules
    merged = {rule_id: changed.get(rule_id, rules.rules.rule(rule_id)) for rule_id in RULE_IDS}
    return DataQualityRules(rules=DqRules.model_validate(merged))

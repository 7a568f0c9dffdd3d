"""Configuration: shipped defaults load; overrides merge; every error names the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsaudit.checks.spec import effective_rules
from opsaudit.config.loader import load_config
from opsaudit.errors import ConfigError
from opsaudit.settings import load_settings


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def rules_with(tmp_path: Path, thresholds: str) -> list:
    write(tmp_path / "config", "thresholds.yaml", thresholds)
    config = load_config(tmp_path / "config")
    return effective_rules(config.thresholds, thresholds_file="config/thresholds.yaml")


def test_defaults_load_without_a_config_folder(tmp_path):
    config = load_config(tmp_path / "absent")
    assert config.thresholds.min_population == 20
    assert set(config.audits.audits) == {"cs-weekly", "cs-monthly", "execution-monthly", "planning-quarterly",
                                         "data-quarterly"}
    assert config.source.tables == {}


def test_override_changes_one_rule_target(tmp_path):
    rules = rules_with(tmp_path, "rules:\n  cs.satisfaction_rate:\n    target: 0.92\n")
    targets = {(r.rule_id, r.entity_type): r.target for r in rules}
    assert targets[("cs.satisfaction_rate", "department")] == 0.92
    assert targets[("cs.satisfaction_rate", "agent")] == 0.92
    assert targets[("cs.first_response_rate", "department")] == 0.95


def test_entity_override_narrows_to_one_entity(tmp_path):
    rules = rules_with(tmp_path, "rules:\n  cs.satisfaction_rate:\n    entities:\n      agent: {min_population: 30}\n")
    minimums = {(r.rule_id, r.entity_type): r.min_population for r in rules}
    assert minimums[("cs.satisfaction_rate", "agent")] == 30
    assert minimums[("cs.satisfaction_rate", "department")] == 20


def test_disabled_rule_is_not_run(tmp_path):
    rules = rules_with(tmp_path, "rules:\n  exec.idle_resources: {enabled: false}\n")
    assert "exec.idle_resources" not in {r.rule_id for r in rules}


@pytest.mark.parametrize(("text", "message"), [
    ("rules:\n  cs.satisfaction_rate:\n    target: 90\n",
     "config/thresholds.yaml: rules.cs.satisfaction_rate.target: must be between 0 and 1"),
    ("rules:\n  cs.satisfaction_rate:\n    targett: 0.9\n",
     "config/thresholds.yaml: rules.cs.satisfaction_rate.targett: unknown key"),
    ("rules:\n  cs.no_such_rule:\n    target: 0.9\n",
     "config/thresholds.yaml: rules.cs.no_such_rule: unknown audit rule"),
    ("min_population: many\n", "config/thresholds.yaml: min_population: 'many' is not a whole number"),
    ("dq_bands: [0.2, 0.1]\n", "config/thresholds.yaml: dq_bands: must be two ascending numbers from 0"),
    ("rules:\n  cs.first_response_rate:\n    params: {sla_hours_fax: 2}\n",
     "config/thresholds.yaml: rules.cs.first_response_rate.params.sla_hours_fax: unknown parameter"),
    ("rules:\n  cs.qa_attitude:\n    target: 120\n",
     "config/thresholds.yaml: rules.cs.qa_attitude.target: must be between 0 and 100"),
])
def test_threshold_errors_name_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        rules_with(tmp_path, text)
    assert caught.value.text("en").startswith(message)
    assert "\n" not in caught.value.text("en") and "\n" not in str(caught.value)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("audits.yaml", "sampling:\n  confidence: 1.5\n",
     "config/audits.yaml: sampling.confidence: must be between 0 and 1"),
    ("audits.yaml", "audits:\n  cs-weekly:\n    period: fortnight\n",
     "config/audits.yaml: audits.cs-weekly.period: 'fortnight' is not one of week, month, quarter"),
    ("source.yaml", "tables:\n  tickts: {table: crm_cases}\n",
     "config/source.yaml: tables.tickts: not a contract table"),
    ("source.yaml", "tables:\n  tickets: {table: a, select: 'select 1'}\n",
     "config/source.yaml: tables.tickets: give table or select, not both"),
    ("recipients.yaml", "alerts: [{language: en}]\n",
     "config/recipients.yaml: alerts.0: a recipient needs staff_id or email"),
    ("thresholds.yaml", "rules: [1, 2\n", "config/thresholds.yaml: line 2, column 1: not valid YAML"),
    ("schedule.yaml", "x: 1\n", "config/schedule.yaml: unknown configuration file"),
    ("deliverables.yaml", "plans:\n  departments: everyone\n",
     "config/deliverables.yaml: plans.departments: must be below_operations or a list of department ids"),
    ("deliverables.yaml", "reports:\n  departments: below_operations\n",
     "config/deliverables.yaml: reports.departments: must be after_first_report or a list of department ids"),
    ("deliverables.yaml", "plans:\n  due:\n    weekly: {days_before: 1}\n",
     "config/deliverables.yaml: plans.due.weekly: 'weekly' is not one of annual, quarterly, monthly"),
    ("deliverables.yaml", "reports:\n  due:\n    monthly: {days_after: 0}\n",
     "config/deliverables.yaml: reports.due.monthly.days_after: must be at least 1"),
    ("deliverables.yaml", "plans:\n  due:\n    annual: {days_after: 5}\n",
     "config/deliverables.yaml: plans.due.annual.days_after: unknown key"),
])
def test_config_file_errors_name_file_and_key(tmp_path, name, text, message):
    write(tmp_path / "config", name, text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "config")
    assert caught.value.text("en").startswith(message), caught.value.text("en")


@pytest.mark.parametrize(("name", "text", "line"), [
    ("thresholds.yaml", "min_population: many\n", "config/thresholds.yaml：min_population：“many”不是整数"),
    ("thresholds.yaml", "min_population: true\n",
     "config/thresholds.yaml：min_population：应为数字，不能是true或false"),
    ("thresholds.yaml", "rules: [1, 2\n", "config/thresholds.yaml：第2行第1列：不是有效的YAML格式"),
    ("thresholds.yaml", "a: 1\na: 2\n", "config/thresholds.yaml：第2行：配置项“a”重复出现"),
    ("audits.yaml", "sampling:\n  expected_rate: 0.5\n",
     "config/audits.yaml：sampling：expected_rate必须小于tolerable_rate"),
    ("audits.yaml", "audits:\n  cs-weekly:\n    period: fortnight\n",
     "config/audits.yaml：audits.cs-weekly.period：“fortnight”不是可选值之一：week、month、quarter"),
    ("audits.yaml", "audits:\n  cs-monthly:\n    cron: '0 8 31 2 *'\n",
     "config/audits.yaml：audits.cs-monthly.cron：“0 8 31 2 *”永远不会触发：没有日期同时符合其中的日和月"),
    ("audits.yaml", "spot_check: {checks_per_month: 99}\n",
     "config/audits.yaml：spot_check.checks_per_month：不能大于20"),
    ("source.yaml", "tables:\n  tickets: {columns: {nope: x}}\n",
     "config/source.yaml：tables.tickets.columns.nope：不是tickets表的字段"),
    ("recipients.yaml", "alerts: [{language: en}]\n", "config/recipients.yaml：alerts.0：收件人须填写staff_id或email"),
    ("schedule.yaml", "x: 1\n", "config/schedule.yaml：不是可识别的配置文件（应为thresholds.yaml、audits.yaml、"
                                "recipients.yaml、source.yaml、deliverables.yaml之一）"),
    ("deliverables.yaml", "plans:\n  due:\n    annual: {days_after: 5}\n",
     "config/deliverables.yaml：plans.due.annual.days_after：不是可识别的配置项"),
])
def test_config_errors_read_in_chinese(tmp_path, monkeypatch, name, text, line):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config", name, text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "config")
    assert caught.value.text("zh-CN") == line


def test_rule_override_errors_read_in_chinese(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        rules_with(tmp_path, "rules:\n  cs.first_response_rate:\n    params: {sla_hours_phone: soon}\n")
    assert caught.value.text("zh-CN") == ("config/thresholds.yaml："
                                         "rules.cs.first_response_rate.params.sla_hours_phone：应为数字")
    with pytest.raises(ConfigError) as caught:
        rules_with(tmp_path, "rules:\n  cs.satisfaction_rate:\n    target: 90\n")
    assert caught.value.text("zh-CN") == "config/thresholds.yaml：rules.cs.satisfaction_rate.target：必须在0到1之间"
    with pytest.raises(ConfigError) as caught:
        rules_with(tmp_path, "rules:\n  cs.satisfaction_rate:\n    entities: {robot: {target: 0.5}}\n")
    assert caught.value.text("zh-CN") == ("config/thresholds.yaml：rules.cs.satisfaction_rate.entities.robot："
                                         "这条规则不针对此类对象（可用：department、agent）")


def test_error_in_a_default_key_blames_the_override_only_when_it_set_it(tmp_path):
    write(tmp_path / "config", "audits.yaml", "spot_check: {checks_per_month: 99}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "config")
    assert caught.value.text("en").startswith("config/audits.yaml: spot_check.checks_per_month")


def test_settings_defaults_and_secrets(monkeypatch, tmp_path):
    settings = load_settings()
    assert settings.database.startswith("sqlite:///") and settings.database.endswith("opsaudit.db")
    assert settings.store == settings.database
    assert settings.timezone == "Asia/Shanghai" and settings.language == "zh-CN"
    assert settings.report_review == "required" and settings.operations_department == "OPS"
    monkeypatch.setenv("OPSAUDIT_DATABASE_URL", "postgresql+psycopg://u:hunter2@db/ops")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert settings.store == "postgresql+psycopg://u:hunter2@db/ops"


def test_bad_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("OPSAUDIT_LANGUAGE", "en")
    monkeypatch.setenv("OPSAUDIT_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match=r"^environment: OPSAUDIT_TIMEZONE: .*unknown time zone"):
        load_settings()


def test_a_numeric_parameter_takes_a_fraction(tmp_path):
    rules = rules_with(tmp_path, "rules:\n  cs.first_response_rate:\n    params: {sla_hours_phone: 0.5}\n")
    (rule,) = [r for r in rules if r.rule_id == "cs.first_response_rate" and r.entity_type == "department"]
    assert rule.params["sla_hours_phone"] == 0.5
    with pytest.raises(ConfigError) as caught:
        rules_with(tmp_path, "rules:\n  cs.first_response_rate:\n    params: {sla_hours_phone: soon}\n")
    assert caught.value.text("en").endswith("params.sla_hours_phone: must be a number")


def test_deliverables_default_to_the_rules_and_merge_a_companys_changes(tmp_path):
    shipped = load_config(tmp_path / "absent").deliverables
    assert shipped.plans.departments == "below_operations" and shipped.reports.departments == "after_first_report"
    assert {level: due.days_before for level, due in shipped.plans.due.items()} == \
        {"annual": 1, "quarterly": 1, "monthly": 1}
    assert {kind: due.days_after for kind, due in shipped.reports.due.items()} == \
        {"monthly": 5, "quarterly": 10, "annual": 10}
    write(tmp_path / "config", "deliverables.yaml", "plans:\n  departments: [CS1, CS2]\n  due:\n    monthly: null\n")
    changed = load_config(tmp_path / "config")
    assert changed.deliverables.plans.departments == ("CS1", "CS2")
    assert changed.deliverables.plans.due == {"annual": shipped.plans.due["annual"],
                                               "quarterly": shipped.plans.due["quarterly"], "monthly": None}
    assert changed.deliverables.reports == shipped.reports
    assert changed.digest() != load_config(tmp_path / "absent").digest()

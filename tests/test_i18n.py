"""The message catalogue and its formatters: both languages complete and consistent, figures for people."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from opsaudit.contract import metadata
from opsaudit.i18n import LANGUAGES, CatalogueError, catalogue, format_value, has_message, resolve_language, text
from opsaudit.i18n.catalogue import MESSAGES_DIR, load_messages
from opsaudit.i18n.render import is_formatter, placeholders

ZH, EN = "zh-CN", "en"
# Keys that hold Babel date patterns, not prose.
PATTERNS = ("format.date_pattern", "format.datetime_pattern")
LATIN = re.compile(r"[A-Za-z]+")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def _prose(template: str) -> str:
    """The template without its placeholders: the words the catalogue itself says."""
    return re.sub(r"\{[^{}]*\}", "", template)


# --- the catalogue ---------------------------------------------------------------------------

def test_every_key_exists_in_both_languages():
    zh, en = set(catalogue(ZH)), set(catalogue(EN))
    assert sorted(zh - en) == [] and sorted(en - zh) == []
    files = {language: sorted(p.name for p in (MESSAGES_DIR / language).glob("*.yaml")) for language in LANGUAGES}
    assert files[ZH] == files[EN] and "rules.yaml" in files[ZH]


def test_both_languages_use_the_same_placeholders():
    differ = {key: (placeholders(template), placeholders(catalogue(EN)[key]))
              for key, template in catalogue(ZH).items() if placeholders(template) != placeholders(catalogue(EN)[key])}
    assert differ == {}


def test_every_placeholder_names_a_formatter_and_every_enum_exists():
    for language in LANGUAGES:
        messages = catalogue(language)
        enums = {key.rsplit(".", 1)[0] for key in messages if key.startswith("enum.")}
        for key, template in messages.items():
            for name, formatter in placeholders(template):
                assert is_formatter(formatter), f"{language} {key}: {{{name}:{formatter}}}"
                if formatter.startswith("enum."):
                    assert formatter in enums, f"{language} {key}: no catalogue entries for {formatter}"


def test_chinese_messages_have_no_latin_words_and_english_ones_no_chinese():
    # Help pages and usage errors quote what is typed (options, codes, variables), in either script.
    typed = tuple(key for key in catalogue(ZH) if key.startswith("cli_help."))
    zh_words = {key: LATIN.findall(_prose(t)) for key, t in catalogue(ZH).items() if key not in (*PATTERNS, *typed)}
    assert {key: words for key, words in zh_words.items() if words} == {}
    en_chinese = {key: CJK.findall(_prose(t)) for key, t in catalogue(EN).items() if key not in typed}
    assert {key: chars for key, chars in en_chinese.items() if chars} == {}


def test_each_glossary_term_is_translated_one_way():
    """Wherever a Chinese message uses a term of seed 000, the English message at that key uses its
    glossary translation (longest terms first, so 整改方案 is not also read as 整改)."""
    zh, en = catalogue(ZH), catalogue(EN)
    terms = sorted(((zh[key], en[key].lower()) for key in zh if key.startswith("glossary.")),
                   key=lambda term: -len(term[0]))
    missing: list[str] = []
    for key, template in zh.items():
        rest = _prose(template)
        for chinese, english in terms:
            if chinese in rest:
                rest = rest.replace(chinese, "|")
                if english not in en[key].lower():
                    missing.append(f"{key}: {chinese} -> {english!r} not in {en[key]!r}")
    assert missing == []


def test_every_contract_table_and_column_has_a_readable_name():
    for language in LANGUAGES:
        messages = catalogue(language)
        for table in metadata.tables.values():
            assert f"contract.table.{table.name}" in messages
            assert [c.name for c in table.columns if f"contract.column.{table.name}.{c.name}" not in messages] == []


def test_every_enumeration_of_the_contract_is_translated():
    from opsaudit.contract import ENUMS
    from opsaudit.i18n.findings import ENUM_OF_COLUMN as names

    assert set(names) == set(ENUMS)
    for (table, column), values in ENUMS.items():
        for value in values:
            assert text(f"enum.{names[(table, column)]}.{value}", ZH) != value
            assert text(f"enum.{names[(table, column)]}.{value}", EN)


def test_the_severities_statuses_and_audits_read_as_the_regulation_names_them():
    levels = ("general", "important", "major")
    assert [text(f"enum.severity.{s}", ZH) for s in levels] == ["一般问题", "重要问题", "重大问题"]
    assert [text(f"enum.severity.{s}", EN) for s in levels] == ["general problem", "important problem", "major problem"]
    assert text("enum.audit_kind.spot_check", ZH) == "不定期抽查" and text("enum.audit.special", EN) == "special audit"
    assert text("handling.major", ZH, deadline=30, plan_deadline=7) == (
        "运营部经理应立即组织召开专题会议，研究制定解决方案，并成立专项整改工作小组推进整改；"
        "整改方案须在7天内提交，整改期限30天，整改情况及时向上级领导汇报。")


def test_every_audit_has_a_report_title_that_names_it_once():
    """运营执行月度稽查 gets 运营执行月度稽查报告, not 稽查稽查报告; the titles name the audits themselves."""
    audits = [key.removeprefix("enum.audit.") for key in catalogue(ZH) if key.startswith("enum.audit.")]
    reported = [audit for audit in audits if audit not in ("rectification-tracking", "circulation", "key-task-watch")]
    titles = {audit: text("report.title", ZH, audit=audit) for audit in reported}
    assert titles["execution-monthly"] == "运营执行月度稽查报告" and titles["spot-check"] == "不定期抽查报告"
    assert titles["cs-monthly"] == "客户服务月度全面评估稽查报告"
    for audit, title in titles.items():
        assert title.startswith(text(f"enum.audit.{audit}", ZH)) and title.endswith("报告")
        assert "稽查稽查" not in title and "抽查稽查" not in title
        assert text("report.title", EN, audit=audit) == f"Audit report: {text(f'enum.audit.{audit}', EN)}"


def test_a_catalogue_file_with_a_duplicate_key_or_a_bare_yes_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("enum:\n  x: 一\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("enum:\n  x: 二\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"b\.yaml: enum\.x: already defined in .*a\.yaml"):
        load_messages(tmp_path)
    (tmp_path / "b.yaml").write_text("enum:\n  yes: 是\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"b\.yaml: enum\.True: quote this key"):
        load_messages(tmp_path)
    (tmp_path / "b.yaml").write_text("enum:\n  y: 3\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"b\.yaml: enum\.y: expected text, found int"):
        load_messages(tmp_path)


def test_unknown_keys_and_languages_are_clear_errors(monkeypatch):
    with pytest.raises(CatalogueError, match=r"no message 'enum\.severity\.bogus' in the en catalogue"):
        text("enum.severity.bogus", EN)
    with pytest.raises(CatalogueError, match=r"unknown language 'fr' \(expected zh-CN or en\)"):
        text("enum.severity.major", "fr")
    assert resolve_language(None) == ZH
    monkeypatch.setenv("OPSAUDIT_LANGUAGE", "en")
    assert resolve_language(None) == EN


# --- the formatters --------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "formatter", "chinese", "english"), [
    (60132, "count", "60,132", "60,132"),
    (3957.0, "count", "3,957", "3,957"),
    (Decimal("8301.0"), "count", "8,301", "8,301"),
    (12.5, "count", "12.5", "12.5"),
    (12345.678, "number", "12,345.68", "12,345.68"),
    (0.974493, "percent", "97.4%", "97.4%"),
    (0.8205, "percent", "82.1%", "82.1%"),  # half up, as people round
    (1.0, "percent", "100.0%", "100.0%"),
    (0.00004, "percent", "<0.1%", "<0.1%"),
    (0, "percent", "0.0%", "0.0%"),
    (0.08, "points", "8.0", "8.0"),
    (72.5, "score", "72.5分", "72.5 points"),
    (80, "score", "80分", "80 points"),
    (120.25, "hours", "120.3小时", "120.3 hours"),
    (12500.5, "amount", "12,500.5元", "12,500.5 yuan"),
    (46, "days", "46天", "46 days"),
    (1, "days", "1天", "1 day"),
    (3.5, "days", "3.5天", "3.5 days"),
    (46.25, "whole_days", "46天", "46 days"),
    ("2026-09-15T00:00:00", "date", "2026-09-15", "Sep 15, 2026"),
    ("2026-09-15 14:30:00", "date", "2026-09-15", "Sep 15, 2026"),
    (datetime(2026, 9, 15, 14, 30), "datetime", "2026-09-15 14:30", "Sep 15, 2026, 14:30"),
    (datetime(2026, 9, 15, 14, 30, tzinfo=timezone(timedelta(hours=8))), "datetime", "2026-09-15 14:30",
     "Sep 15, 2026, 14:30"),
    (datetime(2026, 12, 7, 8, 0), "weekday", "周一", "Mon"),
    ("2026-10", "period", "2026年10月", "October 2026"),
    ("2026Q3", "period", "2026年第三季度", "Q3 2026"),
    ("2026-W46", "period", "2026年第46周", "week 46 of 2026"),
    ("2027-W01", "period", "2027年第1周", "week 1 of 2027"),
    ("2026", "period", "2026年", "2026"),
    ("2026-10-01..2026-10-31", "period", "2026-10-01至2026-10-31", "Oct 1, 2026 to Oct 31, 2026"),
    (["phone", "chat"], "list", "phone、chat", "phone, chat"),
    ("critical", "enum.priority", "紧急", "critical"),
    ("in_progress", "enum.task_status", "进行中", "in progress"),
    (True, "enum.yes_no", "是", "yes"),
    ("TSK-00898", "text", "TSK-00898", "TSK-00898"),
])
def test_values_are_formatted_for_people(value, formatter, chinese, english):
    assert format_value(value, formatter, ZH) == chinese
    assert format_value(value, formatter, EN) == english


@pytest.mark.parametrize("formatter", ["count", "percent", "date", "period", "enum.priority", "text", "days"])
@pytest.mark.parametrize("value", [None, "", "   ", float("nan")])
def test_a_missing_value_is_a_dash(value, formatter):
    assert format_value(value, formatter, ZH) == "—"


@pytest.mark.parametrize(("value", "formatter"), [
    ("abc", "count"), ("n/a", "percent"), ("yesterday", "date"), ("2026-13", "period"), (True, "count"),
    ("urgent", "enum.priority"),
])
def test_a_value_a_formatter_cannot_read_is_shown_as_it_is(value, formatter):
    assert format_value(value, formatter, EN) == str(value)


def test_text_fills_a_template_and_never_raises_on_missing_values():
    assert text("finding.subject.agent", ZH) == "—的客服人员—"
    assert text("label.named", EN, name="客服三部", id="D03") == "客服三部 (D03)"
    assert text("format.period.quarter", ZH, year=2026, quarter=4) == "2026年第四季度"


def test_an_unknown_formatter_is_a_catalogue_error():
    with pytest.raises(CatalogueError, match="unknown formatter 'money'"):
        format_value(1, "money", ZH)


def test_utc_times_keep_their_own_wall_time():
    assert format_value(datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "datetime", ZH) == "2026-01-02 03:04"


def test_every_command_and_option_has_its_help_in_the_catalogue():
    """`opsaudit --help` in either language: no command or option falls back to its English help."""
    import typer.main

    from opsaudit.cli import app

    def missing(command, path: tuple[str, ...]) -> list[str]:
        name = " ".join(path) or "opsaudit"
        gaps = [] if has_message(f"cli_help.command.{name}", ZH) else [name]
        gaps += [f"{name} {param.name}" for param in command.params
                 if not any(has_message(key, ZH) for key in (f"cli_help.command_option.{name}.{param.name}",
                                                               f"cli_help.option.{param.name}"))]
        for sub_name, sub in getattr(command, "commands", {}).items():
            gaps += missing(sub, (*path, sub_name))
        return gaps

    assert missing(typer.main.get_command(app), ()) == []


def test_help_and_usage_errors_are_in_the_readers_language():
    import subprocess
    import sys

    def opsaudit(*args: str, language: str = "zh-CN") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "opsaudit", *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "OPSAUDIT_LANGUAGE": language, "COLUMNS": "200"})

    chinese = opsaudit("findings", "list", "--help").stdout
    assert "用法：" in chinese and "列出稽查发现，问题最严重的在前。" in chinese and "显示此帮助并退出。" in chinese
    assert "Only recurring findings" not in chinese
    assert "List audit findings, most severe first." in opsaudit("findings", "list", "--help", language="en").stdout
    assert "List audit findings, most severe first." in opsaudit("findings", "list", "--help", "--lang", "en").stdout
    for args, said in ((("findings", "assign", "x"), "缺少选项 --actor"),
                       (("findings", "list", "--bogus"), "没有选项 --bogus"),
                       (("run", "nope"), "AUDIT的值无效：“nope”不是可选值之一：cs-weekly、cs-monthly"),
                       (("findings", "list", "--period", "2026/11"), "--period的值无效：“2026/11”不是稽查期间"),
                       (("findings", "lst"), "没有命令“lst”（是否要用：list）")):
        result = opsaudit(*args)
        assert result.returncode == 2 and said in result.stderr and result.stderr.count("\n") == 1, result.stderr
    english = opsaudit("findings", "assign", "x", language="en")
    assert "missing option --actor (see `" in english.stderr


def test_a_finding_names_what_it_is_about_as_people_do():
    """Titles, mails and the CSV's entity column: the whole company in words, never its stored id."""
    from opsaudit.i18n import entity_label, entity_reference

    def finding(entity_type: str, entity_id: str, **facts: str) -> dict:
        return {"entity_type": entity_type, "entity_id": entity_id, "facts": facts}

    assert [entity_label(finding("company", "company"), language) for language in (ZH, EN)] == [
        "全公司", "the whole company"]
    assert entity_label(finding("department", "CS1", department_name="客服一部"), ZH) == "客服一部"
    assert entity_label({"entity_type": "department", "entity_id": "CS1", "facts": None}, ZH) == "CS1"
    assert entity_label(finding("agent", "S007", agent_name="王芳", department_name="客服一部"), ZH) == "王芳（S007）"
    assert entity_label(finding("task", "TSK-00898"), EN) == "TSK-00898"
    assert entity_reference("company", "company", ZH) == "全公司"
    assert entity_reference("task", "TSK-00898", ZH) == "任务 TSK-00898"

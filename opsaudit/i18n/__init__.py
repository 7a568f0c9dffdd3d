"""The language layer: one keyed message catalogue per language, locale formatting, finding texts.

    text("enum.severity.major", "zh-CN")                        -> 重大问题
    text("handling.general", "en", deadline=15)                 -> The responsible department ...
    render_finding("exec.overdue_task", "task", facts, "zh-CN") -> FindingText(title, description)
    recommendation("cs.satisfaction_rate", "en")                -> what the department should do
"""

from opsaudit.i18n.catalogue import (
    LANGUAGES,
    CatalogueError,
    Language,
    catalogue,
    check_language,
    has_message,
    resolve_language,
)
from opsaudit.i18n.findings import (
    FindingText,
    UnknownRuleError,
    entity_label,
    entity_reference,
    recommendation,
    render_finding,
    rule_ids,
)
from opsaudit.i18n.render import MISSING, Message, format_value, render, text

__all__ = [
    "LANGUAGES", "MISSING", "CatalogueError", "FindingText", "Language", "Message", "UnknownRuleError", "catalogue",
    "check_language", "entity_label", "entity_reference", "format_value", "has_message", "recommendation", "render",
    "render_finding", "resolve_language", "rule_ids", "text",
]

"""Finding titles and descriptions from the rule's templates, in either language."""

from __future__ import annotations

import string
from typing import Any

from opsaudit.checks.spec import Rule

LANGUAGES = ("zh-CN", "en")


class _LenientFormatter(string.Formatter):
    """str.format that shows a missing or unformattable value as '—' or plainly, never raises."""

    def get_value(self, key: int | str, args: Any, kwargs: dict[str, Any]) -> Any:
        return kwargs.get(str(key)) if isinstance(key, str) else super().get_value(key, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return "—"
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _LenientFormatter()


def render(template: str, values: dict[str, Any]) -> str:
    return _FORMATTER.vformat(template, (), values)


def finding_text(rule: Rule, values: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{language: {"title", "description"}} for both report languages."""
    return {
        language: {"title": rule.title.get(language), "description": render(rule.description.get(language), values)}
        for language in LANGUAGES
    }

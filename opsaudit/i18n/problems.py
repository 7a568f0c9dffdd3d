"""What is wrong with a value, in the catalogue's words, from one of pydantic's validation errors.

The OPSAUDIT_* settings and the YAML configuration are both validated by pydantic, whose messages
are English; each error type a person can cause is worded here instead (`error.value.*`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic_core import ErrorDetails

from opsaudit.i18n.render import Message

# A value quoted back is cut short: the whole of a mapping given where a number belongs helps nobody.
_SHOWN_LIMIT = 60

_BOUNDS = {"greater_than_equal": ("at_least", "ge"), "less_than_equal": ("at_most", "le"),
           "greater_than": ("above", "gt"), "less_than": ("below", "lt")}
_SIMPLE = {
    "int_parsing": "not_a_whole_number", "int_type": "not_a_whole_number", "int_from_float": "not_a_whole_number",
    "float_parsing": "not_a_number", "float_type": "not_a_number", "string_type": "not_text",
    "model_type": "not_a_mapping", "model_attributes_type": "not_a_mapping", "dict_type": "not_a_mapping",
}
_LISTS = ("list_type", "tuple_type", "iterable_type")
_DATES = ("date_parsing", "date_type", "date_from_datetime_parsing", "date_from_datetime_inexact")


def shown(value: Any) -> str:
    """A value as a person wrote it, cut short."""
    text = str(value)
    return text if len(text) <= _SHOWN_LIMIT else text[:_SHOWN_LIMIT - 1] + "…"


def value_problem(error: ErrorDetails) -> Message:
    """The catalogue message for one pydantic error: a validator's own Message, or its type's wording."""
    kind, value, context = error["type"], error.get("input"), error.get("ctx") or {}
    cause = context.get("error")
    if isinstance(cause, ValueError) and cause.args and isinstance(cause.args[0], Message):
        return cause.args[0]
    if kind in _SIMPLE:
        return Message.of(f"error.value.{_SIMPLE[kind]}", value=shown(value))
    if kind == "literal_error":
        return Message.of("error.value.not_one_of", value=shown(value),
                          choices=re.findall(r"'([^']*)'", str(context.get("expected", ""))))
    if kind in ("bool_parsing", "bool_type"):
        return Message.of("error.value.not_a_switch", value=shown(value), choices=["true", "false"])
    if kind in _LISTS:
        return Message.of("error.value.not_a_list", value=shown(value), example="[a, b]")
    if kind in _DATES:
        return Message.of("error.value.not_a_date", value=shown(value), example="2026-01-31")
    if kind in _BOUNDS:
        key, limit = _BOUNDS[kind]
        return Message.of(f"error.value.{key}", limit=context.get(limit))
    if kind == "too_short":
        return Message.of("error.value.too_few", limit=context.get("min_length"))
    if kind == "too_long":
        return Message.of("error.value.too_many", limit=context.get("max_length"))
    if kind == "string_too_short":
        return Message.of("error.value.empty")
    return Message.of("error.value.invalid", detail=error["msg"].removeprefix("Value error, "))

"""A finding's figures in words: what `findings show` and the finding's page print beside its
description."""

from __future__ import annotations

from typing import Any

from opsaudit.i18n.render import format_value, text


def finding_figures(values: dict[str, Any], facts: dict[str, Any], language: str) -> list[str]:
    """Observed against target, the gap, how many were checked and failed: for the rate and score rules."""
    if values["observed"] is None or values["target"] is None or values["area"] == "data_quality":
        return []  # a record has no rate; a data-quality share is in its description already
    unit = facts.get("unit", "rate")
    shown = "score" if unit == "score" else "percent"
    gap = abs(values["observed"] - values["target"])
    gap_text = format_value(gap, "score", language) if unit == "score" else \
        text("cli.show.gap_points", language, value=gap)
    return [text("cli.show.figures", language, observed=format_value(values["observed"], shown, language),
                 target=format_value(values["target"], shown, language), gap=gap_text,
                 population=values["population"], failures=values["failures"])]

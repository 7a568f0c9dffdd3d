"""The purpose of a special audit in words (seed 000 §4.1: a special audit is defined by its
cause): the reason, the scope and who asked, as the report and the audit lead's mail state it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opsaudit.i18n import text


def special_purpose(request: Mapping[str, Any], period: str, language: str, *, department: Callable[[str], str],
                    person: Callable[[str], str]) -> str:
    """专项稽查应王芳（S004）要求开展，原因：…；范围：… `request` is what the run recorded
    (SpecialAudit.as_json); `department` and `person` write an id out."""
    # The sentence ends the reason: a reason typed with its own full stop would end twice.
    values = {"reason": (request.get("reason") or "").rstrip("。.；;！! "), "period": period,
              "areas": [text(f"enum.area.{area}", language) for area in request.get("areas", [])],
              "departments": [department(d) for d in request.get("departments", [])]}
    asked = request.get("requested_by")
    if asked:
        return text("report.purpose.special_requested", language, requester=person(asked), **values)
    return text("report.purpose.special", language, **values)

"""Addresses of the web's pages for mail: every link starts with OPSAUDIT_WEB_URL."""

from __future__ import annotations

from urllib.parse import quote

from opsaudit.settings import Settings


def finding_url(settings: Settings, finding_id: str) -> str:
    """`<OPSAUDIT_WEB_URL>/findings/<id>`: where the people a finding concerns act on it."""
    return f"{settings.web_url}/findings/{quote(finding_id, safe='')}"


def report_url(settings: Settings, run_id: str) -> str:
    """`<OPSAUDIT_WEB_URL>/reports/<run_id>`: where the audit lead reviews the run's report."""
    return f"{settings.web_url}/reports/{quote(run_id, safe='')}"


def run_findings_url(settings: Settings, run_id: str) -> str:
    """`<OPSAUDIT_WEB_URL>/findings?audit_run=<run_id>`: a run's findings, before it has a report."""
    return f"{settings.web_url}/findings?audit_run={quote(run_id, safe='')}"


def sign_in_url(settings: Settings, token: str) -> str:
    """`<OPSAUDIT_WEB_URL>/login/<token>`: the one-time link of a sign-in mail."""
    return f"{settings.web_url}/login/{token}"

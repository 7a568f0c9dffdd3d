"""The `opsaudit` command line (interface.md): one module per command group, registered on one app."""

from opsaudit.cli import audits, findings, lifecycle, outbox, qa, schedules, scores  # noqa: F401 - importing registers the commands
from opsaudit.cli.app import app, main

__all__ = ["app", "main"]

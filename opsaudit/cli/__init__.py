"""The `opsaudit` command line (interface.md): one module per command group, registered on one app."""

from opsaudit.cli import audits, backfill, findings, outbox, qa, schedules  # noqa: F401 - importing registers the commands
from opsaudit.cli.app import app, main

__all__ = ["app", "main"]

"""The `opsaudit` command line (interface.md): one module per command group, registered on one app."""

from opsaudit.cli import (  # noqa: F401 - importing a module registers its commands
    audits,
    backfill,
    findings,
    lifecycle,
    outbox,
    qa,
    reports,
    schedules,
    scores,
    web,
)
from opsaudit.cli.app import app, main

__all__ = ["app", "main"]

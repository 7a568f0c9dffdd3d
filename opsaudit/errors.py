"""One root exception; each subclass is a way an audit cannot run (exit status 1)."""


class OpsauditError(Exception):
    """Root of every error opsaudit reports to a person as one line."""


class ConfigError(OpsauditError):
    """A YAML file or a setting is invalid; the message names the file and key."""


class SourceError(OpsauditError):
    """The operational database is unreachable or lacks a table or column the audit reads."""


class StoreError(OpsauditError):
    """The audit store is unreachable or its schema is out of date."""


class InputError(OpsauditError):
    """A file given on the command line is unreadable or has bad rows; the message names the line."""


class LifecycleError(OpsauditError):
    """A finding or report cannot make the requested transition."""


class UsageError(OpsauditError):
    """A command-line value that cannot be right, such as a period that has not ended (exit status 2)."""

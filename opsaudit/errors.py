"""One root exception; each subclass is a way an audit cannot run (exit status 1).

An error's message is a text, or a catalogue message (opsaudit.i18n Message) worded when it is
read: the command line words it in the command's language (`OpsauditError.text`), anything else
(a task log, the dashboard's state message, `str`) in OPSAUDIT_LANGUAGE.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opsaudit.i18n.render import Message


class OpsauditError(Exception):
    """Root of every error opsaudit reports to a person as one line."""

    def text(self, language: str) -> str:
        """The error's line in `language`."""
        message = _message(self)
        return message.text(language) if message is not None else super().__str__()

    def __str__(self) -> str:
        return self.text(_reader_language()) if _message(self) is not None else super().__str__()

    def __repr__(self) -> str:
        # A log line names the error by its words, not by the catalogue message behind them.
        return f"{type(self).__name__}({str(self)!r})" if _message(self) is not None else super().__repr__()


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


def option_error(option: str, problem: Message) -> UsageError:
    """A UsageError naming the option (or flow parameter) at fault, then `problem`: `--period：…`."""
    from opsaudit.i18n.render import Message

    return UsageError(Message.of("error.option", option=option, problem=problem))


def setting_error(setting: str, problem: Message) -> ConfigError:
    """A ConfigError naming the OPSAUDIT_* variable at fault, then `problem`: `环境变量OPSAUDIT_TIMEZONE：…`."""
    from opsaudit.i18n.render import Message

    return ConfigError(Message.of("error.setting.line", setting=setting, problem=problem))


def config_error(file: str, key: str | Message, problem: Message) -> ConfigError:
    """A ConfigError naming the YAML file and the dotted key at fault, then `problem`:
    `config/audits.yaml：sampling.confidence：…`."""
    from opsaudit.i18n.render import Message

    return ConfigError(Message.of("error.config.line", file=file, key=key, problem=problem))


# The refusals a person can act on, worded by the catalogue; any other is shown as the system words it.
_OS_REASONS = ("EACCES", "EPERM", "EROFS", "ENOSPC", "ENOTDIR", "EEXIST")


def os_reason(error: OSError) -> Message | str:
    """Why the operating system refused a file or folder, in the reader's language where it can be."""
    from opsaudit.i18n.render import Message

    name = errno.errorcode.get(error.errno or 0)
    if name in _OS_REASONS:
        return Message.of(f"error.os.{name}")
    return error.strerror or type(error).__name__


def _message(error: OpsauditError) -> Message | None:
    # Imported here: the catalogue's own errors are OpsauditErrors.
    from opsaudit.i18n.render import Message

    return error.args[0] if len(error.args) == 1 and isinstance(error.args[0], Message) else None


def _reader_language() -> str:
    """OPSAUDIT_LANGUAGE; when another setting is invalid (the error being read may say so), the
    variable as it is if it names a language, else zh-CN."""
    from opsaudit.i18n.catalogue import LANGUAGES, resolve_language

    try:
        return resolve_language(None)
    except OpsauditError:
        given = os.environ.get("OPSAUDIT_LANGUAGE", "")
        return given if given in LANGUAGES else "zh-CN"

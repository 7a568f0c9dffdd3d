"""The message catalogue: one folder of YAML files per language, flattened to dotted keys.

`messages/zh-CN/*.yaml` and `messages/en/*.yaml` hold the same keys, split by domain (glossary,
enums, rules, data quality, review sheet, ...) so that several people can add to them. A file's
nesting is its keys: `enum: {severity: {major: 重大问题}}` is the key `enum.severity.major`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from opsaudit.errors import ConfigError

MESSAGES_DIR = Path(__file__).resolve().parent / "messages"


class Language(StrEnum):
    """The languages opsaudit speaks; zh-CN is the default (OPSAUDIT_LANGUAGE)."""

    zh_CN = "zh-CN"
    en = "en"


LANGUAGES: tuple[str, ...] = tuple(language.value for language in Language)


class CatalogueError(ConfigError):
    """A language, message key or rule that the catalogue does not have, or a malformed catalogue file."""


def check_language(language: str) -> str:
    """`language` if the catalogue has it; a CatalogueError naming the choices otherwise."""
    if language not in LANGUAGES:
        raise CatalogueError(f"unknown language {language!r} (expected {' or '.join(LANGUAGES)})")
    return language


def resolve_language(language: str | None) -> str:
    """The language asked for, or OPSAUDIT_LANGUAGE when none was."""
    if language is None:
        from opsaudit.settings import load_settings

        return load_settings().language
    return check_language(str(language))


def catalogue(language: str) -> Mapping[str, str]:
    """Every message of `language`, by dotted key (read once per process)."""
    return _load(check_language(language))


@cache
def _load(language: str) -> Mapping[str, str]:
    return MappingProxyType(load_messages(MESSAGES_DIR / language))


def load_messages(folder: Path) -> dict[str, str]:
    """The flattened messages of every YAML file in `folder`; a key defined twice is an error."""
    # Imported here: the config models take a moment, and `opsaudit --help` needs none of it.
    from opsaudit.config.loader import display_path

    messages: dict[str, str] = {}
    origin: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        for key, value in _flatten(_read_catalogue_file(path), "", path):
            if key in messages:
                raise CatalogueError(f"{display_path(path)}: {key}: already defined in {display_path(origin[key])}")
            messages[key], origin[key] = value, path
    return messages


def _read_catalogue_file(path: Path) -> dict[str, Any]:
    """One catalogue file; its own errors are not worded by the catalogue, which cannot load."""
    from opsaudit.config.loader import display_path, read_yaml

    try:
        return read_yaml(path)
    except CatalogueError:
        raise
    except ConfigError as exc:
        raise CatalogueError(f"{display_path(path)}: not a valid catalogue file "
                             f"({getattr(exc.args[0], 'key', exc.args[0])})") from None


def _flatten(node: Mapping[Any, Any], prefix: str, path: Path) -> Iterator[tuple[str, str]]:
    from opsaudit.config.loader import display_path

    for name, value in node.items():
        if not isinstance(name, str):
            # YAML reads yes, no, on, off and bare numbers as booleans and numbers.
            raise CatalogueError(f"{display_path(path)}: {prefix}{name}: quote this key, it must be text")
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{key}.", path)
        elif isinstance(value, str):
            yield key, value
        else:
            raise CatalogueError(f"{display_path(path)}: {key}: expected text, found {type(value).__name__}")


def message(key: str, language: str) -> str:
    """The template of `key` in `language`; a CatalogueError when the catalogue lacks it."""
    try:
        return catalogue(language)[key]
    except KeyError:
        raise CatalogueError(f"no message {key!r} in the {language} catalogue") from None


def has_message(key: str, language: str) -> bool:
    return key in catalogue(language)

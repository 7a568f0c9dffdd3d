"""Load the shipped default YAML, merge a company's overrides over it, and validate.

Every error is one line naming the file and the key, worded by the catalogue, e.g.
``config/thresholds.yaml：rules.cs.satisfaction_rate.target：必须在0到1之间``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from opsaudit.config.models import Audits, Deliverables, KeyedValueError, Recipients, SourceMapping, Thresholds
from opsaudit.errors import ConfigError, os_reason
from opsaudit.i18n.problems import value_problem
from opsaudit.i18n.render import Message

DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"

CONFIG_MODELS: dict[str, type[BaseModel]] = {
    "thresholds": Thresholds,
    "audits": Audits,
    "recipients": Recipients,
    "source": SourceMapping,
    "deliverables": Deliverables,
}


@dataclass(frozen=True)
class Config:
    """The effective configuration, and which files it came from."""

    thresholds: Thresholds
    audits: Audits
    recipients: Recipients
    source: SourceMapping
    deliverables: Deliverables
    files: dict[str, tuple[Path, ...]] = field(default_factory=dict)

    def digest(self) -> str:
        """A hash of the effective configuration, recorded with every finding."""
        payload = {name: getattr(self, name).model_dump(mode="json", by_alias=True) for name in CONFIG_MODELS}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def display_path(path: Path) -> str:
    """A path as a person would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# libyaml's parser where PyYAML was built with it: the message catalogue alone takes half a
# second of every process to parse in pure Python.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one mapping; PyYAML would keep the last silently."""

    def __init__(self, key: Any, mark: yaml.Mark) -> None:
        super().__init__(None, None, f"key {key!r} is given twice", mark)
        self.key = key


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """A safe loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(key, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from path; a parse error or a non-mapping names the file (and line)."""
    file = display_path(path)
    if path.is_dir():
        raise ConfigError(Message.of("error.config.is_folder", file=file, format="YAML"))
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a safe loader
    except OSError as exc:
        raise ConfigError(Message.of("error.config.unreadable", file=file, reason=os_reason(exc))) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(Message.of("error.config.not_utf8", file=file, encoding="UTF-8", byte=exc.start)) from None
    except DuplicateKeyError as exc:
        raise ConfigError(Message.of("error.config.duplicate_key", file=file, key=exc.key,
                                     line=exc.problem_mark.line + 1)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigError(Message.of("error.config.syntax", file=file, line=line, column=column,
                                     format="YAML")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(Message.of("error.config.not_a_mapping", file=file))
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """base with override laid over it; mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _has_path(data: Any, loc: tuple[Any, ...]) -> bool:
    for part in loc:
        in_mapping = isinstance(data, dict) and part in data
        if in_mapping or isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def format_validation_error(exc: ValidationError, sources: list[tuple[Path, dict[str, Any]]]) -> Message:
    """One line for the first error: the file that set the key, the dotted key, the reason."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    # A validator on a model reports at its parent; skip pydantic's internal segments.
    loc = tuple(part for part in loc if not (isinstance(part, str) and part.startswith("function-")))
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, KeyedValueError):
        loc += cause.loc
    origin = sources[0][0]
    for path, data in reversed(sources):
        if _has_path(data, loc[:1]) and (_has_path(data, loc) or path == sources[-1][0]):
            origin = path
            break
    return Message.of("error.config.line", file=display_path(origin), key=dotted_key(loc), problem=key_problem(err))


def dotted_key(loc: tuple[Any, ...]) -> Message | str:
    """A validation error's location as the key a person writes: `rules.cs.x.target`."""
    # pydantic marks a mapping's key that fails (not its value) with a `[key]` segment: the key is named already.
    return ".".join(str(part) for part in loc if part != "[key]") or Message.of("error.config.top_level")


def key_problem(error: ErrorDetails) -> Message:
    """What is wrong at a key: unknown, missing, or its value's problem."""
    if error["type"] == "extra_forbidden":
        return Message.of("error.config.unknown_key")
    if error["type"] == "missing":
        return Message.of("error.config.missing")
    return value_problem(error)


def validate_file(name: str, model: type[BaseModel], sources: list[tuple[Path, dict[str, Any]]]) -> BaseModel:
    """Merge the sources in order and validate them against model."""
    merged: dict[str, Any] = {}
    for _, data in sources:
        merged = deep_merge(merged, data)
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, sources)) from None


def _check_folder(config_dir: Path, required: bool) -> None:
    """The config folder is a folder, and holds only the files opsaudit reads, named as it reads them."""
    folder = display_path(config_dir)
    if not config_dir.exists():
        if required:
            raise ConfigError(Message.of("error.config.no_folder", folder=folder, setting="OPSAUDIT_CONFIG_DIR"))
        return
    if not config_dir.is_dir():
        raise ConfigError(Message.of("error.config.folder_is_file", folder=folder))
    expected = [name + ".yaml" for name in CONFIG_MODELS]
    for path in sorted(config_dir.glob("*.yaml")) + sorted(config_dir.glob("*.yml")):
        if path.suffix == ".yml" and path.stem in CONFIG_MODELS:
            raise ConfigError(Message.of("error.config.rename", file=display_path(path), suffix=".yaml",
                                         name=path.stem + ".yaml"))
        if path.stem not in CONFIG_MODELS or path.suffix == ".yml":
            raise ConfigError(Message.of("error.config.unknown_file", file=display_path(path), files=expected))


def load_config(config_dir: Path | None = None, *, required: bool = False) -> Config:
    """The shipped defaults, overridden by config_dir's YAML files of the same names.

    `required`: the folder was named on purpose (OPSAUDIT_CONFIG_DIR), so its absence is an error;
    the default ./config may be absent, since the defaults ship with opsaudit.
    """
    config_dir = Path(config_dir) if config_dir is not None else None
    if config_dir is not None:
        _check_folder(config_dir, required)
    loaded: dict[str, BaseModel] = {}
    files: dict[str, tuple[Path, ...]] = {}
    for name, model in CONFIG_MODELS.items():
        sources = [(DEFAULTS_DIR / f"{name}.yaml", read_yaml(DEFAULTS_DIR / f"{name}.yaml"))]
        override = config_dir / f"{name}.yaml" if config_dir is not None else None
        if override is not None and override.exists() and override.resolve() != sources[0][0].resolve():
            sources.append((override, read_yaml(override)))
        loaded[name] = validate_file(name, model, sources)
        files[name] = tuple(path for path, _ in sources)
    return Config(files=files, **loaded)  # type: ignore[arg-type]

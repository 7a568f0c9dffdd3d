"""Settings from the environment (and an optional .env), with the names interface.md fixes."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from opsaudit.errors import ConfigError, setting_error
from opsaudit.i18n.problems import value_problem
from opsaudit.i18n.render import Message


def default_data_dir() -> Path:
    """Where the embedded SQLite database lives when nothing is set (XDG data home)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opsaudit"


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for logs and error messages."""
    try:
        parsed = make_url(url)
    except Exception:  # not a URL at all: show nothing of it rather than a secret
        return "<unparseable database URL>"
    secret_keys = [key for key in parsed.query if "pass" in key.lower() or "secret" in key.lower()]
    parsed = parsed.update_query_dict({key: "***" for key in secret_keys})
    return parsed.render_as_string(hide_password=True)


class Settings(BaseSettings):
    """Every OPSAUDIT_* variable; each has a working default."""

    model_config = SettingsConfigDict(env_prefix="OPSAUDIT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Home of the embedded database.")
    database_url: SecretStr | None = Field(None, description="SQLAlchemy URL of the operational data.")
    store_url: SecretStr | None = Field(None, description="SQLAlchemy URL of the audit store.")
    timezone: str = Field("Asia/Shanghai", description="Schedules and naive timestamps.")
    language: Literal["zh-CN", "en"] = Field("zh-CN", description="Report language.")
    smtp_host: str | None = Field(None, description="No host: mail is kept in the outbox.")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_from: str = "opsaudit@localhost"
    smtp_timeout: float = Field(30, gt=0, description="Seconds to wait on the SMTP server for each step.")
    smtp_ca_file: Path | None = Field(None, description="CA bundle (PEM) trusted for the SMTP server's "
                                                        "certificate instead of the system's.")
    mail_retry_base: int = Field(60, ge=1, description="Seconds before the first retry of a failed send; "
                                                       "each further retry waits twice as long.")
    mail_retry_cap: int = Field(4 * 3600, ge=1, description="Longest wait between two retries, in seconds.")
    mail_max_attempts: int = Field(12, ge=1, description="Attempts before a message is marked failed.")
    output_dir: Path = Field(Path("./out"), description="Reports and review sheets.")
    config_dir: Path = Field(Path("./config"), description="YAML overriding the shipped defaults.")
    operations_department: str = Field("OPS", min_length=1)
    report_review: Literal["required", "off"] = "required"
    audit_lead: str | None = None
    web_url: str = Field("http://127.0.0.1:8400", description="Where people reach `opsaudit web`; mail links "
                                                             "start with it.")
    web_secret: SecretStr | None = Field(None, description="Signs web sessions; generated once and kept in the "
                                                           "data dir when unset.")
    web_trusted_header: str | None = Field(None, description="Header naming the person signed in by the "
                                                             "company's single sign-on (staff_id or e-mail).")
    web_trusted_proxies: str | None = Field(None, description="Comma-separated addresses or networks whose "
                                                              "trusted header is honoured.")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(Message.of("error.setting.unknown_zone", value=value, example="Asia/Shanghai")) from exc
        return value

    @field_validator("web_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        schemes = ("http://", "https://")
        if not value.startswith(schemes):
            raise ValueError(Message.of("error.setting.not_web_address", value=value, schemes=list(schemes)))
        return value.rstrip("/")

    @property
    def embedded_database(self) -> str:
        """The embedded SQLite database under the data directory."""
        return f"sqlite:///{self.data_dir.expanduser().resolve() / 'opsaudit.db'}"

    @property
    def database(self) -> str:
        """The operational database URL, defaulting to the embedded database."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.embedded_database

    @property
    def store(self) -> str:
        """The audit store URL, defaulting to the operational database."""
        return self.store_url.get_secret_value() if self.store_url is not None else self.database

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def check_audit_lead(self, role: str | None, department_id: str | None) -> None:
        """OPSAUDIT_AUDIT_LEAD, when set, names an auditor of the operations department: the lead
        approves every report, and anyone else would approve the audit of their own work."""
        if self.audit_lead is None or (role == "auditor" and department_id == self.operations_department):
            return
        raise ConfigError(Message.of("validation.audit_lead.not_an_auditor", setting="OPSAUDIT_AUDIT_LEAD",
                                     staff_id=self.audit_lead, role=role or "-", department=department_id or "-",
                                     operations=self.operations_department))

    def load_config(self):
        """The effective configuration: the shipped defaults under the config folder's overrides.

        A folder named in OPSAUDIT_CONFIG_DIR must exist; the default ./config may be absent.
        """
        from opsaudit.config.loader import load_config

        return load_config(self.config_dir, required="config_dir" in self.model_fields_set)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; a bad value is a ConfigError naming the variable."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "OPSAUDIT_" + str(err["loc"][0]).upper() if err["loc"] else "OPSAUDIT_*"
        raise setting_error(name, value_problem(err)) from None

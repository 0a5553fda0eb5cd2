"""Configuration from the environment (and an optional `.env`), validated once at start-up.

A missing or malformed setting becomes one `SettingsError` line that names the variable and says how to fix
it; secrets are `SecretStr`, so they never appear in a repr, a log line or an error.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[tuple[str, ...], NoDecode]

_HINTS = {
    "SLACK_BOT_TOKEN": "the bot token from OAuth & Permissions (starts with xoxb-)",
    "SLACK_SIGNING_SECRET": "the signing secret from Basic Information (needed with --http)",
    "SLACK_APP_TOKEN": "an app-level token with connections:write (starts with xapp-), needed for Socket Mode",
    "OPENPIPE_API_KEY": "your OpenPipe project API key (opk_...)",
}


class SettingsError(Exception):
    """A configuration problem, phrased for the person running the bot."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    openpipe_api_key: SecretStr | None = None
    openpipe_base_url: str = "https://api.openpipe.ai/api/v1"
    openpipe_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    database_url: str = "sqlite:///slackbot.db"
    poll_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    max_job_age_hours: float = Field(default=72.0, gt=0)
    retention_days: float = Field(default=90.0, gt=0)
    allowed_channels: CommaList = ()
    allowed_users: CommaList = ()
    allowed_usergroups: CommaList = ()
    broadcast_failures: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("allowed_channels", "allowed_users", "allowed_usergroups", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("slack_api_url", "openpipe_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins method names onto the base URL and needs the trailing slash.
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        if value.startswith(("postgresql://", "postgres://")):
            # SQLAlchemy's default PostgreSQL driver is psycopg2; we ship psycopg 3.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    def require(self, *names: str) -> None:
        """Fail with one readable line for the first required setting that is missing."""
        for name in names:
            value = getattr(self, name.lower())
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value().strip()):
                hint = _HINTS.get(name, "")
                raise SettingsError(f"{name} is not set: set it to {hint}." if hint else f"{name} is not set.")


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report into a `SettingsError` that names the variable."""
    try:
        # Keyword overrides (tests, the demo) take precedence over the environment, as pydantic-settings intends.
        return Settings(**overrides)  # type: ignore[arg-type]  # its __init__ is typed for declared fields only
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "settings"
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {message}")
        raise SettingsError("Invalid configuration: " + "; ".join(problems)) from None

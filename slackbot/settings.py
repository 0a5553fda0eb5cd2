"""Configuration from the environment (and an optional `.env`), validated once at start-up.

Every missing or malformed setting is collected into one `SettingsError` line that names each variable and says
where to fix it; secrets are `SecretStr`, so they never appear in a repr, a log line or an error, and no value is
ever echoed (a malformed URL may carry a password).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import AfterValidator, Field, SecretStr, ValidationError, ValidationInfo, create_model, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from slackbot.backends.declaration import BackendDeclaration
from slackbot.backends.registry import declared

CommaList = Annotated[tuple[str, ...], NoDecode]

_HINTS = {
    "SLACK_BOT_TOKEN": "the bot token from OAuth & Permissions (starts with xoxb-)",
    "SLACK_SIGNING_SECRET": "the signing secret from Basic Information (needed with --http)",
    "SLACK_APP_TOKEN": "an app-level token with connections:write (starts with xapp-), needed for Socket Mode",
}
# Tokens Slack issues start with these; another kind of token in the slot is the usual copy-paste mistake.
TOKEN_PREFIXES = {"SLACK_BOT_TOKEN": "xoxb-", "SLACK_APP_TOKEN": "xapp-"}
CHECK_HINT = "run `slackbot check` for details"
# Query parameters that carry credentials in database URLs (libpq accepts `?password=`).
_SECRET_PARAMS = {"password", "passwd", "pass", "secret", "token", "key", "sslpassword"}


class SettingsError(Exception):
    """A configuration problem, phrased for the person running the bot."""


@dataclass(frozen=True)
class Problem:
    """One setting that is missing or malformed: `f"{name} {text}"` reads as a sentence."""

    name: str
    text: str
    missing: bool = False
    sentence: str = ""  # said instead, when the problem is not one setting's (no backend key at all)

    def __str__(self) -> str:
        return self.sentence or f"{self.name} {self.text}"


def _check_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or not urlsplit(value).hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value


HttpUrl = Annotated[str, AfterValidator(_check_url)]


class _CoreSettings(BaseSettings):
    """The settings every bot has; each declared backend adds its own three (see `Settings` below)."""

    # env_ignore_empty: `NAME=` (as in a fresh copy of .env.example) means "not set", so its default applies.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_timeout_seconds: int = Field(default=10, ge=1, le=300)
    database_url: str = "sqlite:///slackbot.db"
    poll_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    # At most this often per job, a running job's loss curve is read and, when it has new steps, charted in its thread.
    chart_interval_seconds: float = Field(default=300.0, ge=10, le=86400)
    max_job_age_hours: float = Field(default=72.0, gt=0)
    retention_days: float = Field(default=90.0, gt=0)
    allowed_channels: CommaList = ()
    allowed_users: CommaList = ()
    allowed_usergroups: CommaList = ()
    # Who may cancel or delete anyone's fine-tune (a job's requester always may).
    admin_users: CommaList = ()
    broadcast_failures: bool = True
    # How long "Try it" waits for a model's answer before saying it is too slow.
    try_it_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("allowed_channels", "allowed_users", "allowed_usergroups", "admin_users", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins method names onto the base URL and needs the trailing slash.
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        if value.startswith(("postgresql://", "postgres://")):
            # SQLAlchemy's default PostgreSQL driver is psycopg2; we ship psycopg 3.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case(cls, value: object, info: ValidationInfo) -> object:
        # `LOG_LEVEL=info` and `LOG_FORMAT=JSON` are what people type; the choices themselves stay exact.
        if isinstance(value, str):
            return value.strip().upper() if info.field_name == "log_level" else value.strip().lower()
        return value

    def require(self, *names: str) -> None:
        """Fail with one readable line naming every required setting that is missing or of the wrong kind."""
        problems = required_problems(self, *names)
        if problems:
            raise SettingsError(describe(problems))

    if TYPE_CHECKING:
        # The backends' settings are fields made from their declarations: to a type checker, any name.
        def __getattr__(self, name: str) -> Any: ...


def _backend_fields(declarations: tuple[BackendDeclaration, ...]) -> dict[str, Any]:
    """Each declared backend's key (it turns the backend on), base URL and timeout, named by its declaration."""
    found: dict[str, Any] = {}
    for declaration in declarations:
        names = declaration.settings
        found[names.api_key.lower()] = (SecretStr | None, None)
        found[names.base_url.lower()] = (HttpUrl, names.default_base_url)
        timeout = Field(default=names.default_timeout_seconds, gt=0, le=600)
        found[names.timeout_seconds.lower()] = (float, timeout)
    return found


if TYPE_CHECKING:
    Settings = _CoreSettings
else:
    Settings = create_model("Settings", __base__=_CoreSettings, __module__=__name__, **_backend_fields(declared()))


def required_problems(settings: Settings, *names: str) -> list[Problem]:
    """The named settings that are unset (or blank), or tokens of the wrong kind (checked by prefix only)."""
    problems = []
    for name in names:
        value = getattr(settings, name.lower())
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not raw or not str(raw).strip():
            problems.append(Problem(name, "is not set", missing=True))
        elif isinstance(raw, str) and (raw != raw.strip() or not raw.isprintable() or " " in raw):
            # A copied token often brings a space or a line break along; Slack would only say invalid_auth.
            problems.append(Problem(name, "contains spaces or invisible characters"))
        elif name in TOKEN_PREFIXES and isinstance(raw, str) and not raw.startswith(TOKEN_PREFIXES[name]):
            problems.append(Problem(name, f"does not start with {TOKEN_PREFIXES[name]}"))
    return problems


def backend_problems(settings: Settings, keys: list[str]) -> list[Problem]:
    """A backend is on when its key is set: at least one must be; a key that is set must be well formed."""
    given = [key for key in keys if not any(p.missing for p in required_problems(settings, key))]
    if not given:
        first = keys[0]
        return [Problem(first, "is not set", missing=True, sentence=f"set {first} (or another backend's key)")]
    return required_problems(settings, *given)


def describe(problems: list[Problem]) -> str:
    """One line for all of them, saying where settings live and where the details are."""
    one = len(problems) == 1
    them = "it" if one else "them"
    if any(p.missing for p in problems):
        where = f"Copy .env.example to .env and fill it in (or set {them} in the environment)"
    else:
        where = f"Fix {them} in .env or the environment"
    listed = "; ".join(map(str, problems))
    return f"cannot start, {len(problems)} setting{'' if one else 's'} to fix: {listed}. {where}; {CHECK_HINT}."


def hint(name: str) -> str:
    """What to put into the setting `name` (a Slack token's kind, or a backend's key as its declaration says)."""
    for declaration in declared():
        if declaration.settings.api_key == name:
            return declaration.settings.hint
    return _HINTS.get(name, "")


def backend_setting_names() -> list[str]:
    """Every declared backend's setting names, key first."""
    names = []
    for declaration in declared():
        s = declaration.settings
        names += [s.api_key, s.base_url, s.timeout_seconds]
    return names


def setting_names() -> list[str]:
    """Every setting's name in the order problems are told: Slack's, then each backend's, then the rest."""
    core = [name.upper() for name in _CoreSettings.model_fields]
    slack = [name for name in core if name.startswith("SLACK_")]
    return slack + backend_setting_names() + [name for name in core if name not in slack]


def _in_order(problems: list[Problem]) -> list[Problem]:
    order = setting_names()
    return sorted(problems, key=lambda p: order.index(p.name) if p.name in order else len(order))


def read_settings(**overrides: object) -> tuple[Settings, list[Problem]]:
    """Settings plus every malformed one, each replaced by its default so the rest can still be used (check)."""
    try:
        # Keyword overrides (tests, the demo) take precedence over the environment, as pydantic-settings intends.
        return Settings(**overrides), []  # type: ignore[arg-type]  # its __init__ is typed for declared fields only
    except ValidationError as exc:
        problems = _in_order([_problem(err) for err in exc.errors()])
    fields = Settings.model_fields
    defaults = {p.name.lower(): fields[p.name.lower()].default for p in problems if p.name.lower() in fields}
    try:
        return Settings(**{**overrides, **defaults}), problems
    except ValidationError:  # a problem not tied to one field: nothing usable
        raise SettingsError(describe(problems)) from None


def load_settings(**overrides: object) -> Settings:
    """Read settings; any malformed one is a `SettingsError` naming each of them."""
    settings, problems = read_settings(**overrides)
    if problems:
        raise SettingsError(describe(problems))
    return settings


def _problem(err: ErrorDetails) -> Problem:
    name = str(err["loc"][0]).upper() if err["loc"] else "settings"
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    kind = err["type"]
    # pydantic's own wording names Python types; say what to type instead, never echoing the value.
    if kind in {"float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"}:
        text = "must be a whole number" if kind.startswith("int") else "must be a number"
    elif kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        words = {"greater_than": "greater than", "greater_than_equal": "at least", "less_than": "less than"}
        bound = next(iter(ctx.values()), "")
        shown = f"{bound:g}" if isinstance(bound, float) else str(bound)
        text = f"must be {words.get(kind, 'at most')} {shown}"
    elif kind == "literal_error":
        text = "must be one of " + str(ctx.get("expected", "")).replace(" or ", ", ").replace("'", "")
    elif kind in {"bool_parsing", "bool_type"}:
        text = "must be true or false"
    else:
        text = str(err["msg"]).removeprefix("Value error, ")
        text = text[0].lower() + text[1:] if text else "is malformed"
    return Problem(name, text)


def redact_url(url: str) -> str:
    """The URL with any user:password (and password-like query values) replaced by `***`, for printing."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if "@" in parts.netloc:
        # Edited in place: rebuilding the URL would turn `sqlite:///x.db` into `sqlite:/x.db`.
        userinfo = parts.netloc.rpartition("@")[0]
        url = url.replace(f"//{userinfo}@", "//***@", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        hidden = [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs]
        if hidden != pairs:
            url = url.replace(f"?{parts.query}", "?" + urlencode(hidden, safe="*"), 1)
    return url


def url_secrets(*urls: str) -> list[str]:
    """The credentials embedded in these URLs, for the log redactor (which hides known secret values)."""
    found = []
    for url in urls:
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        if "@" in parts.netloc:
            userinfo = parts.netloc.rpartition("@")[0]
            found += [userinfo, parts.password or ""]
    return [s for s in found if s]

"""`slackbot check`: every piece of configuration verified against the real services, in plain words.

It changes nothing: no database file is created (an existing one is only read), no Socket Mode connection is
opened, and a URL is only ever printed with its credentials replaced by `***`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from slackbot import preflight
from slackbot.backends.base import AuthError, BackendError
from slackbot.backends.declaration import BackendConfig, BackendDeclaration
from slackbot.backends.registry import declared
from slackbot.jobs.db import make_engine, migration_status
from slackbot.settings import Problem, Settings, hint, redact_url, required_problems

Report = Callable[..., None]

# What a malformed setting means for the checks that use it (they are skipped: the default would mislead).
_USED_BY = {
    "SLACK_API_URL": "slack",
    "SLACK_TIMEOUT_SECONDS": "slack",
    "DATABASE_URL": "database",
    **{n: d.name for d in declared() for n in (d.settings.base_url, d.settings.timeout_seconds)},
}
# A check waits at most this long for a backend's answer, whatever its timeout setting says.
_CHECK_TIMEOUT_SECONDS = 10.0


def run_checks(settings: Settings, malformed: Sequence[Problem] = (), out: Callable[[str], None] = print) -> int:
    problems = 0
    missing = False

    def report(ok: bool | None, line: str, *, unset: bool = False) -> None:
        nonlocal problems, missing
        problems += 0 if ok in (True, None) else 1
        missing = missing or unset
        out(("ok    " if ok else "skip  " if ok is None else "FAIL  ") + line)

    for problem in malformed:
        report(False, f"{problem}.")
    broken = {_USED_BY[p.name] for p in malformed if p.name in _USED_BY}
    _slack(settings, report, reachable="slack" not in broken)
    _backends(settings, report, broken)
    if "database" not in broken:
        _database(settings, report)
    if problems == 0:
        out("All checks passed.")
    else:
        where = " Copy .env.example to .env and fill it in (or set them in the environment)." if missing else ""
        out(f"{problems} problem(s) found.{where}")
    return 0 if problems == 0 else 1


def _token(settings: Settings, name: str, report: Report) -> bool:
    """Whether the secret in `name` is set and looks usable (reported when not)."""
    for problem in required_problems(settings, name):
        if problem.missing:
            report(False, f"{name} is not set: set it to {hint(name)}.", unset=True)
        else:
            report(False, f"{problem}: set it to {hint(name)}.")
        return False
    return True


def _slack(settings: Settings, report: Report, *, reachable: bool) -> None:
    if not reachable:
        report(None, "Slack tokens not verified: SLACK_API_URL or SLACK_TIMEOUT_SECONDS is malformed (above).")
    if _token(settings, "SLACK_BOT_TOKEN", report) and reachable:
        answer = preflight.check_bot_token(settings)
        if answer.ok:
            report(
                True,
                f"SLACK_BOT_TOKEN works: bot {answer.data.get('user')} in workspace {answer.data.get('team')} "
                f"(Slack at {redact_url(settings.slack_api_url)}).",
            )
        else:
            report(False, answer.problem + ".")
            reachable = not answer.transient
    app_token, signing_secret = settings.slack_app_token, settings.slack_signing_secret
    if app_token is None and signing_secret is None:
        report(
            False,
            "Neither SLACK_APP_TOKEN (Socket Mode, the default) nor SLACK_SIGNING_SECRET (HTTP mode, "
            "`slackbot run --http`) is set: set one of them.",
            unset=True,
        )
        return
    if app_token is None:
        report(True, "SLACK_APP_TOKEN is not set: fine for `slackbot run --http`; Socket Mode needs it (xapp-...).")
    elif _token(settings, "SLACK_APP_TOKEN", report):
        if not reachable:
            report(None, "SLACK_APP_TOKEN not verified: Slack cannot be reached.")
        else:
            answer = preflight.check_app_token(settings)
            report(answer.ok, "SLACK_APP_TOKEN works: Socket Mode can connect." if answer.ok else answer.problem + ".")
    if signing_secret is None:
        report(True, "SLACK_SIGNING_SECRET is not set: fine for Socket Mode; `slackbot run --http` needs it.")
    else:
        report(True, "SLACK_SIGNING_SECRET is set (only Slack's signed requests can prove it right).")


def _backends(settings: Settings, report: Report, broken: set[str]) -> None:
    """Each backend whose key is set, verified with a cheap authenticated read; with none set, that is said."""
    keys = [d.settings.api_key for d in declared()]
    given = [d for d in declared() if not any(p.missing for p in required_problems(settings, d.settings.api_key))]
    if not given:
        first, others = keys[0], ", ".join(keys[1:])
        also = f" (or another backend's key: {others})" if others else ""
        report(False, f"{first} is not set: set it to {hint(first)}{also}.", unset=True)
        return
    for declaration in given:
        _backend(settings, declaration, report, usable=declaration.name not in broken)


def _backend(settings: Settings, declaration: BackendDeclaration, report: Report, *, usable: bool) -> None:
    names, service = declaration.settings, declaration.display_name
    if not _token(settings, names.api_key, report):
        return
    if not usable:
        report(None, f"{names.api_key} not verified: {names.base_url} or {names.timeout_seconds} is malformed.")
        return
    base_url = str(getattr(settings, names.base_url.lower()))
    timeout = min(float(getattr(settings, names.timeout_seconds.lower())), _CHECK_TIMEOUT_SECONDS)
    url = redact_url(base_url)
    try:
        backend = declaration.build(
            BackendConfig(api_key=getattr(settings, names.api_key.lower()), base_url=base_url, timeout_seconds=timeout)
        )
    except ValueError as exc:  # a key the client refuses to send (whitespace): said without echoing it
        report(False, f"{names.api_key} cannot be used: {exc}.")
        return
    try:
        datasets = backend.list_datasets()
        report(True, f"{names.api_key} works: {len(datasets)} dataset(s) at {url}.")
    except AuthError:
        report(False, f"{names.api_key} was refused by {service}: copy {hint(names.api_key)} again.")
    except BackendError as exc:
        report(False, f"{service} at {names.base_url} ({url}) failed: {exc.describe()}")
    finally:
        backend.close()


def _database(settings: Settings, report: Report) -> None:
    shown = redact_url(settings.database_url)
    try:
        engine = _read_only_engine(settings.database_url, report, shown)
        if engine is None:
            return
        try:
            current, head = migration_status(engine)
        finally:
            engine.dispose()
    except Exception as exc:
        report(
            False,
            f"DATABASE_URL ({shown}) cannot be used ({type(exc).__name__}): check the URL and that the server runs.",
        )
        return
    if current == head:
        report(True, f"Database {shown} reachable, schema current ({head}).")
    else:
        report(
            False,
            f"Database schema is at {current or 'nothing'}, this version needs {head}: "
            "`slackbot run` applies the migrations at start.",
        )


def _read_only_engine(database_url: str, report: Report, shown: str) -> Engine | None:
    """An engine that cannot create or change the database; None when there is nothing to read yet."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return make_engine(database_url)
    name = url.database or ""
    if name in ("", ":memory:"):
        report(True, "DATABASE_URL is an in-memory SQLite database: jobs are forgotten when the bot stops.")
        return None
    path = Path(name).absolute()
    if not path.exists():
        # `slackbot run` creates the file and any missing folders: the nearest existing one must be writable.
        folder = next(p for p in path.parents if p.exists())
        if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            report(True, f"Database {shown} does not exist yet: `slackbot run` creates it and its schema.")
        else:
            report(False, f"Database {shown} cannot be created: {folder} is not a folder this user can write to.")
        return None
    # mode=ro creates nothing; with no write-ahead log beside the file (no bot writing now) `immutable` also keeps
    # SQLite from creating its -wal and -shm files just to read.
    uri = f"file:{quote(str(path))}?mode=ro"
    if not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))

"""`slackbot check`: every piece of configuration verified against the real services, in plain words."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.backends.base import AuthError, BackendError
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.jobs.db import make_engine, migration_status
from slackbot.settings import Settings

Report = Callable[[bool, str], None]


def run_checks(settings: Settings, out: Callable[[str], None] = print) -> int:
    problems = 0

    def report(ok: bool, line: str) -> None:
        nonlocal problems
        problems += 0 if ok else 1
        out(("ok    " if ok else "FAIL  ") + line)

    _slack(settings, report)
    _openpipe(settings, report)
    _database(settings, report)
    out("All checks passed." if problems == 0 else f"{problems} problem(s) found.")
    return 0 if problems == 0 else 1


def _slack(settings: Settings, report: Report) -> None:
    if settings.slack_bot_token is None:
        report(False, "SLACK_BOT_TOKEN is not set: set it to the bot token (xoxb-...) from OAuth & Permissions.")
    else:
        client = WebClient(
            token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url, timeout=10
        )
        try:
            auth = client.auth_test()
            report(True, f"SLACK_BOT_TOKEN works: bot {auth.get('user')} in workspace {auth.get('team')}.")
        except SlackApiError as exc:
            report(
                False,
                f"SLACK_BOT_TOKEN was refused by Slack ({exc.response.get('error')}): reinstall the app "
                "and copy the bot token again.",
            )
        except Exception as exc:
            report(
                False, f"Slack could not be reached at SLACK_API_URL={settings.slack_api_url} ({type(exc).__name__})."
            )
    if settings.slack_app_token is None:
        report(True, "SLACK_APP_TOKEN is not set: fine for `slackbot run --http`; Socket Mode needs it (xapp-...).")
    elif not settings.slack_app_token.get_secret_value().startswith("xapp-"):
        report(False, "SLACK_APP_TOKEN does not look like an app-level token (it should start with xapp-).")
    else:
        report(True, "SLACK_APP_TOKEN is set (app-level token).")
    if settings.slack_signing_secret is None:
        report(True, "SLACK_SIGNING_SECRET is not set: fine for Socket Mode; `slackbot run --http` needs it.")
    else:
        report(True, "SLACK_SIGNING_SECRET is set.")


def _openpipe(settings: Settings, report: Report) -> None:
    if settings.openpipe_api_key is None:
        report(False, "OPENPIPE_API_KEY is not set: set it to your OpenPipe project API key.")
        return
    backend = OpenPipeBackend(
        settings.openpipe_api_key,
        settings.openpipe_base_url,
        timeout=min(settings.openpipe_timeout_seconds, 10),
        max_attempts=1,
    )
    try:
        datasets = backend.list_datasets()
        report(True, f"OPENPIPE_API_KEY works: {len(datasets)} dataset(s) at {settings.openpipe_base_url}.")
    except AuthError:
        report(False, "OPENPIPE_API_KEY was refused by OpenPipe: copy the project API key again.")
    except BackendError as exc:
        report(False, f"OpenPipe at OPENPIPE_BASE_URL={settings.openpipe_base_url} failed: {exc.describe()}")
    finally:
        backend.close()


def _database(settings: Settings, report: Report) -> None:
    try:
        engine = make_engine(settings.database_url)
        try:
            current, head = migration_status(engine)
        finally:
            engine.dispose()
    except Exception as exc:
        report(False, f"DATABASE_URL cannot be used ({type(exc).__name__}): check the URL and that the server runs.")
        return
    if current == head:
        report(True, f"Database reachable, schema current ({head}).")
    else:
        report(
            False,
            f"Database schema is at {current or 'nothing'}, this version needs {head}: "
            "`slackbot run` applies the migrations at start.",
        )

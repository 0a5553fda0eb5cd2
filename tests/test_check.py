"""`slackbot check` as a real process against the local Slack (with its Socket Mode server) and OpenPipe, and
against the network failures a newcomer meets: every line exact, nothing created, no secret and no URL
credential printed."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slackbot.jobs.db import make_engine, migrate
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from tests.cli_helpers import UNRESOLVABLE_URL, assert_clean, bot_env, refused_url, silent_server, slackbot
from tests.stand_ins.slack_socket import SocketModeServer

TOKEN = "xoxb-check-test-token-8675309"
APP_TOKEN = "xapp-1-A0LOCAL-1-check-test-app-token"
KEY = "opk_check_test_key_1123581321"
SECRET = "check-test-signing-secret-abcdef"
SECRETS = (TOKEN, APP_TOKEN, KEY, SECRET)


@pytest.fixture
def services() -> Iterator[tuple[LocalSlack, SocketModeServer, LocalOpenPipe]]:
    with (
        LocalSlack(bot_token=TOKEN) as slack,
        SocketModeServer(slack, app_token=APP_TOKEN) as server,
        LocalOpenPipe(KEY) as openpipe,
    ):
        yield slack, server, openpipe


def _env(tmp_path: Path, slack_url: str, openpipe_url: str, **extra: str) -> dict[str, str]:
    settings = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": slack_url,
        "OPENPIPE_API_KEY": KEY,
        "OPENPIPE_BASE_URL": openpipe_url,
        "SLACK_TIMEOUT_SECONDS": "1",
        "OPENPIPE_TIMEOUT_SECONDS": "1",
        **extra,
    }
    return bot_env(tmp_path, **{k: v for k, v in settings.items() if v})


def _check(env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    done = slackbot(["check"], env, cwd)
    assert done.stderr == "", done.stderr  # no log chatter, no traceback: only the report
    assert_clean(done.stdout, *SECRETS)
    return done.returncode, done.stdout.splitlines()


def test_everything_right_verifies_the_app_token_and_creates_nothing(
    tmp_path: Path, services: tuple[LocalSlack, SocketModeServer, LocalOpenPipe]
) -> None:
    slack, server, openpipe = services
    code, lines = _check(_env(tmp_path, slack.url, openpipe.url), tmp_path)
    db = tmp_path / "bot.db"
    assert code == 0, lines
    assert lines == [
        f"ok    SLACK_BOT_TOKEN works: bot finetune-bot in workspace Local (Slack at {slack.url}).",
        "ok    SLACK_APP_TOKEN works: Socket Mode can connect.",
        "ok    SLACK_SIGNING_SECRET is not set: fine for Socket Mode; `slackbot run --http` needs it.",
        f"ok    OPENPIPE_API_KEY works: 3 dataset(s) at {openpipe.url}.",
        f"ok    Database sqlite:///{db} does not exist yet: `slackbot run` creates it and its schema.",
        "All checks passed.",
    ]
    assert [c.response["ok"] for c in slack.calls_to("apps.connections.open") if c.response] == [True]
    assert server.connections_opened == 0  # asked for a URL, never connected: a running bot is not disturbed
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no database file, nor its -wal / -shm


def test_a_database_in_folders_not_made_yet_is_fine_and_still_not_made(
    tmp_path: Path, services: tuple[LocalSlack, SocketModeServer, LocalOpenPipe]
) -> None:
    slack, _, openpipe = services
    db = tmp_path / "data" / "bot" / "jobs.db"
    env = _env(tmp_path, slack.url, openpipe.url, DATABASE_URL=f"sqlite:///{db}")
    code, lines = _check(env, tmp_path)
    assert code == 0, lines
    assert f"ok    Database sqlite:///{db} does not exist yet: `slackbot run` creates it and its schema." in lines
    assert list(tmp_path.iterdir()) == []


def test_an_existing_database_is_read_and_left_as_it_was(
    tmp_path: Path, services: tuple[LocalSlack, SocketModeServer, LocalOpenPipe]
) -> None:
    slack, _, openpipe = services
    db = tmp_path / "bot.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    engine.dispose()
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    time.sleep(0.01)
    code, lines = _check(_env(tmp_path, slack.url, openpipe.url), tmp_path)
    assert code == 0, lines
    assert lines[-2].startswith(f"ok    Database sqlite:///{db} reachable, schema current (")
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_a_refused_app_token_shows_slacks_error(
    tmp_path: Path, services: tuple[LocalSlack, SocketModeServer, LocalOpenPipe]
) -> None:
    slack, _, openpipe = services
    wrong = "xapp-1-A0LOCAL-1-not-this-one-000"
    code, lines = _check(_env(tmp_path, slack.url, openpipe.url, SLACK_APP_TOKEN=wrong), tmp_path)
    assert code == 1
    assert (
        "FAIL  SLACK_APP_TOKEN was refused by Slack (invalid_auth): create an app-level token (Basic Information, "
        "App-Level Tokens) and copy it again."
    ) in lines
    assert lines[-1] == "1 problem(s) found."
    assert_clean("\n".join(lines), wrong)


def test_neither_app_token_nor_signing_secret_is_a_failure(
    tmp_path: Path, services: tuple[LocalSlack, SocketModeServer, LocalOpenPipe]
) -> None:
    slack, _, openpipe = services
    code, lines = _check(_env(tmp_path, slack.url, openpipe.url, SLACK_APP_TOKEN=""), tmp_path)
    assert code == 1
    assert lines[1] == (
        "FAIL  Neither SLACK_APP_TOKEN (Socket Mode, the default) nor SLACK_SIGNING_SECRET (HTTP mode, "
        "`slackbot run --http`) is set: set one of them."
    )
    assert lines[-1] == "1 problem(s) found. Copy .env.example to .env and fill it in (or set them in the environment)."
    # Either one is enough.
    code, lines = _check(
        _env(tmp_path, slack.url, openpipe.url, SLACK_APP_TOKEN="", SLACK_SIGNING_SECRET=SECRET), tmp_path
    )
    assert code == 0, lines


@pytest.mark.parametrize("failure", ["refused", "unresolvable", "timeout"])
def test_slack_out_of_reach_is_told_as_such(failure: str, tmp_path: Path) -> None:
    with silent_server() as silent, LocalOpenPipe(KEY) as openpipe:
        url, reason = {
            "refused": (refused_url(), "connection refused"),
            "unresolvable": (UNRESOLVABLE_URL, "host not found"),
            "timeout": (silent, "no answer within 1 s"),
        }[failure]
        code, lines = _check(_env(tmp_path, url, openpipe.url), tmp_path)
    assert code == 1
    assert lines[:2] == [
        f"FAIL  cannot reach Slack at SLACK_API_URL ({url}: {reason}).",
        "skip  SLACK_APP_TOKEN not verified: Slack cannot be reached.",
    ]
    assert lines[-1] == "1 problem(s) found."


def test_malformed_settings_are_each_named_and_the_rest_still_checked(
    tmp_path: Path, services: tuple[LocalSlack, SocketModeServer, LocalOpenPipe]
) -> None:
    slack, _, openpipe = services
    env = _env(tmp_path, slack.url, openpipe.url, POLL_INTERVAL_SECONDS="often", OPENPIPE_BASE_URL="openpipe")
    code, lines = _check(env, tmp_path)
    assert code == 1
    assert lines[:3] == [
        "FAIL  OPENPIPE_BASE_URL must be an http:// or https:// URL.",
        "FAIL  POLL_INTERVAL_SECONDS must be a number.",
        f"ok    SLACK_BOT_TOKEN works: bot finetune-bot in workspace Local (Slack at {slack.url}).",
    ]
    assert "skip  OPENPIPE_API_KEY not verified: OPENPIPE_BASE_URL or OPENPIPE_TIMEOUT_SECONDS is malformed." in lines
    assert lines[-1] == "2 problem(s) found."
    assert "often" not in "\n".join(lines)


def test_credentials_in_urls_are_never_printed(tmp_path: Path) -> None:
    slack_url = refused_url().replace("http://", "http://slackuser:slackpass-xyz@")
    openpipe_url = refused_url().replace("http://", "http://opuser:oppass-xyz@").removesuffix("/api/") + "/api/v1"
    db_url = "postgresql://dbuser:dbpass-xyz@127.0.0.1:1/jobs?sslpassword=sslpass-xyz"
    code, lines = _check(_env(tmp_path, slack_url, openpipe_url, DATABASE_URL=db_url), tmp_path)
    output = "\n".join(lines)
    assert code == 1
    for credential in ("slackuser", "slackpass-xyz", "opuser", "oppass-xyz", "dbuser", "dbpass-xyz", "sslpass-xyz"):
        assert credential not in output, output
    hidden_slack = slack_url.replace("slackuser:slackpass-xyz@", "***@")
    assert lines[0].startswith(f"FAIL  cannot reach Slack at SLACK_API_URL ({hidden_slack}: ")
    hidden_openpipe = openpipe_url.replace("opuser:oppass-xyz@", "***@")
    assert f"FAIL  OpenPipe at OPENPIPE_BASE_URL ({hidden_openpipe}) failed: Could not reach OpenPipe" in output
    assert (
        "FAIL  DATABASE_URL (postgresql+psycopg://***@127.0.0.1:1/jobs?sslpassword=***) cannot be used "
        "(OperationalError): check the URL and that the server runs."
    ) in lines


def test_run_never_prints_url_credentials_either(tmp_path: Path) -> None:
    slack_url = refused_url().replace("http://", "http://slackuser:slackpass-xyz@")
    env = _env(tmp_path, slack_url, "")
    done = slackbot(["run"], env, tmp_path)
    assert done.returncode == 3
    assert "slackuser" not in done.stderr and "slackpass-xyz" not in done.stderr
    assert done.stderr.startswith(
        f"slackbot: cannot reach Slack at SLACK_API_URL ({slack_url.replace('slackuser:slackpass-xyz@', '***@')}: "
    )
    assert os.listdir(tmp_path) == []

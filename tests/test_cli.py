"""Settings and the CLI: every misconfiguration is one clear line naming the setting, never a traceback or a
secret; `slackbot check` names what is wrong against real (local) services."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from slackbot.cli import main
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.waiting import wait_until
from tests.cli_helpers import UNRESOLVABLE_URL, assert_clean, bot_env, free_port, refused_url, silent_server, slackbot
from tests.stand_ins.slack_socket import SocketModeServer

TOKEN = "xoxb-cli-test-token-424242"
KEY = "opk_cli_test_key_777777"
NAMES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "OPENPIPE_API_KEY",
    "OPENPIPE_BASE_URL",
    "DATABASE_URL",
    "POLL_INTERVAL_SECONDS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    yield


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({}, ["run"], "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": TOKEN}, ["run"], "OPENPIPE_API_KEY"),
        ({"SLACK_BOT_TOKEN": TOKEN, "OPENPIPE_API_KEY": KEY}, ["run"], "SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": TOKEN, "OPENPIPE_API_KEY": KEY}, ["run", "--http"], "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": TOKEN, "POLL_INTERVAL_SECONDS": "often"}, ["run"], "POLL_INTERVAL_SECONDS"),
        ({"SLACK_BOT_TOKEN": TOKEN, "POLL_INTERVAL_SECONDS": "-5"}, ["run"], "POLL_INTERVAL_SECONDS"),
        ({"SLACK_BOT_TOKEN": TOKEN, "DATABASE_URL": "mysql://x/y"}, ["run"], "DATABASE_URL"),
        ({"SLACK_BOT_TOKEN": TOKEN, "OPENPIPE_BASE_URL": "api.openpipe.ai"}, ["run"], "OPENPIPE_BASE_URL"),
        ({"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": "slack"}, ["run"], "SLACK_API_URL"),
    ],
)
def test_misconfiguration_is_one_line_naming_the_setting(
    env: dict[str, str],
    args: list[str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, output = _run(args, capsys)
    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], output
    assert TOKEN not in output and KEY not in output


def test_no_traceback_from_the_real_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in NAMES}
    env["SLACK_BOT_TOKEN"] = TOKEN
    env["POLL_INTERVAL_SECONDS"] = "soon"
    result = subprocess.run(
        [sys.executable, "-m", "slackbot", "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "POLL_INTERVAL_SECONDS" in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_check_passes_and_names_each_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    app_token = "xapp-1-A0LOCAL-1-clitest"
    with (
        LocalSlack(bot_token=TOKEN) as slack,
        SocketModeServer(slack, app_token=app_token),
        LocalOpenPipe(KEY) as openpipe,
    ):
        monkeypatch.setenv("SLACK_API_URL", slack.url)
        monkeypatch.setenv("OPENPIPE_BASE_URL", openpipe.url)
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("OPENPIPE_API_KEY", KEY)
        monkeypatch.setenv("SLACK_APP_TOKEN", app_token)
        # No database yet: fine (run creates it), and check leaves it uncreated.
        code, output = _run(["check"], capsys)
        assert code == 0 and "All checks passed." in output, output
        assert not (tmp_path / "cli.db").exists()

        # A database that exists but is not migrated: check says so, and how it gets fixed.
        sqlite3.connect(tmp_path / "cli.db").close()
        code, output = _run(["check"], capsys)
        assert code == 1 and "FAIL  Database schema is at nothing" in output, output

        from slackbot.jobs.db import make_engine, migrate

        migrate(make_engine(os.environ["DATABASE_URL"]))
        code, output = _run(["check"], capsys)
        assert code == 0, output
        assert "All checks passed." in output

        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-wrong-token-00000")
        monkeypatch.setenv("OPENPIPE_API_KEY", "opk_wrong_key_00000000")
        monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-not-an-app-token")
        code, output = _run(["check"], capsys)
        assert code == 1
        fails = [line for line in output.splitlines() if line.startswith("FAIL")]
        assert any("SLACK_BOT_TOKEN" in f for f in fails)
        assert any("OPENPIPE_API_KEY" in f for f in fails)
        assert any("SLACK_APP_TOKEN" in f for f in fails)
        assert "wrong" not in output  # the refused values are never echoed


# -- `slackbot run` meeting Slack at start: a real process, a real (or absent) Slack --------------------------

APP_TOKEN = "xapp-1-A0LOCAL-1-cli-start-app-token"
SIGNING_SECRET = "cli-start-signing-secret-0123456789"
ADVICE = "check the URL and this machine's network, then start again."


def _start_env(tmp_path: Path, slack_url: str, **extra: str) -> dict[str, str]:
    settings = dict(
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_url,
        OPENPIPE_API_KEY=KEY,
        OPENPIPE_BASE_URL=refused_url().removesuffix("/api/") + "/api/v1",
        SLACK_TIMEOUT_SECONDS="1",
        LOG_LEVEL="DEBUG",  # even at DEBUG, nothing but the one line comes before it
    )
    return bot_env(tmp_path, **{**settings, **extra})


@pytest.mark.parametrize("failure", ["refused", "unresolvable", "timeout"])
def test_run_without_slack_is_one_line_naming_the_network(failure: str, tmp_path: Path) -> None:
    """Socket Mode does not wait: `make run` on a workstation wants the answer now (a supervisor restarts a
    deployed process), so it exits 3 with one line that says Slack could not be reached, and why."""
    with silent_server() as silent:
        url, reason = {
            "refused": (refused_url(), "connection refused"),
            "unresolvable": (UNRESOLVABLE_URL, "host not found"),
            "timeout": (silent, "no answer within 1 s"),
        }[failure]
        done = slackbot(["run"], _start_env(tmp_path, url), tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert output == f"slackbot: cannot reach Slack at SLACK_API_URL ({url}: {reason}); {ADVICE}\n"
    assert_clean(output, TOKEN, APP_TOKEN, KEY, SIGNING_SECRET)
    assert not (tmp_path / "bot.db").exists()  # nothing was started


@pytest.mark.parametrize(
    ("token", "fault", "line"),
    [
        (
            "xoxb-cli-start-wrong-token-55555",
            None,
            "SLACK_BOT_TOKEN was refused by Slack (invalid_auth): copy the Bot User OAuth Token (xoxb-...) from "
            "OAuth & Permissions again.",
        ),
        (
            TOKEN,
            "account_inactive",
            "SLACK_BOT_TOKEN was refused by Slack (account_inactive): the app was uninstalled or its workspace "
            "deactivated: reinstall it and copy the new token.",
        ),
    ],
    ids=["invalid_auth", "account_inactive"],
)
def test_run_with_a_refused_token_shows_slacks_own_error(
    token: str, fault: str | None, line: str, tmp_path: Path
) -> None:
    with LocalSlack(bot_token=TOKEN) as slack:
        if fault is not None:
            slack.fail("auth.test", fault)
        done = slackbot(["run"], _start_env(tmp_path, slack.url, SLACK_BOT_TOKEN=token), tmp_path)
        assert len(slack.calls_to("auth.test")) == 1  # asked once, not retried
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert output == f"slackbot: {line}\n"
    assert_clean(output, token, APP_TOKEN, KEY, SIGNING_SECRET)
    assert not (tmp_path / "bot.db").exists()


def _events(log_path: Path) -> list[dict[str, Any]]:
    lines = log_path.read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _retries(log_path: Path) -> list[dict[str, Any]]:
    return [e for e in _events(log_path) if str(e["event"]).startswith("cannot reach Slack")]


def test_http_mode_waits_for_slack_then_serves(tmp_path: Path) -> None:
    slack_port, http_port = free_port(), free_port()
    slack_url = f"http://127.0.0.1:{slack_port}/api/"
    log_path = tmp_path / "bot.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "slackbot", "run", "--http", "--host", "127.0.0.1", "--port", str(http_port)],
            env=_start_env(tmp_path, slack_url),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        # Two attempts, each logged once (backoff 1 s, then 2 s), and the process still up.
        retries = wait_until(lambda: r if len(r := _retries(log_path)) >= 2 else [], timeout=20)
        assert proc.poll() is None
        reason = f"cannot reach Slack at SLACK_API_URL ({slack_url}: connection refused)"
        assert [(e["event"], e["attempt"], e["level"]) for e in retries[:2]] == [
            (f"{reason}; retrying in 1 s", 1, "warning"),
            (f"{reason}; retrying in 2 s", 2, "warning"),
        ]
        with LocalSlack(bot_token=TOKEN, port=slack_port) as slack:
            health = wait_until(
                lambda: (
                    (r := httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1)).status_code == 200 and r.json()
                ),
                timeout=20,
                ignoring=(httpx.HTTPError,),
            )
            assert health == {"ok": True, "database": True, "scheduler": True}
            assert slack.calls_to("auth.test")  # it did check the token once Slack answered
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    logs = log_path.read_text("utf-8")
    assert_clean(logs, TOKEN, APP_TOKEN, KEY, SIGNING_SECRET)
    assert "Failed to send a request" not in logs  # slack_sdk's own retry chatter stays out
    # Each attempt before Slack came up is one line (a loaded machine may fit in a third before it did).
    attempts = [e["attempt"] for e in _retries(log_path)]
    assert attempts == list(range(1, len(attempts) + 1)), attempts


def test_http_mode_stops_at_once_while_waiting_for_slack(tmp_path: Path) -> None:
    log_path = tmp_path / "bot.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "slackbot", "run", "--http", "--host", "127.0.0.1", "--port", str(free_port())],
            env=_start_env(tmp_path, refused_url()),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: _retries(log_path), timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (tmp_path / "bot.db").exists()
    assert_clean(log_path.read_text("utf-8"), TOKEN, APP_TOKEN, KEY, SIGNING_SECRET)


def test_run_with_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    with LocalSlack(bot_token=TOKEN) as slack:
        env = _start_env(tmp_path, slack.url, DATABASE_URL=f"postgresql://dbuser:dbpass-xyz@127.0.0.1:{port}/jobs")
        done = slackbot(["run"], env, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert output == (
        f"slackbot: cannot use the database at DATABASE_URL (postgresql+psycopg://***@127.0.0.1:{port}/jobs: "
        "OperationalError); check the URL and that the server runs, then start again.\n"
    )
    assert_clean(output, TOKEN, APP_TOKEN, KEY, SIGNING_SECRET, "dbuser", "dbpass-xyz")


def test_a_pasted_secret_with_a_stray_character_is_named(tmp_path: Path) -> None:
    with LocalSlack(bot_token=TOKEN) as slack:
        env = _start_env(tmp_path, slack.url, SLACK_BOT_TOKEN=TOKEN + "\x7f", OPENPIPE_API_KEY="opk_one two_3456")
        done = slackbot(["run"], env, tmp_path)
        assert slack.calls == []
    assert done.returncode == 2
    assert done.stderr == (
        "slackbot: cannot start, 2 settings to fix: SLACK_BOT_TOKEN contains spaces or invisible characters; "
        "OPENPIPE_API_KEY contains spaces or invisible characters. Fix them in .env or the environment; "
        "run `slackbot check` for details.\n"
    )
    assert_clean(done.stderr, TOKEN, "opk_one", "two_3456")

"""Settings and the CLI: every misconfiguration is one clear line naming the setting, never a traceback or a
secret; `slackbot check` names what is wrong against real (local) services."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from slackbot.cli import main
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack

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
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalSlack(bot_token=TOKEN) as slack, LocalOpenPipe(KEY) as openpipe:
        monkeypatch.setenv("SLACK_API_URL", slack.url)
        monkeypatch.setenv("OPENPIPE_BASE_URL", openpipe.url)
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("OPENPIPE_API_KEY", KEY)
        monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-test")
        # A fresh database is not migrated yet: check says so, and how it gets fixed.
        code, output = _run(["check"], capsys)
        assert code == 1 and "FAIL  Database schema" in output, output

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

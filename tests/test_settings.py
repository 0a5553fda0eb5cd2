"""Settings as a newcomer meets them: every problem named at once in one line (never a value, never a
traceback), `.env.example` listing every setting with its true default, and `make run` pointing at it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from slackbot.runtime import Runtime
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.settings import Settings, load_settings
from tests.cli_helpers import SETTING_NAMES, assert_clean, bot_env, slackbot

REPO = Path(__file__).resolve().parents[1]
TOKEN = "xoxb-settings-test-token-31337"
KEY = "opk_settings_test_key_271828"
CHECK = "run `slackbot check` for details."
COPY = "Copy .env.example to .env and fill it in (or set them in the environment)"


def test_every_problem_is_named_at_once_in_one_line(tmp_path: Path) -> None:
    env = bot_env(
        tmp_path,
        SLACK_BOT_TOKEN="xapp-1-pasted-the-app-token-here-4242",  # the wrong kind of token
        SLACK_API_URL="slack.com/api",
        OPENPIPE_TIMEOUT_SECONDS="0",
        DATABASE_URL="mysql://dbuser:hunter2secret@db.example/jobs",
        POLL_INTERVAL_SECONDS="often",
        BROADCAST_FAILURES="sometimes",
        LOG_LEVEL="loud",
    )
    done = slackbot(["run"], env, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert output == (
        "slackbot: cannot start, 9 settings to fix: SLACK_BOT_TOKEN does not start with xoxb-; "
        "SLACK_APP_TOKEN is not set (Socket Mode; `slackbot run --http` needs SLACK_SIGNING_SECRET); "
        "SLACK_API_URL must be an http:// or https:// URL; set OPENPIPE_API_KEY (or another backend's key); "
        "OPENPIPE_TIMEOUT_SECONDS must be greater than 0; DATABASE_URL must be a sqlite:/// or postgresql:// URL; "
        "POLL_INTERVAL_SECONDS must be a number; BROADCAST_FAILURES must be true or false; "
        f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR. {COPY}; {CHECK}\n"
    )
    assert_clean(output, "pasted-the-app-token", "hunter2secret", "dbuser", "often", "sometimes", "loud")
    assert not (tmp_path / "bot.db").exists()


def test_malformed_only_says_where_to_fix_it(tmp_path: Path) -> None:
    env = bot_env(
        tmp_path,
        SLACK_BOT_TOKEN=TOKEN,
        OPENPIPE_API_KEY=KEY,
        SLACK_SIGNING_SECRET="settings-test-signing-secret",
        SLACK_TIMEOUT_SECONDS="0.5",
    )
    done = slackbot(["run", "--http"], env, tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "slackbot: cannot start, 1 setting to fix: SLACK_TIMEOUT_SECONDS must be a whole number. "
        f"Fix it in .env or the environment; {CHECK}\n"
    )


def test_a_bot_token_in_slack_app_token_is_caught_before_slack_is_asked(tmp_path: Path) -> None:
    with LocalSlack(bot_token=TOKEN) as slack:
        env = bot_env(
            tmp_path, SLACK_BOT_TOKEN=TOKEN, SLACK_APP_TOKEN=TOKEN, OPENPIPE_API_KEY=KEY, SLACK_API_URL=slack.url
        )
        done = slackbot(["run"], env, tmp_path)
        assert slack.calls == []
    assert done.returncode == 2
    assert done.stderr == (
        "slackbot: cannot start, 1 setting to fix: SLACK_APP_TOKEN does not start with xapp-. "
        f"Fix it in .env or the environment; {CHECK}\n"
    )
    assert_clean(done.stderr, TOKEN, KEY)


# -- .env.example -------------------------------------------------------------------------------------------

ASSIGNMENT = re.compile(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$")


def _example() -> list[str]:
    return (REPO / ".env.example").read_text("utf-8").splitlines()


def test_env_example_lists_every_setting_once_with_a_comment() -> None:
    lines = _example()
    named = [(i, m.group(2)) for i, line in enumerate(lines) if (m := ASSIGNMENT.match(line))]
    assert sorted(name for _, name in named) == sorted(SETTING_NAMES)
    for i, name in named:
        comment = lines[i - 1]
        assert comment.startswith("# ") and not ASSIGNMENT.match(comment) and len(comment) > 10, name


def test_env_example_shows_the_true_defaults_and_a_fresh_copy_means_not_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # Every optional line uncommented as shown: exactly the defaults.
    (tmp_path / ".env").write_text("\n".join(line.removeprefix("# ") for line in _example()) + "\n", "utf-8")
    assert load_settings() == Settings.model_construct()
    # A fresh copy (`NAME=` for the required ones) is "not set", not "malformed".
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    done = slackbot(["run"], bot_env(tmp_path), tmp_path)
    assert done.stderr == (
        "slackbot: cannot start, 3 settings to fix: SLACK_BOT_TOKEN is not set; SLACK_APP_TOKEN is not set "
        "(Socket Mode; `slackbot run --http` needs SLACK_SIGNING_SECRET); "
        "set OPENPIPE_API_KEY (or another backend's key). "
        f"{COPY}; {CHECK}\n"
    )


def test_make_run_without_configuration_says_what_to_set_and_where(tmp_path: Path) -> None:
    """`make run` in a fresh checkout (its .venv already built): the one line, pointing at .env.example."""
    make = shutil.which("make")
    assert make is not None, "make is needed: the README's two commands are make targets"
    for name in ("Makefile", ".env.example", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    os.utime(tmp_path / "pyproject.toml", (0, 0))  # older than .venv/.installed: make does not reinstall
    env = bot_env(tmp_path)
    env.pop("DATABASE_URL")
    env.pop("MAKEFLAGS", None)
    done = subprocess.run(
        [make, "--no-print-directory", "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == (
        "slackbot: cannot start, 3 settings to fix: SLACK_BOT_TOKEN is not set; SLACK_APP_TOKEN is not set "
        "(Socket Mode; `slackbot run --http` needs SLACK_SIGNING_SECRET); "
        "set OPENPIPE_API_KEY (or another backend's key). "
        f"{COPY}; {CHECK}"
    ), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "slackbot.db").exists()


# -- credentials in URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@slack.example/api/", "https://***@slack.example/api/"),
        ("postgresql+psycopg://bot:s3cret@db:5432/jobs", "postgresql+psycopg://***@db:5432/jobs"),
        ("postgresql://db/jobs?sslmode=require&password=s3cret", "postgresql://db/jobs?sslmode=require&password=***"),
        ("http://tokenonly@127.0.0.1:8787/api/v1", "http://***@127.0.0.1:8787/api/v1"),
        ("sqlite:///slackbot.db", "sqlite:///slackbot.db"),
        ("https://api.openpipe.ai/api/v1", "https://api.openpipe.ai/api/v1"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    from slackbot.settings import redact_url

    assert redact_url(url) == shown


def test_the_card_never_shows_credentials_from_openpipe_base_url(tmp_path: Path) -> None:
    with LocalSlack(bot_token=TOKEN) as slack, LocalOpenPipe(KEY) as openpipe:
        with_credentials = openpipe.url.replace("http://", "http://opuser:oppass-secret@")
        settings = load_settings(
            slack_bot_token=TOKEN,
            openpipe_api_key=KEY,
            slack_api_url=slack.url,
            openpipe_base_url=with_credentials,
            database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        )
        runtime = Runtime.build(settings)
        try:
            # The curl example on the card is built from this.
            assert runtime.notifier.config.openpipe_api_base == openpipe.url.replace("http://", "http://***@")
        finally:
            runtime.stop()


def test_log_level_and_format_take_any_case(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("LOG_FORMAT", "Text")
    settings = load_settings()
    assert (settings.log_level, settings.log_format) == ("DEBUG", "text")

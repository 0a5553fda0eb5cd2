"""Together's settings come from its declaration (no hand-written fields), `slackbot check` verifies its key with a
cheap authenticated read as a real process, and a wrong setting names itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from slackbot.backends.registry import declared
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.together_api import LocalTogether
from slackbot.settings import Settings, SettingsError, hint, load_settings, setting_names
from tests.cli_helpers import assert_clean, bot_env, refused_url, slackbot

TOKEN = "xoxb-together-check-token-31337"
KEY = "tgp_together_check_key_2718281828"


@pytest.fixture
def services() -> Iterator[tuple[LocalSlack, LocalTogether]]:
    with LocalSlack(bot_token=TOKEN) as slack, LocalTogether(KEY) as together:
        yield slack, together


def _check(tmp_path: Path, slack: LocalSlack, **settings: str) -> tuple[int, list[str]]:
    env = bot_env(
        tmp_path,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_API_URL=slack.url,
        SLACK_SIGNING_SECRET="together-check-signing-secret",
        SLACK_TIMEOUT_SECONDS="2",
        **settings,
    )
    done = slackbot(["check"], env, tmp_path)
    assert done.stderr == "", done.stderr
    assert_clean(done.stdout, KEY, TOKEN)
    return done.returncode, done.stdout.splitlines()


def test_every_declared_backend_has_its_three_settings() -> None:
    names = setting_names()
    for declaration in declared():
        s = declaration.settings
        assert [s.api_key, s.base_url, s.timeout_seconds] == names[names.index(s.api_key) : names.index(s.api_key) + 3]
        assert hint(s.api_key) == s.hint
    settings = Settings(_env_file=None, together_api_key=KEY)
    assert settings.together_base_url == "https://api.together.ai" and settings.together_timeout_seconds == 20.0
    assert settings.openpipe_base_url == "https://api.openpipe.ai/api/v1" and settings.openpipe_api_key is None
    assert isinstance(settings.together_api_key, SecretStr) and KEY not in repr(settings)


def test_a_wrong_together_setting_names_itself(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOGETHER_BASE_URL", "api.together.ai")
    monkeypatch.setenv("TOGETHER_TIMEOUT_SECONDS", "0")
    with pytest.raises(SettingsError) as wrong:
        load_settings()
    assert str(wrong.value) == (
        "cannot start, 2 settings to fix: TOGETHER_BASE_URL must be an http:// or https:// URL; "
        "TOGETHER_TIMEOUT_SECONDS must be greater than 0. Fix them in .env or the environment; "
        "run `slackbot check` for details."
    )


def test_check_verifies_the_together_key(tmp_path: Path, services: tuple[LocalSlack, LocalTogether]) -> None:
    slack, together = services
    code, lines = _check(tmp_path, slack, TOGETHER_API_KEY=KEY, TOGETHER_BASE_URL=together.url)
    assert f"ok    TOGETHER_API_KEY works: 3 dataset(s) at {together.url}." in lines, lines
    assert not [line for line in lines if "OPENPIPE" in line]  # a backend that is off is not checked
    assert code == 0, lines
    assert [r.path for r in together.requests] == ["/files"]  # one cheap authenticated read


def test_check_names_a_refused_key_and_an_unreachable_service(
    tmp_path: Path, services: tuple[LocalSlack, LocalTogether]
) -> None:
    slack, together = services
    code, lines = _check(tmp_path, slack, TOGETHER_API_KEY="tgp_wrong_key_000", TOGETHER_BASE_URL=together.url)
    assert code == 1
    assert (
        "FAIL  TOGETHER_API_KEY was refused by Together: copy your Together API key (api.together.ai, Settings → "
        "API keys) again." in lines
    ), lines
    down = refused_url()
    code, lines = _check(tmp_path, slack, TOGETHER_API_KEY=KEY, TOGETHER_BASE_URL=down, TOGETHER_TIMEOUT_SECONDS="1")
    assert code == 1
    assert any(line.startswith(f"FAIL  Together at TOGETHER_BASE_URL ({down}) failed: ") for line in lines), lines
    code, lines = _check(tmp_path, slack, TOGETHER_API_KEY=KEY, TOGETHER_BASE_URL="together")
    assert "FAIL  TOGETHER_BASE_URL must be an http:// or https:// URL." in lines
    assert "skip  TOGETHER_API_KEY not verified: TOGETHER_BASE_URL or TOGETHER_TIMEOUT_SECONDS is malformed." in lines


def test_check_without_any_backend_key_names_each(tmp_path: Path, services: tuple[LocalSlack, LocalTogether]) -> None:
    slack, _ = services
    code, lines = _check(tmp_path, slack)
    assert code == 1
    assert (
        "FAIL  OPENPIPE_API_KEY is not set: set it to your OpenPipe project API key (opk_...) "
        "(or another backend's key: TOGETHER_API_KEY)." in lines
    ), lines


def test_the_card_examples_api_base_is_the_base_url_with_v1_as_the_sdk_reads_it() -> None:
    together = next(d for d in declared() if d.name == "together").settings
    assert together.api_base("https://api.together.ai") == "https://api.together.ai/v1"
    assert together.api_base("http://127.0.0.1:8788/") == "http://127.0.0.1:8788/v1"
    assert together.api_base("https://proxy.example.com/together/v1") == "https://proxy.example.com/together/v1"
    openpipe = next(d for d in declared() if d.name == "openpipe").settings
    assert openpipe.api_base("https://api.openpipe.ai/api/v1/") == "https://api.openpipe.ai/api/v1"  # unchanged

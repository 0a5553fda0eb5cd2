"""ChannelVisibility against the local Slack: one conversations.info per channel however many ask at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from slackbot.sandbox.slack_api import LocalSlack
from slackbot.visibility import ChannelVisibility

TOKEN = "xoxb-local-test"


class GatedClient(WebClient):
    """A real client whose conversations.info waits at a gate first, so concurrent askers truly overlap."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def conversations_info(self, **kw: Any) -> SlackResponse:
        self.entered.set()
        assert self.gate.wait(10)
        return super().conversations_info(**kw)


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    with LocalSlack(bot_token=TOKEN) as local:
        yield local


def test_concurrent_askers_share_one_call(slack: LocalSlack) -> None:
    client = GatedClient(token=TOKEN, base_url=slack.url)
    visibility = ChannelVisibility(client)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = [pool.submit(visibility.is_public, "C0GENERAL") for _ in range(8)]
        assert client.entered.wait(5)
        # The other seven are waiting for the first one's answer, not asking themselves.
        threading.Event().wait(0.2)
        client.gate.set()
        assert [a.result(timeout=10) for a in answers] == [True] * 8
    assert len(slack.calls_to("conversations.info")) == 1


def test_private_dm_unknown_and_failing_channels_are_not_public(slack: LocalSlack) -> None:
    now = [0.0]
    visibility = ChannelVisibility(WebClient(token=TOKEN, base_url=slack.url), ttl_seconds=60, clock=lambda: now[0])
    slack.add_channel("C0SECRET", "secret", is_private=True)
    dm = slack.workspace.open_im("U0ALICE").id
    assert visibility.is_public("C0RANDOM") is True  # public, even if the bot is not in it
    assert visibility.is_public("C0SECRET") is False
    assert visibility.is_public(dm) is False
    assert visibility.is_public("C0PRIVATE") is False  # private and the bot not in it: channel_not_found
    assert visibility.is_public("C0NOSUCH") is False
    slack.fail("conversations.info", "ratelimited", status=429, retry_after=0, times=1)
    slack.add_channel("C0NEW", "new")
    assert visibility.is_public("C0NEW") is False  # unknown for now: hidden, and asked again next time
    assert visibility.is_public("C0NEW") is True
    calls = len(slack.calls_to("conversations.info"))
    now[0] += 59
    assert visibility.is_public("C0NOSUCH") is False and visibility.is_public("C0RANDOM") is True
    assert len(slack.calls_to("conversations.info")) == calls  # remembered, "not found" too
    now[0] += 2
    assert visibility.is_public("C0RANDOM") is True
    assert len(slack.calls_to("conversations.info")) == calls + 1

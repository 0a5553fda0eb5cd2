"""conversations.replies / conversations.history honour `oldest`, `latest`, `inclusive` and `cursor` as Slack
does, so reconciliation's "only what is newer than the row" is tested against the same rules it meets there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.slack_api import LocalSlack

TOKEN = "xoxb-local-test"
START = 1_782_907_200.0  # 2026-07-01: today's ten-digit epoch, where a float barely holds microseconds


@pytest.fixture
def stamped() -> Iterator[tuple[LocalSlack, ManualClock, WebClient]]:
    clock = ManualClock(START)
    with LocalSlack(clock=clock, post_rate_per_channel=None, stamp_clock=clock) as slack:
        yield slack, clock, WebClient(token=TOKEN, base_url=slack.url, timeout=5)


def _all(web: WebClient, method: str, **args: Any) -> list[str]:
    """Every ts the method returns, following `next_cursor` with a small page size."""
    seen: list[str] = []
    cursor = None
    while True:
        page = getattr(web, method)(channel="C0GENERAL", limit=3, **args, **({"cursor": cursor} if cursor else {}))
        seen += [m["ts"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            return seen


def test_replies_and_history_windows(stamped: tuple[LocalSlack, ManualClock, WebClient]) -> None:
    slack, clock, web = stamped
    parent = slack.add_message("C0GENERAL", "parent")
    thread = []
    for n in range(10):
        clock.advance(60)
        thread.append(slack.add_message("C0GENERAL", f"reply {n}", thread_ts=parent))
    tops = [parent]
    for n in range(4):
        clock.advance(60)
        tops.append(slack.add_message("C0GENERAL", f"top {n}"))
    assert parent == f"{START:.6f}" and thread[0] == f"{START + 60:.6f}"  # stamped with the given clock

    assert _all(web, "conversations_replies", ts=parent) == [parent, *thread]  # oldest first, over pages
    assert _all(web, "conversations_replies", ts=parent, oldest=thread[6]) == thread[7:]
    assert _all(web, "conversations_replies", ts=parent, oldest=thread[6], inclusive=True) == thread[6:]
    assert _all(web, "conversations_replies", ts=parent, oldest=thread[2], latest=thread[5]) == thread[3:5]
    both_ends = _all(web, "conversations_replies", ts=parent, oldest=thread[2], latest=thread[5], inclusive=True)
    assert both_ends == thread[2:6]
    assert _all(web, "conversations_history") == tops[::-1]  # newest first, thread replies left out
    assert _all(web, "conversations_history", oldest=tops[1]) == tops[:1:-1]
    assert _all(web, "conversations_history", latest=tops[2], inclusive=True) == tops[2::-1]
    # A microsecond matters: the message one microsecond after `oldest` is in, the one at it is not.
    close = slack.add_message("C0GENERAL", "same moment, one microsecond later")
    assert _all(web, "conversations_history", oldest=tops[-1]) == [close]
    with pytest.raises(SlackApiError) as bad:
        web.conversations_history(channel="C0GENERAL", oldest="yesterday")
    assert bad.value.response["error"] == "invalid_ts_oldest"

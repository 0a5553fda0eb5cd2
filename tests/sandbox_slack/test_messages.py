"""chat.* and conversations.* against LocalSlack through the real slack_sdk WebClient."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.slack_api import LocalSlack


def _error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(excinfo.value.response["error"])


@pytest.fixture
def unlimited() -> Iterator[LocalSlack]:
    with LocalSlack(clock=ManualClock(0.0), post_rate_per_channel=None) as local:
        yield local


@pytest.fixture
def web(unlimited: LocalSlack) -> WebClient:
    web = WebClient(token="xoxb-local-test", base_url=unlimited.url, timeout=5)
    web.retry_handlers.clear()
    return web


def test_post_message_answers_with_slack_shape(client: WebClient, slack: LocalSlack) -> None:
    blocks = [{"type": "section", "block_id": "b1", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    response = client.chat_postMessage(channel="C0GENERAL", text="hi", blocks=blocks, unfurl_links=False)
    assert response["ok"] is True and response["channel"] == "C0GENERAL"
    message = response["message"]
    assert message["ts"] == response["ts"] and message["user"] == "U0BOT" and message["bot_id"] == "B0BOT"
    assert message["blocks"] == blocks and message["text"] == "hi"
    [stored] = slack.messages("C0GENERAL")
    assert stored["unfurl_links"] is False and stored["unfurl_media"] is None and stored["thread_ts"] is None


def test_ts_is_unique_and_increasing(web: WebClient) -> None:
    stamps = [web.chat_postMessage(channel="C0GENERAL", text=str(i))["ts"] for i in range(20)]
    assert len(set(stamps)) == 20
    assert stamps == sorted(stamps, key=float)


def test_threads_replies_and_broadcast(web: WebClient, unlimited: LocalSlack) -> None:
    parent = web.chat_postMessage(channel="C0GENERAL", text="card")["ts"]
    first = web.chat_postMessage(channel="C0GENERAL", text="r1", thread_ts=parent)
    assert first["message"]["thread_ts"] == parent and first["message"]["parent_user_id"] == "U0BOT"
    # A reply to a reply lands in the same thread.
    web.chat_postMessage(channel="C0GENERAL", text="r2", thread_ts=first["ts"], reply_broadcast=True)
    assert [m["text"] for m in unlimited.thread("C0GENERAL", parent)] == ["r1", "r2"]
    assert [m["reply_broadcast"] for m in unlimited.thread("C0GENERAL", parent)] == [False, True]

    replies = web.conversations_replies(channel="C0GENERAL", ts=parent)
    assert [m["text"] for m in replies["messages"]] == ["card", "r1", "r2"]
    assert replies["messages"][0]["reply_count"] == 2
    history = web.conversations_history(channel="C0GENERAL")
    # Newest first; plain replies stay in the thread, broadcast ones also show in the channel.
    assert [m["text"] for m in history["messages"]] == ["r2", "card"]
    assert history["messages"][0]["subtype"] == "thread_broadcast"


def test_unknown_thread_ts_is_refused(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C0GENERAL", text="x", thread_ts="1.000001")
    assert _error(excinfo) == "invalid_thread_ts"
    with pytest.raises(SlackApiError) as excinfo:
        web.conversations_replies(channel="C0GENERAL", ts="1.000001")
    assert _error(excinfo) == "thread_not_found"


def test_metadata_is_stored_and_returned_only_on_request(web: WebClient, unlimited: LocalSlack) -> None:
    parent = web.chat_postMessage(channel="C0GENERAL", text="card")["ts"]
    meta = {"event_type": "job_transition", "event_payload": {"job": "j1", "status": "TRAINING"}}
    web.chat_postMessage(channel="C0GENERAL", text="training", thread_ts=parent, metadata=meta)
    # Form-encoded with metadata as a JSON string, as other clients send it.
    web.api_call(
        "chat.postMessage",
        data={"channel": "C0GENERAL", "text": "done", "thread_ts": parent, "metadata": json.dumps(meta)},
    )
    plain = web.conversations_replies(channel="C0GENERAL", ts=parent)
    assert all("metadata" not in m for m in plain["messages"])
    full = web.conversations_replies(channel="C0GENERAL", ts=parent, include_all_metadata=True)
    assert [m.get("metadata") for m in full["messages"]] == [None, meta, meta]
    assert unlimited.thread("C0GENERAL", parent)[1]["metadata"] == meta


def test_bad_metadata_is_refused(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C0GENERAL", text="x", metadata={"event_payload": {}})
    assert _error(excinfo) == "invalid_metadata_format"


def test_replies_paginate(web: WebClient) -> None:
    parent = web.chat_postMessage(channel="C0GENERAL", text="p")["ts"]
    for i in range(4):
        web.chat_postMessage(channel="C0GENERAL", text=f"r{i}", thread_ts=parent)
    texts: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = web.conversations_replies(channel="C0GENERAL", ts=parent, limit=2, cursor=cursor)
        texts += [m["text"] for m in page["messages"]]
        pages += 1
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            break
    assert texts == ["p", "r0", "r1", "r2", "r3"] and pages == 3


def test_update_keeps_history_and_checks_ownership(web: WebClient, unlimited: LocalSlack) -> None:
    ts = web.chat_postMessage(channel="C0GENERAL", text="v1")["ts"]
    updated = web.chat_update(channel="C0GENERAL", ts=ts, text="v2", blocks=[{"type": "divider"}])
    assert updated["ts"] == ts and updated["message"]["edited"]["user"] == "U0BOT"
    [stored] = unlimited.messages("C0GENERAL")
    assert stored["text"] == "v2" and stored["blocks"] == [{"type": "divider"}]
    assert [e["text"] for e in stored["edits"]] == ["v1"]

    with pytest.raises(SlackApiError) as excinfo:
        web.chat_update(channel="C0GENERAL", ts="1.000001", text="x")
    assert _error(excinfo) == "message_not_found"
    human = unlimited.add_message("C0GENERAL", "mine", user_id="U0BOB")
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_update(channel="C0GENERAL", ts=human, text="hijack")
    assert _error(excinfo) == "cant_update_message"


def test_membership_rules(client: WebClient, slack: LocalSlack, clock: ManualClock) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0RANDOM", text="x")
    assert _error(excinfo) == "not_in_channel"
    joined = client.conversations_join(channel="C0RANDOM")
    assert joined["channel"]["is_member"] is True
    assert client.chat_postMessage(channel="C0RANDOM", text="x")["ok"]
    assert client.conversations_join(channel="C0RANDOM")["warning"] == "already_in_channel"

    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_join(channel="C0PRIVATE")
    assert _error(excinfo) == "method_not_supported_for_channel_type"
    calls: list[Callable[[], object]] = [
        lambda: client.chat_postMessage(channel="C0PRIVATE", text="x"),
        lambda: client.conversations_info(channel="C0PRIVATE"),
    ]
    for call in calls:
        with pytest.raises(SlackApiError) as excinfo:
            call()
        assert _error(excinfo) == "channel_not_found"

    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0ARCHIVE", text="x")
    assert _error(excinfo) == "is_archived"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0NOPE", text="x")
    assert _error(excinfo) == "channel_not_found"

    slack.add_channel("C0SECRET", "secret", is_private=True, bot_is_member=True)
    clock.advance(5)
    assert client.chat_postMessage(channel="C0SECRET", text="x")["ok"]
    info = client.conversations_info(channel="C0SECRET")["channel"]
    assert info["is_private"] is True and info["is_member"] is True


def test_post_by_channel_name(web: WebClient) -> None:
    assert web.chat_postMessage(channel="#general", text="x")["channel"] == "C0GENERAL"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_content_limits(web: WebClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"blocks": [{"type": "divider"}] * 51, "text": "x"}, "invalid_blocks"),
        ({}, "no_text"),
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"text": "x", "blocks": [{"type": "divider", "block_id": "a"}] * 2}, "invalid_blocks"),
    ]
    for kwargs, error in cases:
        with pytest.raises(SlackApiError) as excinfo:
            web.chat_postMessage(channel="C0GENERAL", **kwargs)
        assert _error(excinfo) == error
    assert web.chat_postMessage(channel="C0GENERAL", text="x", blocks=[{"type": "divider"}] * 50)["ok"]


def test_ephemeral_permalink_dm_users_groups(web: WebClient, unlimited: LocalSlack) -> None:
    assert web.chat_postEphemeral(channel="C0GENERAL", user="U0ALICE", text="psst")["message_ts"]
    assert unlimited.messages("C0GENERAL") == []  # ephemeral messages are not kept

    ts = web.chat_postMessage(channel="C0GENERAL", text="x")["ts"]
    link = web.chat_getPermalink(channel="C0GENERAL", message_ts=ts)["permalink"]
    assert link.endswith("/archives/C0GENERAL/p" + ts.replace(".", ""))

    dm = web.conversations_open(users="U0ALICE")
    assert dm["channel"]["id"].startswith("D")
    again = web.conversations_open(users="U0ALICE")
    assert again["channel"]["id"] == dm["channel"]["id"] and again["already_open"] is True
    assert web.chat_postMessage(channel=dm["channel"]["id"], text="hello")["ok"]
    # Posting to a user ID goes to the same DM.
    assert web.chat_postMessage(channel="U0ALICE", text="again")["channel"] == dm["channel"]["id"]

    assert web.users_info(user="U0ALICE")["user"]["name"] == "alice"
    unlimited.add_usergroup("S0OPS", ["U0ALICE", "U0BOB"])
    assert web.usergroups_users_list(usergroup="S0OPS")["users"] == ["U0ALICE", "U0BOB"]
    failing: list[tuple[Callable[[], object], str]] = [
        (lambda: web.users_info(user="U0GHOST"), "user_not_found"),
        (lambda: web.usergroups_users_list(usergroup="S0NONE"), "no_such_subteam"),
        (lambda: web.conversations_open(users="U0GHOST"), "user_not_found"),
    ]
    for call, error in failing:
        with pytest.raises(SlackApiError) as excinfo:
            call()
        assert _error(excinfo) == error


def test_history_window_and_bad_cursor(web: WebClient) -> None:
    stamps = [web.chat_postMessage(channel="C0GENERAL", text=str(i))["ts"] for i in range(4)]
    window = web.conversations_history(channel="C0GENERAL", oldest=stamps[1], latest=stamps[3])
    assert [m["text"] for m in window["messages"]] == ["2"]
    inclusive = web.conversations_history(channel="C0GENERAL", oldest=stamps[1], latest=stamps[3], inclusive=True)
    assert [m["text"] for m in inclusive["messages"]] == ["3", "2", "1"]
    with pytest.raises(SlackApiError) as excinfo:
        web.conversations_history(channel="C0GENERAL", cursor="not-a-cursor")
    assert _error(excinfo) == "invalid_cursor"

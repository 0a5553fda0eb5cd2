"""Auth, recorded calls, injected faults and the per-channel post rate, seen through slack_sdk's WebClient."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.slack_api import LocalSlack


def test_auth(slack: LocalSlack) -> None:
    anonymous = WebClient(base_url=slack.url)
    with pytest.raises(SlackApiError) as excinfo:
        anonymous.auth_test()
    assert excinfo.value.response["error"] == "not_authed"
    wrong = WebClient(token="xoxb-wrong-secret", base_url=slack.url)
    with pytest.raises(SlackApiError) as excinfo:
        wrong.chat_postMessage(channel="C0GENERAL", text="x")
    assert excinfo.value.response["error"] == "invalid_auth"
    assert slack.messages("C0GENERAL") == []
    # Tokens never end up in the record of calls.
    assert all("xoxb" not in repr(call) for call in slack.calls)


def test_auth_test_identifies_the_bot(client: WebClient) -> None:
    answer = client.auth_test()
    assert (answer["user_id"], answer["team_id"], answer["bot_id"]) == ("U0BOT", "T0LOCAL", "B0BOT")


def test_calls_are_recorded_with_decoded_args(client: WebClient, slack: LocalSlack, clock: ManualClock) -> None:
    blocks = [{"type": "divider"}]
    clock.advance(7)
    client.chat_postMessage(channel="C0GENERAL", text="x", blocks=blocks)
    client.api_call(
        "chat.postEphemeral", data={"channel": "C0GENERAL", "user": "U0ALICE", "blocks": '[{"type": "divider"}]'}
    )
    [post] = slack.calls_to("chat.postMessage")
    assert post.args["blocks"] == blocks and post.at == 1_007.0 and post.status == 200
    assert post.response is not None and post.response["ok"] is True
    [ephemeral] = slack.calls_to("chat.postEphemeral")
    assert ephemeral.args["blocks"] == blocks
    slack.reset_calls()
    assert slack.calls == []


def test_unknown_method(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.fly")
    assert excinfo.value.response["error"] == "unknown_method"


def test_injected_errors(client: WebClient, slack: LocalSlack) -> None:
    slack.fail("users.info", "fatal_error", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as excinfo:
            client.users_info(user="U0ALICE")
        assert excinfo.value.response["error"] == "fatal_error"
    assert client.users_info(user="U0ALICE")["ok"]

    slack.fail("chat.update", status=500)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="C0GENERAL", ts="1.1", text="x")
    assert excinfo.value.response.status_code == 500
    assert excinfo.value.response["error"] == "internal_error"


def test_injected_429_is_retried_by_the_rate_limit_handler(slack: LocalSlack) -> None:
    slack.fail("views.update", status=429, retry_after=0, times=1)
    web = WebClient(
        token="xoxb-local-test", base_url=slack.url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    with pytest.raises(SlackApiError) as excinfo:
        web.views_update(
            view_id="V0NOPE", view={"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []}
        )
    # The retry reached the real method, which then refused the unknown view.
    assert excinfo.value.response["error"] == "not_found"
    assert [c.status for c in slack.calls_to("views.update")] == [429, 200]


def test_post_rate_per_channel(client: WebClient, slack: LocalSlack, clock: ManualClock) -> None:
    assert client.chat_postMessage(channel="C0GENERAL", text="1")["ok"]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0GENERAL", text="2")
    response = excinfo.value.response
    assert response.status_code == 429 and response["error"] == "ratelimited"
    assert response.headers["Retry-After"] == "1"
    # Another channel has its own bucket.
    client.conversations_join(channel="C0RANDOM")
    assert client.chat_postMessage(channel="C0RANDOM", text="elsewhere")["ok"]
    clock.advance(0.5)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C0GENERAL", text="3")
    clock.advance(0.5)
    assert client.chat_postMessage(channel="C0GENERAL", text="4")["ok"]
    assert [m["text"] for m in slack.messages("C0GENERAL")] == ["1", "4"]


def test_burst_and_slower_rate() -> None:
    clock = ManualClock(0.0)
    with LocalSlack(clock=clock, post_rate_per_channel=0.25, burst=3) as slack:
        web = WebClient(token="xoxb-local-test", base_url=slack.url)
        web.retry_handlers.clear()
        for i in range(3):
            web.chat_postMessage(channel="C0GENERAL", text=str(i))
        with pytest.raises(SlackApiError) as excinfo:
            web.chat_postMessage(channel="C0GENERAL", text="over")
        assert excinfo.value.response.headers["Retry-After"] == "4"
        clock.advance(4)
        assert web.chat_postMessage(channel="C0GENERAL", text="after")["ok"]


def test_rate_limit_can_be_disabled() -> None:
    with LocalSlack(post_rate_per_channel=None) as slack:
        web = WebClient(token="xoxb-local-test", base_url=slack.url)
        for i in range(10):
            web.chat_postMessage(channel="C0GENERAL", text=str(i))
        assert len(slack.messages("C0GENERAL")) == 10


def test_rate_limit_handler_waits_for_retry_after_on_real_time() -> None:
    with LocalSlack() as slack:
        web = WebClient(
            token="xoxb-local-test",
            base_url=slack.url,
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
        )
        started = time.monotonic()
        web.chat_postMessage(channel="C0GENERAL", text="1")
        web.chat_postMessage(channel="C0GENERAL", text="2")
        assert time.monotonic() - started >= 1.0
        assert [c.status for c in slack.calls_to("chat.postMessage")] == [200, 429, 200]
        assert [m["text"] for m in slack.messages("C0GENERAL")] == ["1", "2"]


@pytest.fixture
def unlimited() -> Iterator[LocalSlack]:
    with LocalSlack(post_rate_per_channel=None) as local:
        yield local


def test_accept_then_drop_stores_the_post_but_answers_nothing(unlimited: LocalSlack) -> None:
    web = WebClient(token="xoxb-local-test", base_url=unlimited.url)
    web.retry_handlers.clear()
    parent = web.chat_postMessage(channel="C0GENERAL", text="card")["ts"]
    meta = {"event_type": "job_transition", "event_payload": {"key": "job-1:TRAINING"}}
    unlimited.fail("chat.postMessage", kind="accept_then_drop")
    with pytest.raises(ConnectionError):
        web.chat_postMessage(channel="C0GENERAL", text="training", thread_ts=parent, metadata=meta)
    # The post happened: a reconciler can find it by its metadata.
    thread = web.conversations_replies(channel="C0GENERAL", ts=parent, include_all_metadata=True)["messages"]
    assert [m.get("metadata") for m in thread[1:]] == [meta]
    [dropped] = [c for c in unlimited.calls_to("chat.postMessage") if c.args.get("text") == "training"]
    assert dropped.response is not None and dropped.response["ok"] is True and dropped.dropped
    assert web.chat_postMessage(channel="C0GENERAL", text="next")["ok"]


def test_default_connection_retry_duplicates_a_dropped_post(unlimited: LocalSlack) -> None:
    # slack_sdk retries connection errors once by default: exactly the duplicate the outbox must prevent.
    web = WebClient(token="xoxb-local-test", base_url=unlimited.url)
    unlimited.fail("chat.postMessage", kind="accept_then_drop")
    assert web.chat_postMessage(channel="C0GENERAL", text="hello")["ok"]
    assert [m["text"] for m in unlimited.messages("C0GENERAL")] == ["hello", "hello"]


def test_wait_for(client: WebClient, slack: LocalSlack) -> None:
    with pytest.raises(TimeoutError):
        slack.wait_for("chat.postMessage", timeout=0.05)
    client.chat_postMessage(channel="C0GENERAL", text="x")
    assert len(slack.wait_for("chat.postMessage", timeout=1)) == 1

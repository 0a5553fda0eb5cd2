"""The local Slack's file uploads: the three steps of slack_sdk's files_upload_v2, the file shown in the thread
with its title, answers shaped as the Web API spec says (shared/slack/web-api.json), Slack's errors, and the
files.* rate limit (429 with Retry-After) on the stand-in's clock."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.slack_api import LocalSlack

WEB_API = Path(__file__).resolve().parents[2].parent / "shared" / "slack" / "web-api.json"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") + (360).to_bytes(4, "big") + b"\x08" * 20


def _validator(schema_of: Callable[[dict[str, Any]], dict[str, Any]]) -> jsonschema.protocols.Validator:
    spec = json.loads(WEB_API.read_text("utf-8"))
    return jsonschema.Draft4Validator({**schema_of(spec), "definitions": spec["definitions"]})


FILE_SCHEMA = _validator(lambda spec: spec["definitions"]["objs_file"])
FILES_INFO_SCHEMA = _validator(lambda spec: spec["paths"]["/files.info"]["get"]["responses"]["200"]["schema"])


@pytest.fixture
def fast(clock: ManualClock) -> Any:
    # No per-channel post pace: these tests post a parent then upload at once.
    with LocalSlack(clock=clock, post_rate_per_channel=None) as local:
        yield local


def _client(slack: LocalSlack) -> WebClient:
    web = WebClient(token="xoxb-local-test", base_url=slack.url, timeout=5)
    web.retry_handlers.clear()
    return web


def test_files_upload_v2_shares_the_file_in_the_thread_with_its_title(fast: LocalSlack) -> None:
    web = _client(fast)
    parent = web.chat_postMessage(channel="C0GENERAL", text="card")["ts"]
    answer = web.files_upload_v2(
        channel="C0GENERAL", thread_ts=parent, file=PNG, filename="curve.png", title="Loss curve", alt_txt="a curve"
    )
    FILE_SCHEMA.validate(answer["file"])
    assert answer["file"]["title"] == "Loss curve" and answer["file"]["name"] == "curve.png"
    # What the SDK sent, step by step.
    get_url, upload, complete = [c for c in fast.calls if c.method != "chat.postMessage"]
    assert get_url.method == "files.getUploadURLExternal"
    assert get_url.args == {"filename": "curve.png", "length": str(len(PNG)), "alt_txt": "a curve"}
    assert upload.method == "upload" and upload.args["bytes"] == len(PNG)
    assert complete.method == "files.completeUploadExternal"
    assert complete.args["channel_id"] == "C0GENERAL" and complete.args["thread_ts"] == parent
    assert complete.args["files"] == [{"id": answer["file"]["id"], "title": "Loss curve"}]
    # The thread's replies show it, as conversations.replies returns them.
    replies = web.conversations_replies(channel="C0GENERAL", ts=parent)["messages"]
    assert len(replies) == 2 and replies[1]["thread_ts"] == parent and replies[1]["user"] == "U0BOT"
    (shown,) = replies[1]["files"]
    FILE_SCHEMA.validate(shown)
    assert (shown["id"], shown["title"], shown["mimetype"]) == (answer["file"]["id"], "Loss curve", "image/png")
    assert (shown["original_w"], shown["original_h"]) == (640, 360)
    info = web.files_info(file=shown["id"]).data
    assert isinstance(info, dict)
    FILES_INFO_SCHEMA.validate(info)
    assert info["file"]["channels"] == ["C0GENERAL"]


def test_a_reply_ts_joins_the_thread_and_a_missing_parent_is_refused(fast: LocalSlack) -> None:
    web = _client(fast)
    parent = web.chat_postMessage(channel="C0GENERAL", text="card")["ts"]
    reply = web.chat_postMessage(channel="C0GENERAL", text="reply", thread_ts=parent)["ts"]
    web.files_upload_v2(channel="C0GENERAL", thread_ts=reply, file=PNG, filename="a.png", title="A")
    assert [m.get("files", [{}])[0].get("title") for m in fast.thread("C0GENERAL", parent)] == [None, "A"]
    with pytest.raises(SlackApiError) as refused:
        web.files_upload_v2(channel="C0GENERAL", thread_ts="123.456", file=PNG, filename="b.png", title="B")
    assert refused.value.response["error"] == "invalid_thread_ts"


@pytest.mark.parametrize(("channel", "error"), [("C0RANDOM", "not_in_channel"), ("C0ARCHIVE", "is_archived")])
def test_a_channel_the_bot_cannot_post_in_is_refused(fast: LocalSlack, channel: str, error: str) -> None:
    with pytest.raises(SlackApiError) as refused:
        _client(fast).files_upload_v2(channel=channel, file=PNG, filename="c.png", title="C")
    assert refused.value.response["error"] == error


def test_the_upload_url_takes_exactly_the_announced_bytes_once(fast: LocalSlack) -> None:
    web = _client(fast)
    got = web.files_getUploadURLExternal(filename="d.png", length=len(PNG))
    url, file_id = str(got["upload_url"]), str(got["file_id"])
    with pytest.raises(urllib.error.HTTPError) as short:
        urllib.request.urlopen(urllib.request.Request(url, data=PNG[:10], method="POST"), timeout=5)  # noqa: S310
    assert short.value.code == 400
    with pytest.raises(SlackApiError) as early:
        web.files_completeUploadExternal(files=[{"id": file_id, "title": "D"}], channel_id="C0GENERAL")
    assert early.value.response["error"] == "file_not_found"  # nothing uploaded yet
    with urllib.request.urlopen(urllib.request.Request(url, data=PNG, method="POST"), timeout=5) as ok:  # noqa: S310
        assert ok.status == 200 and ok.read() == f"OK - {len(PNG)}".encode()
    web.files_completeUploadExternal(files=[{"id": file_id, "title": "D"}], channel_id="C0GENERAL")
    with pytest.raises(SlackApiError) as twice:
        web.files_completeUploadExternal(files=[{"id": file_id, "title": "D"}], channel_id="C0GENERAL")
    assert twice.value.response["error"] == "file_already_completed"
    with pytest.raises(SlackApiError) as empty:
        web.files_getUploadURLExternal(filename="e.png", length=0)
    assert empty.value.response["error"] == "missing_argument"


def test_the_files_methods_are_rate_limited_per_workspace_with_retry_after(clock: ManualClock) -> None:
    with LocalSlack(clock=clock, post_rate_per_channel=None, file_rate_per_minute=20) as slack:
        web = _client(slack)
        for _ in range(3):  # the burst
            web.files_getUploadURLExternal(filename="f.png", length=10)
        with pytest.raises(SlackApiError) as limited:
            web.files_getUploadURLExternal(filename="f.png", length=10)
        assert limited.value.response.status_code == 429
        assert limited.value.response["error"] == "ratelimited"
        assert limited.value.response.headers["Retry-After"] == "3"  # 20 a minute: one every 3 s
        clock.advance(3)
        web.files_getUploadURLExternal(filename="f.png", length=10)
        with pytest.raises(SlackApiError):
            web.files_getUploadURLExternal(filename="f.png", length=10)
        assert [c.status for c in slack.calls] == [200, 200, 200, 429, 200, 429]

"""Slash sub-commands, the dataset options, and request verification, through the real HTTP endpoint."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from slackbot import ids
from slackbot.sandbox.driver import SlackDriver
from tests.e2e.harness import OPENPIPE_KEY, SIGNING_SECRET, Harness


def _command(h: Harness, text: str) -> str:
    return h.command(text)


def test_help_and_unknown_subcommand(harness: Harness) -> None:
    h = harness
    help_text = _command(h, "help")
    for word in ("/finetune status", "/finetune list", "/finetune track"):
        assert word in help_text
    unknown = _command(h, "frobnicate now")
    assert "frobnicate" in unknown and "/finetune help" in unknown
    assert h.slack.calls_to("views.open") == []


def test_status_list_and_track(harness: Harness) -> None:
    h = harness
    assert "No fine-tunes yet" in _command(h, "list")
    assert "track nothing-here" in _command(h, "status nothing-here")

    # A model created elsewhere (e.g. OpenPipe's web UI) is followed in this channel.
    dataset = h.openpipe.add_dataset("Elsewhere", entries=10)
    from pydantic import SecretStr

    from slackbot.backends.openpipe import OpenPipeBackend
    from slackbot.backends.openpipe.fields import Provider, openpipe_spec

    other = OpenPipeBackend(SecretStr(OPENPIPE_KEY), h.openpipe.url)
    other.create(
        openpipe_spec(dataset_id=dataset, slug="made-in-web-ui", provider=Provider.OPENPIPE, base_model="Qwen/Qwen3-8B")
    )
    other.close()
    assert "Looking up" in _command(h, "track made-in-web-ui")
    card = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
    assert "made-in-web-ui" in card["text"]
    assert "Looking up" in _command(h, "track made-in-web-ui")
    again = h.wait(lambda: [c for c in h.slack.calls_to("chat.postEphemeral") if "already" in str(c.args)])
    assert "`made-in-web-ui` is already followed in <#C0GENERAL>" in again[-1].args["text"]
    assert "made-in-web-ui" in _command(h, "list")
    assert "PENDING" in _command(h, "status made-in-web-ui")
    h.run_for(130, step=5)
    status = _command(h, "status made-in-web-ui")
    assert "PROVISIONING" in status or "TRAINING" in status, status

    # Another workspace (same app, another team) sees none of it.
    other_team = SlackDriver(h.server.url, SIGNING_SECRET, h.slack, team_id="T0OTHER")
    try:
        listed = h.command("list", driver=other_team)
        assert "No fine-tunes yet" in listed and "made-in-web-ui" not in listed
        assert "track made-in-web-ui" in h.command("status made-in-web-ui", driver=other_team)
    finally:
        other_team.close()
    # Tracking a model that does not exist says so.
    _command(h, "track no-such-model")
    ephemerals = h.wait(lambda: [c for c in h.slack.calls_to("chat.postEphemeral") if "no-such-model" in str(c.args)])
    assert "no model" in str(ephemerals[-1].args.get("text")).lower()


def test_dataset_options_filter_and_survive_a_slow_openpipe(harness: Harness) -> None:
    h = harness
    h.openpipe.add_dataset("Alpha tickets", entries=3)
    h.openpipe.add_dataset("Beta chats", entries=7)
    view = h.open_modal()
    options = h.dataset_option(view, "beta")
    assert [o["text"]["text"].split(" · ")[0] for o in options] == ["Beta chats"]

    # OpenPipe becomes very slow: the cached list still answers at once.
    h.runtime.catalog.invalidate_datasets()
    h.openpipe.inject("GET /datasets", "latency", delay=2.5, times=None)
    started = time.monotonic()
    options = h.dataset_option(view, "alpha")
    assert time.monotonic() - started < 1.0
    assert [o["text"]["text"].split(" · ")[0] for o in options] == ["Alpha tickets"]


def test_dataset_options_cold_cache_and_failing_openpipe_give_a_readable_option(harness: Harness) -> None:
    h = harness
    h.openpipe.inject("GET /datasets", "status", status=500, times=None)
    view = h.open_modal()
    started = time.monotonic()
    options = h.dataset_option(view, "")
    assert time.monotonic() - started < 3.0
    assert len(options) == 1 and options[0]["value"] == ids.OPTION_ERROR_VALUE
    assert "openpipe" in options[0]["text"]["text"].lower()


def test_forged_stale_and_unsigned_requests_are_refused_before_any_handler(harness: Harness) -> None:
    h = harness
    body = urlencode(
        {
            "team_id": h.slack.team_id,
            "user_id": "U0ALICE",
            "channel_id": "C0GENERAL",
            "command": "/finetune",
            "text": "",
            "trigger_id": h.slack.issue_trigger_id(user_id="U0ALICE"),
        }
    )
    form = "application/x-www-form-urlencoded"
    forged = h.driver.signed_post(body, form, signature="v0=" + "0" * 64)
    stale = h.driver.signed_post(body, form, timestamp=int(time.time()) - 6 * 60)
    unsigned = h.driver.signed_post(body, form, omit_headers=True)
    # A body signed for one timestamp, replayed with another.
    good = h.driver.signed_post(body, form, timestamp=int(time.time()) - 10)
    replay_sig = good.request.headers["X-Slack-Signature"]
    replayed = h.driver.signed_post(body, form, timestamp=int(time.time()), signature=replay_sig)
    for response in (forged, stale, unsigned, replayed):
        assert response.status_code == 401, response.text
    time.sleep(0.3)
    # Only the one genuine request reached a handler.
    assert len(h.slack.calls_to("views.open")) == 1


def test_slugs_that_are_not_model_slugs_are_refused_before_any_request(harness: Harness) -> None:
    h = harness
    time.sleep(0.2)  # let anything started before this test reach OpenPipe first
    before = len(h.openpipe.requests)
    for text in ("track ..", "track .", "status ..", "status .", "track ../datasets", "track a%2F..", "track x?y"):
        answer = h.command(text)
        assert "is not a model slug" in answer, (text, answer)
        assert "Looking up" not in answer
    # A name made in OpenPipe's web UI (capitals allowed there) is still looked up.
    assert "Looking up" in h.command("track Made-In-Web-UI")
    h.wait(lambda: len(h.openpipe.requests) > before)
    time.sleep(0.2)
    assert [r.path for r in h.openpipe.requests[before:]] == ["/models/Made-In-Web-UI"]

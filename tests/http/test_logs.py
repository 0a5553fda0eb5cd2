"""Logs: one line per event whatever a value holds, no request bodies from Bolt at any level, nothing from an
idle bot, at most one line per outgoing request, and no misleading start-up warning."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware.request_verification import RequestVerification

from slackbot.app import create_app
from slackbot.demo import BOT_TOKEN, SIGNING_SECRET, OfflineBot

MARKER = "TYPED-BY-SOMEONE-4b1d"
# Every way of starting a new line that a log reader (or str.splitlines) honours.
BREAKS = ["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]
FORGED = '2026-01-01 00:00:00,000 ERROR slackbot.web: {"forged": true}'


def _fail() -> None:
    raise RuntimeError("boom" + "".join(f"{b}{FORGED}" for b in BREAKS))


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_line_break_in_any_value_cannot_forge_a_line(logs: Callable[..., io.StringIO], fmt: str) -> None:
    stream = logs("INFO", fmt)
    log = logging.getLogger("slackbot.test")
    for brk in BREAKS:
        log.info("slug %s", f"a{brk}{FORGED}", extra={"team": f"T1{brk}{FORGED}"})
    try:
        _fail()
    except RuntimeError:
        log.exception("tick failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(BREAKS) + 1, lines
    assert not any(line.startswith(FORGED) for line in lines)
    if fmt == "json":
        events = [json.loads(line) for line in lines]
        # Escaped, not lost: the values read back exactly as they were logged.
        assert [e["team"] for e in events[:-1]] == [f"T1{b}{FORGED}" for b in BREAKS]
        assert "Traceback" in events[-1]["exc"] and events[-1]["exc"].count(FORGED) == len(BREAKS)
    else:
        assert "Traceback" in lines[-1] and lines[-1].count(FORGED) == len(BREAKS)
        assert r"a\n" + FORGED in lines[0] and r"T1\n" + FORGED in lines[0]


def test_bolt_never_logs_a_request_body_at_any_level(bot: OfflineBot, logs: Callable[..., io.StringIO]) -> None:
    stream = logs("DEBUG")
    # Bolt's own signature check (behind ours) writes the whole body into an INFO line when it fails.
    verification = RequestVerification(SIGNING_SECRET, base_logger=logging.getLogger("slackbot.bolt"))
    forged = BoltRequest(
        body=f"text={MARKER}",
        headers={"x-slack-request-timestamp": str(int(time.time())), "x-slack-signature": "v0=00"},
    )
    assert (
        verification.process(req=forged, resp=BoltResponse(status=200), next=lambda: BoltResponse(status=200)).status
        == 401
    )
    # A signed request no listener handles: Bolt warns with the values the user picked or typed.
    unhandled = bot.driver.post_payload(
        {
            "type": "block_actions",
            "team": {"id": bot.slack.team_id},
            "user": {"id": "U0ALICE"},
            "api_app_id": bot.slack.app_id,
            "trigger_id": "1.2.3",
            "actions": [{"action_id": "nobody_listens", "block_id": "b", "type": "button", "value": MARKER}],
        }
    )
    assert unhandled.status_code == 404
    # A signed command, answered: Bolt's DEBUG lines print the request and the response.
    answered = bot.driver.slash_command("/finetune", text=f"frobnicate {MARKER.lower()}")
    assert answered.status_code == 200 and MARKER.lower() in answered.text  # the ack carries the usage answer
    text = stream.getvalue()
    assert MARKER not in text and MARKER.lower() not in text
    events = [json.loads(line) for line in text.splitlines()]
    assert any(e["event"] == "Unhandled request" for e in events), events  # still told, without the values


def test_an_idle_bot_writes_nothing(tmp_path: Path, logs: Callable[..., io.StringIO]) -> None:
    bot = OfflineBot(tmp_path, poll_interval_seconds=0.1)
    try:
        stream = logs("INFO")
        bot.runtime.start()
        # Starting refreshes the catalog once (datasets, models): one line per request, then quiet.
        bot.wait(lambda: stream.getvalue().count('"logger": "slackbot.openpipe"') >= 2)
        bot.wait(lambda: bot.runtime.scheduler.ticks >= 2)
        start_lines, start_ticks = len(stream.getvalue().splitlines()), bot.runtime.scheduler.ticks
        bot.wait(lambda: bot.runtime.scheduler.ticks >= start_ticks + 5)  # 5 tracker ticks, 5+ notifier runs
        idle = stream.getvalue().splitlines()[start_lines:]
    finally:
        bot.close()
    assert idle == []


def _client_lines(stream: io.StringIO) -> list[str]:
    """The lines of the bot's side: the stand-ins in this process log what they serve, too."""
    return [line for line in stream.getvalue().splitlines() if '"logger": "slackbot.sandbox' not in line]


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_one_line_per_outgoing_request(bot: OfflineBot, logs: Callable[..., io.StringIO], level: str) -> None:
    stream = logs(level)
    bot.runtime.backend.list_datasets()  # one request to OpenPipe
    lines = _client_lines(stream)
    assert len(lines) == 1, lines
    assert "GET /datasets" in lines[0]

    stream = logs(level)
    # The first attempt's connection drops and the client retries: two requests in all.
    bot.slack.fail("auth.test", kind="accept_then_drop")
    assert bot.runtime.slack.auth_test()["ok"]
    assert len(bot.slack.calls_to("auth.test")) >= 2
    lines = _client_lines(stream)
    assert 1 <= len(lines) <= 2, lines


def test_no_token_will_be_unused_warning(
    bot: OfflineBot, logs: Callable[..., io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)  # as `slackbot run` has it
    stream = logs("DEBUG")
    app = create_app(bot.runtime)
    assert app.client is bot.runtime.slack
    assert "unused" not in stream.getvalue()
    assert [json.loads(line)["level"] for line in stream.getvalue().splitlines()].count("warning") == 0
    assert os.environ["SLACK_BOT_TOKEN"] == BOT_TOKEN  # the environment is left as it was


def test_an_uncaught_exception_in_a_thread_is_one_json_line(
    logs: Callable[..., io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in `slackbot run`: Python's own hooks (the test runner installs its own, which logging leaves alone).
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    stream = logs("INFO")

    def crash() -> None:
        raise ValueError("line one\nline two")

    thread = threading.Thread(target=crash, name="worker-1")
    thread.start()
    thread.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    event = json.loads(lines[0])
    assert (event["level"], event["thread_name"]) == ("error", "worker-1")
    assert "line one\nline two" in event["exc"]


def test_a_run_skipped_because_the_last_one_still_runs_is_not_a_warning(logs: Callable[..., io.StringIO]) -> None:
    stream = logs("INFO")
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    # APScheduler's own wording, on a busy machine where a tick outlasts the interval (max_instances=1 on purpose).
    scheduler_log.warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)', "JobScheduler._run", 1
    )
    assert stream.getvalue() == ""
    scheduler_log.warning("Run time of job %s was missed by %s", "JobScheduler._run", "0:00:05")  # still told
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["event"].startswith("Run time of job")

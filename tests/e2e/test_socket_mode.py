"""`slackbot run` in its default Socket Mode as a real process, against LocalSlack's Socket Mode server:
slash command, options, a refused and an accepted submission, a reconnect Slack asks for, a clean SIGTERM;
and a refused app-level token ending in one readable line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from slackbot import ids
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.waiting import wait_until
from tests.stand_ins.slack_socket import NoAck, SocketModeDriver, SocketModeServer

TOKEN = "xoxb-socket-mode-token-24680"
APP_TOKEN = "xapp-1-A0LOCAL-1-socketmodeapptoken13579"
KEY = "opk_socket_mode_key_97531abcd"

T = TypeVar("T")


def _env(slack: LocalSlack, openpipe: LocalOpenPipe, tmp_path: Path, app_token: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENPIPE_"))},
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_APP_TOKEN": app_token,
        "SLACK_API_URL": slack.url,
        "OPENPIPE_API_KEY": KEY,
        "OPENPIPE_BASE_URL": openpipe.url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "POLL_INTERVAL_SECONDS": "0.3",
        "LOG_LEVEL": "DEBUG",
    }


@pytest.fixture
def stand_ins() -> Iterator[tuple[ManualClock, LocalOpenPipe, LocalSlack, SocketModeServer]]:
    clock = ManualClock(start=time.time())
    with (
        LocalOpenPipe(KEY, clock=clock, step_seconds=60) as openpipe,
        LocalSlack(bot_token=TOKEN) as slack,
        SocketModeServer(slack, app_token=APP_TOKEN) as server,
    ):
        yield clock, openpipe, slack, server


def test_socket_mode_process_end_to_end(
    tmp_path: Path, stand_ins: tuple[ManualClock, LocalOpenPipe, LocalSlack, SocketModeServer]
) -> None:
    clock, openpipe, slack, server = stand_ins
    openpipe.add_dataset("Socket dataset", entries=42)
    log_path = tmp_path / "bot.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "slackbot", "run"],
            env=_env(slack, openpipe, tmp_path, APP_TOKEN),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        server.wait_connected(timeout=15)
        assert [c.response["ok"] for c in slack.calls_to("apps.connections.open") if c.response] == [True]

        driver = SocketModeDriver(server)
        command = driver.slash_command("/finetune")
        assert command.status_code == 200 and not command.content  # a bare ack: the modal is the answer
        assert driver.last_ack is not None and driver.last_ack.after < 3.0  # inside Slack's 3 s window
        view = driver.wait_for_view()
        opened = slack.calls_to("views.open")[-1].response
        assert opened is not None and opened["ok"]

        suggestion = driver.block_suggestion(view["id"], ids.ACTION_DATASET, ids.BLOCK_DATASET, "")
        options = suggestion.json()["options"]
        picked = next(o for o in options if o["text"]["text"].startswith("Socket dataset"))
        values: dict[str, Any] = {
            ids.BLOCK_DATASET: picked,
            ids.BLOCK_SLUG: "Bad Slug!",
            "base_model__openpipe": "Qwen/Qwen3-8B",
        }

        refused = driver.view_submission(view["id"], values).json()
        assert refused["response_action"] == "errors" and ids.BLOCK_SLUG in refused["errors"], refused
        assert view["id"] in slack.views  # Slack keeps the modal open, showing the errors

        answer = driver.view_submission(view["id"], {**values, ids.BLOCK_SLUG: "from-a-socket"})
        assert answer.status_code == 200 and not answer.content, answer.text
        assert view["id"] not in slack.views  # a bare ack closes the modal
        card = wait_until(lambda: [m for m in slack.messages("C0GENERAL") if m.get("user") == slack.bot_user_id])[0]
        assert "from-a-socket" in json.dumps(card)
        clock.advance(60)  # the scheduler runs in this mode too: QUEUED is told in the card's thread
        wait_until(lambda: slack.thread("C0GENERAL", card["ts"]))

        # Slack rotates connections with a `disconnect` message; the bot reconnects with a fresh ticket.
        server.request_reconnect()
        server.wait_connected(opened=2, timeout=10)
        wait_until(lambda: server.connected == 1)
        assert len(slack.calls_to("apps.connections.open")) == 2
        assert driver.slash_command("/finetune").status_code == 200
        driver.wait_for_view()
        assert server.unexpected == [] and server.rejected_handshakes == 0
        driver.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    logs = log_path.read_text("utf-8")
    assert code == 0, logs[-3000:]
    assert "stopped" in logs
    assert "Traceback" not in logs, [line for line in logs.splitlines() if "Traceback" in line]
    posted = json.dumps(slack.messages("C0GENERAL"))
    for secret in (TOKEN, APP_TOKEN, KEY):
        assert secret not in logs, "a secret leaked into the logs"
        assert secret not in posted, "a secret leaked into Slack"


# A bot token in SLACK_APP_TOKEN never reaches Slack now (its prefix is checked first): tests/test_settings.py.
@pytest.mark.parametrize(
    ("app_token", "error"),
    [("xapp-1-A0LOCAL-1-wrongtoken0000", "invalid_auth")],
    ids=["wrong-app-token"],
)
def test_refused_app_token_is_one_readable_line(
    tmp_path: Path,
    stand_ins: tuple[ManualClock, LocalOpenPipe, LocalSlack, SocketModeServer],
    app_token: str,
    error: str,
) -> None:
    _, openpipe, slack, server = stand_ins
    done = subprocess.run(
        [sys.executable, "-m", "slackbot", "run"],
        env=_env(slack, openpipe, tmp_path, app_token),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("slackbot: SLACK_APP_TOKEN") and error in last, last
    assert "Traceback" not in done.stderr + done.stdout
    assert app_token not in done.stderr + done.stdout
    assert [c.response["error"] for c in slack.calls_to("apps.connections.open") if c.response] == [error]
    assert server.connections_opened == 0


def test_builtin_client_handshake_hello_ping_and_ack(
    stand_ins: tuple[ManualClock, LocalOpenPipe, LocalSlack, SocketModeServer],
) -> None:
    """The server itself, with slack_sdk's builtin client in-process: what the bot relies on, one by one."""
    _, _, slack, server = stand_ins
    received: list[dict[str, Any]] = []

    def answer(client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        received.append(req.payload)
        client.send_socket_mode_response(SocketModeResponse(req.envelope_id, payload={"echo": req.payload["n"]}))

    hellos: list[str] = []
    client = SocketModeClient(
        APP_TOKEN,
        web_client=WebClient(token=TOKEN, base_url=slack.url),
        on_message_listeners=[hellos.append],
        auto_reconnect_enabled=False,
    )
    client.socket_mode_request_listeners.append(answer)
    try:
        client.connect()
        server.wait_connected()
        session = client.current_session
        assert session is not None
        # connect() pinged; a pong carrying the same session id and time is how the client knows it is alive
        wait_until(lambda: session.last_ping_pong_time is not None)
        assert json.loads(wait_until(lambda: hellos)[0])["type"] == "hello"

        ack = server.deliver("interactive", {"type": "block_actions", "n": 7})
        assert ack.payload == {"echo": 7} and received == [{"type": "block_actions", "n": 7}]
        with pytest.raises(NoAck):
            server.wait_ack("never-sent", timeout=0.2)

        # Slack closing the connection is seen by the client (which would reconnect if allowed to).
        server.close_connections()
        wait_until(lambda: server.connected == 0 and not client.is_connected())

        # A ticket opens one connection: replaying the URL is refused at the handshake.
        assert client.wss_uri is not None
        with pytest.raises(InvalidStatus) as refused:
            connect(client.wss_uri, open_timeout=3).close()
        assert refused.value.response.status_code == 401 and server.rejected_handshakes == 1
        assert server.connections_opened == 1
    finally:
        client.close()

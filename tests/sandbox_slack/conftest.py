"""Fixtures: a LocalSlack on a controllable clock, WebClients against it, and a tiny real Bolt app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.driver import SlackDriver
from slackbot.sandbox.slack_api import LocalSlack

TOKEN = "xoxb-local-test"
SIGNING_SECRET = "local-signing-secret"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_000.0)


@pytest.fixture
def slack(clock: ManualClock) -> Iterator[LocalSlack]:
    with LocalSlack(clock=clock) as local:
        yield local


@pytest.fixture
def client(slack: LocalSlack) -> WebClient:
    # No retry handlers: each test sees exactly what the server answered.
    web = WebClient(token=TOKEN, base_url=slack.url, timeout=5)
    web.retry_handlers.clear()
    return web


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class BoltApp:
    """A real Bolt app served over loopback; `seen` collects every payload its listeners received."""

    app: App
    url: str
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def bodies(self, kind: str) -> list[dict[str, Any]]:
        return [body for seen_kind, body in self.seen if seen_kind == kind]


@pytest.fixture
def bolt(slack: LocalSlack) -> Iterator[BoltApp]:
    app = App(
        token=TOKEN,
        signing_secret=SIGNING_SECRET,
        client=WebClient(token=TOKEN, base_url=slack.url, timeout=5),
        # Run listeners before answering, so a test sees their effects as soon as the request returns.
        process_before_response=True,
    )
    server = make_server("127.0.0.1", 0, SlackRequestHandler(app), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    harness = BoltApp(app=app, url=f"http://127.0.0.1:{server.server_port}/slack/events")
    try:
        yield harness
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def driver(bolt: BoltApp, slack: LocalSlack) -> Iterator[SlackDriver]:
    with SlackDriver(bolt.url, SIGNING_SECRET, slack) as drv:
        yield drv

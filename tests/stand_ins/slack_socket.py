"""Slack's Socket Mode on loopback, for the bot's default transport (Bolt's builtin `SocketModeHandler`).

`SocketModeServer` adds `apps.connections.open` to a `LocalSlack` (answered only for the app-level token)
and serves the `ws://` URLs it hands out: one-use tickets, Slack's `hello` on connect, envelopes pushed to
the newest connection, acks recorded by envelope_id, `disconnect` to make the client reconnect. Pings are
answered by the `websockets` library. slack_sdk's builtin client speaks plain TCP to any port but 443, so
`ws://127.0.0.1:PORT` needs no TLS.

`SocketModeDriver` is a `SlackDriver` whose requests travel as envelopes: an ack comes back as a 200
response whose JSON body is the ack's payload (empty when the ack had none), so HTTP-mode tests read the same.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from slackbot.sandbox.clock import Clock
from slackbot.sandbox.driver import SlackDriver
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.slack_common import Args

EnvelopeType = Literal["slash_commands", "interactive", "events_api"]


@dataclass(frozen=True)
class Ack:
    envelope_id: str
    payload: dict[str, Any] | None
    after: float  # seconds between sending the envelope and receiving its ack


class NoAck(TimeoutError):
    """The app did not acknowledge an envelope in time (Slack shows the user an error after 3 s)."""


class NotConnected(RuntimeError):
    """No Socket Mode connection is open to deliver an envelope on."""


class SocketModeServer:
    def __init__(
        self,
        slack: LocalSlack,
        *,
        app_token: str = "xapp-1-A0LOCAL-1-localtest",  # noqa: S107  (a fake token for a fake workspace)
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.slack = slack
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tickets: set[str] = set()
        self._live: list[ServerConnection] = []
        self._sent_at: dict[str, float] = {}
        self.acks: dict[str, Ack] = {}
        self.unexpected: list[str] = []  # messages from the app that were not acks
        self.envelopes: list[dict[str, Any]] = []
        self.connections_opened = 0
        self.rejected_handshakes = 0
        self._server: Server = serve(
            self._session,
            host,
            port,
            process_request=self._check_ticket,
            compression=None,  # Slack's builtin client offers no extensions
            ping_interval=None,  # the client pings; the library answers
        )
        self.host = host
        self.port = int(self._server.socket.getsockname()[1])
        self._thread: threading.Thread | None = None
        slack.register_method("apps.connections.open", self._open, token=app_token)

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> SocketModeServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="local-slack-socket", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- Slack's side --------------------------------------------------------------------------------------

    def _open(self, args: Args) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        return {"url": f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id={self.slack.app_id}"}

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        ticket = parse_qs(parts.query).get("ticket", [""])[0]
        with self._lock:
            valid = parts.path == "/link/" and ticket in self._tickets
            self._tickets.discard(ticket)  # a ticket opens one connection
            if valid:
                return None
            self.rejected_handshakes += 1
        return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid or used ticket\n")

    def _session(self, connection: ServerConnection) -> None:
        with self._changed:
            self._live.append(connection)
            self.connections_opened += 1
            live = len(self._live)
            self._changed.notify_all()
        try:
            connection.send(json.dumps(self._hello(live)))
            for raw in connection:
                self._receive(raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                self._live.remove(connection)
                self._changed.notify_all()

    def _hello(self, live: int) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": live,
            "debug_info": {"host": "applink-local", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.slack.app_id},
        }

    def _receive(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        with self._changed:
            if not isinstance(message, dict) or not isinstance(message.get("envelope_id"), str):
                self.unexpected.append(raw)
                return
            envelope_id = message["envelope_id"]
            if envelope_id in self.acks or envelope_id not in self._sent_at:
                self.unexpected.append(raw)  # a second ack, or one for an envelope never sent
                return
            payload = message.get("payload")
            after = time.monotonic() - self._sent_at[envelope_id]
            self.acks[envelope_id] = Ack(envelope_id, payload if isinstance(payload, dict) else None, after)
            self._changed.notify_all()

    # -- for tests ---------------------------------------------------------------------------------------

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._live)

    def wait_connected(self, opened: int = 1, timeout: float = 10.0) -> None:
        """Block until `opened` connections were made in all and one is open."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.connections_opened >= opened and self._live, timeout):
                raise TimeoutError(f"{self.connections_opened} Socket Mode connections made, expected {opened}")

    def push(
        self,
        kind: EnvelopeType,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Send one envelope on the newest connection; returns its envelope_id."""
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "payload": payload, "type": kind}
        if kind == "events_api":
            envelope.update(accepts_response_payload=False, retry_attempt=retry_attempt, retry_reason=retry_reason)
        else:
            envelope["accepts_response_payload"] = True
        with self._lock:
            if not self._live:
                raise NotConnected("no Socket Mode connection is open")
            connection = self._live[-1]
            self._sent_at[envelope_id] = time.monotonic()
            self.envelopes.append(envelope)
        connection.send(json.dumps(envelope))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 3.0) -> Ack:
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self.acks, timeout):
                raise NoAck(f"envelope {envelope_id} was not acknowledged within {timeout} s")
            return self.acks[envelope_id]

    def deliver(self, kind: EnvelopeType, payload: dict[str, Any], *, timeout: float = 3.0, **retry: Any) -> Ack:
        return self.wait_ack(self.push(kind, payload, **retry), timeout)

    def close_connections(self, reason: str = "") -> None:
        """Close every open connection from Slack's side, with a close frame (as when Slack restarts a host)."""
        with self._lock:
            live = list(self._live)
        for connection in live:
            connection.close(reason=reason)

    def request_reconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's `disconnect` message: the client opens a new connection, then drops this one."""
        with self._lock:
            if not self._live:
                raise NotConnected("no Socket Mode connection is open")
            connection = self._live[-1]
        connection.send(json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-local"}}))


class SocketModeDriver(SlackDriver):
    """The `SlackDriver`'s slash commands, interactions and events, sent as Socket Mode envelopes."""

    def __init__(
        self,
        server: SocketModeServer,
        *,
        clock: Clock | None = None,
        ack_timeout: float = 3.0,
    ) -> None:
        # Socket Mode signs nothing: the secret only satisfies the HTTP driver this builds on.
        super().__init__(f"ws://{server.host}:{server.port}/link/", "unused", server.slack, clock=clock)
        self.server = server
        self.ack_timeout = ack_timeout
        self.last_ack: Ack | None = None

    def _post(self, text: str, content_type: str, headers: dict[str, str]) -> httpx.Response:
        """Deliver what would have been POSTed; signatures have no place in Socket Mode and are ignored."""
        sent = {k.lower(): v for k, v in headers.items()}
        if "json" in content_type:
            retry = sent.get("x-slack-retry-num")
            ack = self.server.deliver(
                "events_api",
                json.loads(text),
                timeout=self.ack_timeout,
                retry_attempt=int(retry) if retry is not None else 0,
                retry_reason=sent.get("x-slack-retry-reason", "") if retry is not None else "",
            )
        else:
            fields = dict(parse_qsl(text, keep_blank_values=True))
            if "payload" in fields:
                ack = self.server.deliver("interactive", json.loads(fields["payload"]), timeout=self.ack_timeout)
            else:
                ack = self.server.deliver("slash_commands", fields, timeout=self.ack_timeout)
        self.last_ack = ack
        content = b"" if ack.payload is None else json.dumps(ack.payload).encode("utf-8")
        return httpx.Response(
            200,
            content=content,
            headers={"Content-Type": "application/json"},
            request=httpx.Request("POST", self.app_url),
        )

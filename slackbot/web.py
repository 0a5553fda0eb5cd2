"""HTTP mode: Slack's requests at POST /slack/events and GET /healthz, served by waitress (a production WSGI
server: multi-threaded, no C extensions, runs anywhere Python does)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger("slackbot.web")

EVENTS_PATH = "/slack/events"


def wsgi_app(app: App, health: Callable[[], dict[str, Any]]) -> Callable[..., Iterable[bytes]]:
    bolt = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            report = health()
            body = json.dumps(report).encode()
            status = "200 OK" if report.get("ok") else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return bolt(environ, start_response)

    return application


class HttpServer:
    """waitress in a thread (tests, demo) or in the foreground (`slackbot run --http`)."""

    def __init__(self, app: App, health: Callable[[], dict[str, Any]], host: str = "0.0.0.0", port: int = 3000):
        self._server = create_server(
            wsgi_app(app, health), host=host, port=port, threads=32, ident="slackbot", channel_timeout=30
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        # create_server() may return a multi-socket server in waitress's stubs; we always bind one socket.
        return int(self._server.effective_port)  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{EVENTS_PATH}"

    def serve_forever(self) -> None:
        log.info("serving Slack requests", extra={"port": self.port, "path": EVENTS_PATH})
        # waitress raises EBADF from its select loop once close() ran in another thread: a clean stop.
        with contextlib.suppress(OSError):
            self._server.run()

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

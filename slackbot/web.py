"""HTTP mode: Slack's requests at POST /slack/events and GET /healthz, served by waitress (a production WSGI
server: multi-threaded, no C extensions, runs anywhere Python does).

The edge is for strangers too. A request reaches Bolt only after waitress has refused headers over
`MAX_HEADER_BYTES` and bodies over `MAX_BODY_BYTES` (413, before they are read: by Content-Length, or as a chunked
body passes the cap), and after `wsgi_app` has checked the Slack signature on the raw bytes and that the body is
a payload Bolt can parse. A refused request costs a bounded buffer and one short log line without its body.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_sdk.signature import SignatureVerifier
from waitress.server import create_server

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger("slackbot.web")

EVENTS_PATH = "/slack/events"
# Slack's payloads stay far below this (a whole modal view is under 250 kB).
MAX_BODY_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 32 * 1024
# Waitress reads headers and bodies on its event loop and hands a request to a thread only once it is complete,
# so slow clients hold a connection (a socket and at most MAX_HEADER_BYTES), never a thread. The limit leaves
# room for a few hundred of them beside Slack; past it waitress stops accepting until some close.
CONNECTION_LIMIT = 500
# A connection silent this long is closed (checked every CLEANUP_SECONDS); Slack sends a request in one go.
CHANNEL_TIMEOUT_SECONDS = 10
CLEANUP_SECONDS = 2
# A Slack request holds its thread until ack() (Bolt waits up to 3 s, usually milliseconds); this many
# requests can wait on acks at once before the next one queues.
THREADS = 32


def wsgi_app(
    app: App, health: Callable[[], dict[str, Any]], *, signing_secret: str | None = None
) -> Callable[..., Iterable[bytes]]:
    # The App's own secret unless told otherwise (Bolt keeps it in a private attribute, with no accessor).
    secret = app._signing_secret if signing_secret is None else signing_secret
    verifier = SignatureVerifier(secret) if secret.strip() else None

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path == "/healthz" and method == "GET":
            report = health()
            return _answer(start_response, 200 if report.get("ok") else 503, json.dumps(report), "application/json")
        if path != EVENTS_PATH:
            return _answer(start_response, 404, "Not Found")
        if method != "POST":
            return _answer(start_response, 405, "Method Not Allowed")
        return _events(environ, start_response)

    def _events(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(start_response, 400, "bad Content-Length")
        # waitress already answered 413 to these; kept so the cap holds under any WSGI server.
        if length > MAX_BODY_BYTES:
            return _refuse(start_response, 413, "body too large", length)
        raw: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        try:
            signed = verifier is not None and verifier.is_valid(raw, timestamp, signature)
        except ValueError:  # a timestamp that is not a number
            signed = False
        if not signed:
            return _refuse(start_response, 401, "bad signature", len(raw))
        try:
            request = BoltRequest(
                body=raw.decode("utf-8"), query=environ.get("QUERY_STRING", ""), headers=_headers(environ)
            )
            well_formed = isinstance(request.body, dict)
        except Exception:  # not UTF-8, not JSON, a payload that is not an object: Bolt cannot read it
            well_formed = False
        if not well_formed:
            return _refuse(start_response, 400, "malformed payload", len(raw))
        response = app.dispatch(request)
        wsgi_response = WsgiHttpResponse(status=response.status, headers=response.headers, body=response.body)
        start_response(wsgi_response.status, wsgi_response.get_headers())
        return wsgi_response.get_body()

    return application


def _headers(environ: WSGIEnvironment) -> dict[str, str | Sequence[str]]:
    """The request's headers as Bolt's WSGI adapter names them."""
    headers: dict[str, str | Sequence[str]] = {}
    for key, value in environ.items():
        if key in ("CONTENT_LENGTH", "CONTENT_TYPE") or key.startswith("HTTP_"):
            headers[key.removeprefix("HTTP_").lower().replace("_", "-")] = str(value)
    return headers


def _refuse(start_response: StartResponse, status: int, reason: str, size: int | None = None) -> Iterable[bytes]:
    # One line, never the body: whoever sends it, it may be anything.
    log.warning("refused a request to %s", EVENTS_PATH, extra={"status": status, "reason": reason, "bytes": size})
    return _answer(start_response, status, reason)


def _answer(start_response: StartResponse, status: int, body: str, content_type: str = "text/plain") -> list[bytes]:
    data = body.encode()
    reasons = {
        200: "OK",
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        405: "Method Not Allowed",
        413: "Payload Too Large",
        503: "Service Unavailable",
    }
    start_response(
        f"{status} {reasons[status]}",
        [("Content-Type", f"{content_type}; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]


class HttpServer:
    """waitress in a thread (tests, demo) or in the foreground (`slackbot run --http`)."""

    def __init__(
        self,
        app: App,
        health: Callable[[], dict[str, Any]],
        host: str = "0.0.0.0",
        port: int = 3000,
        *,
        signing_secret: str | None = None,
    ):
        self._server = create_server(
            wsgi_app(app, health, signing_secret=signing_secret),
            host=host,
            port=port,
            ident="slackbot",
            threads=THREADS,
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=CHANNEL_TIMEOUT_SECONDS,
            cleanup_interval=CLEANUP_SECONDS,
            # waitress refuses a Content-Length at or over the limit, hence the one byte more.
            max_request_body_size=MAX_BODY_BYTES + 1,
            max_request_header_size=MAX_HEADER_BYTES,
            # select() cannot watch file descriptors past 1024; poll() can, whatever the connection count.
            asyncore_use_poll=True,
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

"""The HTTP face of `LocalSlack`: Web API calls as GET query strings, form bodies or JSON bodies."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from slackbot.sandbox.slack_common import Args, Dropped


class WebApi(Protocol):
    def handle(
        self, method: str, args: Args, authorization: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any] | Dropped]: ...

    def record_response_url(self, path: str, body: str) -> None: ...

    def receive_upload(self, path: str, data: bytes) -> tuple[int, str]: ...


def handler_for(slack: WebApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            # Request lines would carry tokens in query strings; keep the test output quiet and clean.
            return

        def do_GET(self) -> None:
            self._serve(dict(parse_qsl(urlsplit(self.path).query)))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if urlsplit(self.path).path.startswith("/upload/"):
                # An upload URL from files.getUploadURLExternal: the file's bytes, not a Web API call.
                status, text = slack.receive_upload(urlsplit(self.path).path, self.rfile.read(length))
                self._reply_text(status, text)
                return
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            if urlsplit(self.path).path.startswith("/respond/"):
                slack.record_response_url(urlsplit(self.path).path, raw)
                self._reply(200, {}, {"ok": True})
                return
            args: Args = dict(parse_qsl(urlsplit(self.path).query))
            if "json" in (self.headers.get("Content-Type") or "") and raw.strip():
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    self._reply(200, {}, {"ok": False, "error": "invalid_json"})
                    return
                if isinstance(parsed, dict):
                    args.update(parsed)
            else:
                args.update(parse_qsl(raw, keep_blank_values=True))
            self._serve(args)

        def _serve(self, args: Args) -> None:
            path = urlsplit(self.path).path
            if not path.startswith("/api/"):
                self._reply(404, {}, {"ok": False, "error": "unknown_method"})
                return
            status, headers, body = slack.handle(path.removeprefix("/api/"), args, self.headers.get("Authorization"))
            if isinstance(body, Dropped):
                self.close_connection = True
                return
            self._reply(status, headers, body)

        def _reply_text(self, status: int, text: str) -> None:
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _reply(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler

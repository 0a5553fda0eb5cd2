"""The local Together's HTTP layer: routes under /v1, the presigned upload target, fault injection on the wire.

Faults are the ones every stand-in shows (`serving.FaultyHandler`), with Together's error body `{"error": {...}}`.
"""

from __future__ import annotations

import json
import logging
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from slackbot.sandbox.openpipe_http import RecordedRequest
from slackbot.sandbox.serving import Fault, FaultyHandler

if TYPE_CHECKING:
    from slackbot.sandbox.together_api import LocalTogether

log = logging.getLogger("slackbot.sandbox.together")

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found"}
TYPES |= {409: "conflict", 429: "rate_limit_exceeded", 500: "server_error", 503: "service_unavailable"}

__all__ = ["ApiError", "Fault", "RecordedRequest", "Reply", "handler_for", "parse_multipart"]


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": TYPES.get(self.status, "error")}
        error["param"] = self.param
        error["code"] = self.code
        return {"error": error}


class Reply:
    """An answer that is not plain JSON: a status with headers (the upload's 302) or a bare body."""

    def __init__(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        self.status, self.payload, self.headers = status, payload, headers or {}


def parse_multipart(content_type: str, raw: bytes) -> dict[str, bytes]:
    """A multipart/form-data body's fields by name (the stdlib email parser reads the MIME structure)."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    if not message.is_multipart():
        raise ApiError(400, "Expected a multipart/form-data body")
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload if isinstance(payload, bytes) else b""
    return fields


def handler_for(api: LocalTogether) -> type[BaseHTTPRequestHandler]:
    class Handler(FaultyHandler):
        stopping = api._stopping
        missing_fields = ("data", "id", "status", "models")

        def status_body(self, fault: Fault) -> dict[str, Any]:
            return ApiError(fault.status, fault.message or f"Injected {fault.status}").body()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("local together: " + format, *args)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path.startswith("/upload/") and method == "PUT":
                # The presigned storage URL: no API key, no API faults (it is another host in real life).
                with api._lock:
                    api.puts.append((parts.path.removeprefix("/upload/"), "Authorization" in self.headers))
                status, payload = api._store_upload(parts.path.removeprefix("/upload/"), query, raw)
                self._send(status, payload)
                return
            if not parts.path.startswith("/v1/"):
                self._send(404, ApiError(404, f"No route for {method} {parts.path}").body())
                return
            path = parts.path.removeprefix("/v1")
            content_type = self.headers.get("Content-Type", "")
            body: Any
            if content_type.startswith("multipart/form-data"):
                try:
                    body = parse_multipart(content_type, raw)
                except ApiError as exc:
                    body = exc
            else:
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = ApiError(400, "Invalid JSON in the request body")
            fault = api._take_fault(method, path)
            with api._lock:
                recorded = None if isinstance(body, ApiError) else body
                if isinstance(recorded, dict) and recorded and all(isinstance(v, bytes) for v in recorded.values()):
                    recorded = {k: v.decode("utf-8", "replace") for k, v in recorded.items()}
                api.requests.append(
                    RecordedRequest(method, path, recorded, api.clock.now(), fault.kind if fault else None)
                )
                api.raw_requests.append((method, path, query, content_type))
            if fault is not None and self._early_fault(fault):
                return
            headers: dict[str, str] = {}
            try:
                answer = api._dispatch(method, path, query, body, self.headers.get("Authorization", ""))
            except ApiError as exc:
                status, payload = exc.status, exc.body()
            else:
                if isinstance(answer, Reply):
                    status, payload, headers = answer.status, answer.payload, answer.headers
                else:
                    status, payload = 200, answer
            if fault is None:
                self._send(status, payload, headers)
            else:
                self._late_fault(fault, status, payload)

    return Handler

"""The local OpenPipe's HTTP layer: routes, auth, fault injection on the wire."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from slackbot.sandbox.serving import Fault, FaultyHandler

if TYPE_CHECKING:
    from slackbot.sandbox.openpipe_api import LocalOpenPipe

log = logging.getLogger("slackbot.sandbox.openpipe")

CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT"}
CODES |= {429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR"}


@dataclass
class RecordedRequest:
    method: str
    path: str  # relative to /api/v1, e.g. "/models/my-slug"
    json: Any
    time: float
    fault: str | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str, issues: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.issues = status, message, issues

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "code": CODES.get(self.status, "ERROR")}
        if self.issues is not None:
            out["issues"] = [{"message": m} for m in self.issues]
        return out


def handler_for(api: LocalOpenPipe) -> type[BaseHTTPRequestHandler]:
    class Handler(FaultyHandler):
        stopping = api._stopping
        missing_fields = ("data", "openpipe", "id")

        def status_body(self, fault: Fault) -> dict[str, Any]:
            body = ApiError(fault.status, fault.message or f"Injected {fault.status}", fault.issues).body()
            return {**body, "code": CODES.get(fault.status, "INTERNAL_SERVER_ERROR")}

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("local openpipe: " + format, *args)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            if not path.startswith("/api/v1/"):
                self._send(404, ApiError(404, f"No route for {method} {path}").body())
                return
            path = path.removeprefix("/api/v1")
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = ApiError(400, "Input validation failed", ["body: Invalid JSON"])
            fault = api._take_fault(method, path)
            with api._lock:
                parsed = None if isinstance(body, ApiError) else body
                api.requests.append(
                    RecordedRequest(method, path, parsed, api.clock.now(), fault.kind if fault else None)
                )
            if fault is not None and self._early_fault(fault):
                return
            try:
                status, payload = api._dispatch(method, path, body, self.headers.get("Authorization", ""))
            except ApiError as exc:
                status, payload = exc.status, exc.body()
            if fault is None:
                self._send(status, payload)
            else:
                self._late_fault(fault, status, payload)

    return Handler

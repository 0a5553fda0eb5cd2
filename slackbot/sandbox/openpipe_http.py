"""The local OpenPipe's HTTP layer: routes, auth, fault injection on the wire."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

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


@dataclass
class Fault:
    method: str
    template: str
    kind: str
    status: int
    retry_after: float | None
    delay: float
    times: int | None
    message: str | None = None  # a "status" fault's error message (default "Injected <status>")
    issues: list[str] | None = None


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
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes

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

        def _early_fault(self, fault: Fault) -> bool:
            """Faults that happen before the request is processed; True if the answer is already given."""
            if fault.kind == "latency":
                api._stopping.wait(fault.delay)
                return False
            if fault.kind == "status":
                api._stopping.wait(fault.delay)
                code = CODES.get(fault.status, "INTERNAL_SERVER_ERROR")
                extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                body = ApiError(fault.status, fault.message or f"Injected {fault.status}", fault.issues).body()
                self._send(fault.status, {**body, "code": code}, extra)
            elif fault.kind == "html":
                page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>"
                self._raw(fault.status, page, "text/html")
            elif fault.kind == "timeout":
                self._hang(fault)
            else:
                return False
            return True

        def _late_fault(self, fault: Fault, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            if fault.kind == "timeout_after_commit":
                self._hang(fault)
            elif fault.kind == "malformed":
                self._raw(status, data[: max(1, len(data) // 2)], "application/json")
            elif fault.kind == "missing_fields":
                if isinstance(payload, dict):
                    payload = {k: v for k, v in payload.items() if k not in ("data", "openpipe", "id")}
                self._send(status, payload)
            elif fault.kind == "drip":
                self._raw(status, data, "application/json", drip=max(fault.delay, 0.01))
            else:
                self._send(status, payload)

        def _hang(self, fault: Fault) -> None:
            api._stopping.wait(fault.delay)
            self.close_connection = True

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            self._raw(status, json.dumps(payload).encode(), "application/json", headers=headers)

        def _raw(
            self,
            status: int,
            data: bytes,
            content_type: str,
            *,
            headers: dict[str, str] | None = None,
            drip: float = 0.0,
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if not drip:
                    self.wfile.write(data)
                    return
                for i in range(0, len(data), 64):
                    self.wfile.write(data[i : i + 64])
                    self.wfile.flush()
                    if api._stopping.wait(drip):
                        return
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler

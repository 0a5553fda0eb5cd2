"""The HTTP server under each stand-in: stdlib, one thread per connection, and a listen backlog sized for load.

`socketserver`'s default backlog is 5: a burst of 20 new connections overflows it, the kernel drops the SYNs and
clients retry a second later — a stall that real Slack and OpenPipe would not cause, and that the ack benchmark
would otherwise blame on the bot.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StandInServer(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True


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


class FaultyHandler(BaseHTTPRequestHandler):
    """A stand-in's request handler: JSON answers, and the faults a real service shows (latency, an error status
    with Retry-After, an HTML error page, no answer, a broken or partial body, a slow drip). A stand-in subclasses
    it with its routes, sets its `stopping` event and gives the shape of its error bodies."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    stopping: threading.Event  # set when the stand-in stops: ends the waits of held connections
    missing_fields: tuple[str, ...] = ()  # what a "missing_fields" fault leaves out of an answer

    def status_body(self, fault: Fault) -> dict[str, Any]:
        """The error body of an injected error status, in the service's shape."""
        raise NotImplementedError

    def _early_fault(self, fault: Fault) -> bool:
        """Faults that happen before the request is processed; True if the answer is already given."""
        if fault.kind == "latency":
            self.stopping.wait(fault.delay)
            return False
        if fault.kind == "status":
            self.stopping.wait(fault.delay)
            extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            self._send(fault.status, self.status_body(fault), extra)
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
                payload = {k: v for k, v in payload.items() if k not in self.missing_fields}
            self._send(status, payload)
        elif fault.kind == "drip":
            self._raw(status, data, "application/json", drip=max(fault.delay, 0.01))
        else:
            self._send(status, payload)

    def _hang(self, fault: Fault) -> None:
        self.stopping.wait(fault.delay)
        self.close_connection = True

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self._raw(status, data, "application/json", headers=headers)

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
                if self.stopping.wait(drip):
                    return
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

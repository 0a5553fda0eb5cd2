"""What the local fine-tuning services share: a `StandIn` serves one service's routes on loopback behind an API
key, on a clock tests move by hand (`ManualClock`), with statuses that advance every `step_seconds`, faults a
test injects per endpoint, and a log of the requests it received.

A service (openpipe_api, together_api) subclasses it with its resources, its routes (`_dispatch`) and the shapes
of its answers: its error body, its path templates, what a "missing_fields" fault leaves out.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypedDict
from urllib.parse import parse_qs

from slackbot.sandbox.clock import Clock, ManualClock
from slackbot.sandbox.serving import Fault, FaultyHandler, StandInServer

FAULT_KINDS = frozenset(
    {"status", "latency", "timeout", "timeout_after_commit", "malformed", "html", "drip", "missing_fields"}
)


def iso(ts: float) -> str:
    """Epoch seconds as the services write a time: ISO 8601 in UTC, to the millisecond, with a Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class RecordedRequest:
    method: str
    path: str  # relative to the API root, e.g. "/models/my-slug"
    json: Any
    time: float
    fault: str | None = None


class StandInError(Exception):
    """A refusal: the HTTP status, and the service's error body (`body`, in each service's shape)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def body(self) -> dict[str, Any]:
        raise NotImplementedError


class Reply:
    """An answer that is not plain JSON: a status with headers (the upload's 302) or a bare body."""

    def __init__(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        self.status, self.payload, self.headers = status, payload, headers or {}


class Serving(TypedDict, total=False):
    """Where and how fast a stand-in serves (the keyword arguments every service takes)."""

    host: str
    port: int
    clock: Clock | None
    step_seconds: float


class StandInHandler(FaultyHandler):
    """One request to a `StandIn`: recorded in its request log, then answered by its routes, with an injected
    fault around the answer. `StandIn.start` binds the stand-in in (the server makes a handler per request)."""

    def __init__(self, stand_in: StandIn, *args: Any) -> None:
        self.stand_in = stand_in
        self.stopping = stand_in._stopping
        self.missing_fields = stand_in.missing_fields
        super().__init__(*args)  # handles the request

    def status_body(self, fault: Fault) -> dict[str, Any]:
        return self.stand_in._fault_body(fault)

    def log_message(self, format: str, *args: Any) -> None:
        self.stand_in.log.debug(f"local {self.stand_in.name}: " + format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        api = self.stand_in
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        target, _, query_string = self.path.partition("?")
        query = {k: v[0] for k, v in parse_qs(query_string).items()}
        if not target.startswith(api.api_root + "/"):
            outside = api._outside_api(method, target, query, raw, "Authorization" in self.headers)
            self._send(*(outside or (404, api.error(404, f"No route for {method} {target}").body())))
            return
        path = target.removeprefix(api.api_root)
        content_type = self.headers.get("Content-Type", "")
        body = api._parse(raw, content_type)
        fault = api._take_fault(method, path)
        api._record(method, path, body, fault, query, content_type)
        if fault is not None and self._early_fault(fault):
            return
        headers: dict[str, str] = {}
        try:
            answer = api._answer(method, path, query, body, self.headers.get("Authorization", ""))
        except StandInError as exc:
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


class StandIn:
    """See the module docstring. Thread-safe: the HTTP threads and the test share one lock."""

    name: ClassVar[str]  # "openpipe": the logger's, the server thread's and the *_BASE_URL setting's name
    title: ClassVar[str]  # "OpenPipe", as the log names it
    api_root: ClassVar[str]  # the path the routes are under, e.g. "/api/v1"
    base_path: ClassVar[str]  # what `url` adds to the server's address: the service's base URL for the bot
    error: ClassVar[type[StandInError]]  # the service's refusal, with its error body
    missing_fields: ClassVar[tuple[str, ...]]  # what a "missing_fields" fault leaves out of an answer
    handler: ClassVar[type[StandInHandler]] = StandInHandler

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        step_seconds: float = 60.0,
    ) -> None:
        if step_seconds <= 0:
            raise ValueError("step_seconds must be positive")
        self._key = api_key
        self._host, self._port = host, port
        self.clock: Clock = clock or ManualClock()
        self.step_seconds = step_seconds
        self.log = logging.getLogger(f"slackbot.sandbox.{self.name}")
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self._server: StandInServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> Self:
        server = StandInServer((self._host, self._port), functools.partial(self.handler, self))
        self._stopping.clear()
        self._server = server
        self.url = f"http://{self._host}:{server.server_address[1]}{self.base_path}"
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=f"local-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that hold a connection open for a fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_until(self, stop: threading.Event | None = None) -> None:
        """Serve until Ctrl-C, SIGTERM or `stop` (for `slackbot sandbox <name>`)."""
        done = stop or threading.Event()
        self.start()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: done.set())
        setting = f"{self.name.upper()}_BASE_URL"
        self.log.info("local %s API listening on %s (use it as %s)", self.title, self.url, setting)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # --- faults -----------------------------------------------------------------------------------------

    def inject(
        self,
        endpoint: str,
        kind: str,
        *,
        status: int = 500,
        retry_after: float | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        message: str | None = None,
        issues: list[str] | None = None,
    ) -> None:
        """Make the next `times` requests (None: all) to `endpoint` misbehave.

        `endpoint` is "METHOD /path" relative to the API root, with the service's path templates (`template`:
        e.g. "GET /models/{slug}" for OpenPipe, "GET /fine-tunes/{id}" for Together), or "*".
        Before processing: "status" (the service's error body with `status`, Retry-After if given, and `message`
        when given, e.g. the service's words echoing what it was sent; OpenPipe's body also lists `issues`),
        "html" (an HTML page with `status`), "timeout" (hold the connection `delay` s, then close it unanswered),
        "latency" (wait `delay` s, then answer normally). After processing, so the request takes effect:
        "timeout_after_commit" (like "timeout", but e.g. the model IS created), "malformed" (truncated JSON),
        "missing_fields" (valid JSON without the service's main fields), "drip" (64 bytes per `delay` s).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        method, _, template = endpoint.partition(" ")
        with self._lock:
            self._faults.append(Fault(method, template, kind, status, retry_after, delay, times, message, issues))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == "*" or (fault.method == method and fault.template == self.template(path)):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # --- what each service says -------------------------------------------------------------------------

    @staticmethod
    def template(path: str) -> str:
        """A request path (relative to the API root) as its path template, e.g. "/models/{slug}"."""
        raise NotImplementedError

    def _fault_body(self, fault: Fault) -> dict[str, Any]:
        """The error body of an injected error status."""
        return self.error(fault.status, fault.message or f"Injected {fault.status}").body()

    def _refused_key(self) -> StandInError:
        raise NotImplementedError

    def _bad_json(self) -> StandInError:
        raise NotImplementedError

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        """The answer to an authorized request with a readable body: JSON, or a `Reply`."""
        raise NotImplementedError

    def _outside_api(
        self, method: str, path: str, query: dict[str, str], data: bytes, authorization: bool
    ) -> tuple[int, Any] | None:
        """An answer to a request outside the API root (None: a 404)."""
        return None

    # --- one request ------------------------------------------------------------------------------------

    def _parse(self, raw: bytes, content_type: str) -> Any:
        """The request's body, or the refusal an unreadable one gets (after the key is checked)."""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return self._bad_json()

    def _record(
        self, method: str, path: str, body: Any, fault: Fault | None, query: dict[str, str], content_type: str
    ) -> None:
        recorded = None if isinstance(body, StandInError) else body
        with self._lock:
            self.requests.append(
                RecordedRequest(method, path, recorded, self.clock.now(), fault.kind if fault else None)
            )

    def _answer(self, method: str, path: str, query: dict[str, str], body: Any, authorization: str) -> Any:
        if not hmac.compare_digest(authorization.encode(), f"Bearer {self._key}".encode()):
            raise self._refused_key()
        if isinstance(body, StandInError):
            raise body
        return self._dispatch(method, path, query, body)

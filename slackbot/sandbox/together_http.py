"""The local Together's wire: its error body `{"error": {...}}`, multipart form bodies, and the PUT the presigned
upload URL takes (outside the API, as the storage host is in real life)."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from slackbot.sandbox.stand_in import StandInError, StandInHandler

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found"}
TYPES |= {409: "conflict", 429: "rate_limit_exceeded", 500: "server_error", 503: "service_unavailable"}


class ApiError(StandInError):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(status, message)
        self.param, self.code = param, code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": TYPES.get(self.status, "error")}
        error["param"] = self.param
        error["code"] = self.code
        return {"error": error}


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


class TogetherHandler(StandInHandler):
    """Also takes PUT: the presigned upload (`LocalTogether._outside_api`); a PUT elsewhere finds no route."""

    def do_PUT(self) -> None:
        self._handle("PUT")

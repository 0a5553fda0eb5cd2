"""The local OpenPipe's error answers: `{"message", "code", "issues"?}`, the code named after the HTTP status."""

from __future__ import annotations

from typing import Any

from slackbot.sandbox.stand_in import StandInError

CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT"}
CODES |= {429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR"}


class ApiError(StandInError):
    def __init__(self, status: int, message: str, issues: list[str] | None = None) -> None:
        super().__init__(status, message)
        self.issues = issues

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "code": CODES.get(self.status, "ERROR")}
        if self.issues is not None:
            out["issues"] = [{"message": m} for m in self.issues]
        return out

"""Pieces shared by the local Slack Web API modules: errors, argument decoding, the clock seam."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

Args = dict[str, Any]

# Slack sends these arguments as JSON strings inside form bodies and as objects inside JSON bodies.
JSON_ARGS = ("blocks", "view", "metadata", "attachments", "files")

_TRUE = {"true", "1", "yes"}


class MonotonicClock:
    """Real time, for when no controllable clock is given."""

    def now(self) -> float:
        return time.monotonic()


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    bot_is_member: bool = True
    is_im: bool = False
    im_user: str | None = None

    def info(self) -> dict[str, Any]:
        if self.is_im:
            return {"id": self.id, "is_im": True, "user": self.im_user, "is_open": True, "created": 0}
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": self.id == "C0GENERAL",
            "is_member": self.bot_is_member,
            "created": 0,
        }


@dataclass
class Dropped:
    """Marker: the call was carried out but the client gets no answer (the connection is dropped)."""

    result: dict[str, Any] = field(default_factory=dict)


class SlackError(Exception):
    """A call that fails the way Slack fails it: `{"ok": false, "error": ...}`, usually with HTTP 200."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        messages: list[str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.messages = messages or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


def invalid_arguments(message: str, pointer: str) -> SlackError:
    # Slack explains schema failures in response_metadata.messages with a JSON pointer to the culprit.
    return SlackError("invalid_arguments", messages=[f"[ERROR] {message} [json-pointer:{pointer}]"])


def decode_args(raw: Args) -> Args:
    """Parse JSON-string arguments into objects; undecodable ones stay strings for the method to reject."""
    args = dict(raw)
    for name in JSON_ARGS:
        value = args.get(name)
        if isinstance(value, str) and value.strip():
            with contextlib.suppress(ValueError):
                args[name] = json.loads(value)
    return args


def text_arg(args: Args, name: str) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    return str(value)


def required_arg(args: Args, name: str) -> str:
    value = text_arg(args, name)
    if value is None:
        raise invalid_arguments(f"missing required field: {name}", f"/{name}")
    return value


def bool_arg(args: Args, name: str, default: bool = False) -> bool:
    value = args.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def int_arg(args: Args, name: str, default: int) -> int:
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_arguments(f"{name} must be an integer", f"/{name}") from None

"""Slack calls as the notifier needs them: failures sorted by what to do next, per-channel pacing, and the
lookup that finds a message an earlier attempt already posted.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.retry import retry_after_header

METADATA_EVENT = "slackbot_delivery"

# The channel cannot take this message, whatever we retry: fall back (join, or DM the requester).
FALLBACK_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "team_access_not_granted",
        "ekm_access_denied",
        "invalid_thread_ts",  # the card (thread parent) was deleted
        "thread_not_found",
    }
)
# Slack-side trouble that may clear up (auth included: a token being rotated); worth another attempt later.
TRANSIENT_ERRORS = frozenset(
    {
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "ratelimited",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
    }
)


class Busy(Exception):
    """Not now: the channel is paced or rate limited, or an earlier row of the job is pending."""

    def __init__(self, until: datetime) -> None:
        super().__init__(until.isoformat())
        self.until = until


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after}s")
        self.retry_after = retry_after


class Transient(Exception):
    """Worth retrying later. A post may or may not have reached Slack."""


class Unusable(Exception):
    """The channel cannot take the message (archived, not found, not a member...)."""

    def __init__(self, error: str, channel: str) -> None:
        super().__init__(error)
        self.error = error
        self.channel = channel


class Fatal(Exception):
    """Retrying cannot help (a malformed message, a missing scope): the row is dead."""


class Lost(Exception):
    """The row's claim passed to another notifier: this one must not post it nor record an outcome."""


@dataclass(frozen=True)
class Target:
    """Where a message goes: a channel, and the thread in it (None: the channel itself)."""

    channel: str
    thread_ts: str | None


@dataclass(frozen=True)
class Posted:
    """Where a row's message went."""

    channel: str
    ts: str
    fell_back: bool = False  # to a DM with the requester
    reconciled: bool = False  # an earlier attempt had posted it already


def call(client: WebClient, method: str, channel: str, /, **kwargs: Any) -> Any:
    """Call a WebClient method, raising RateLimited, Transient, Unusable(channel) or Fatal on failure.

    Error texts carry only the method and Slack's error code, never request arguments or tokens.
    """
    try:
        return getattr(client, method)(**kwargs)
    except SlackApiError as exc:
        status = exc.response.status_code
        error = str(exc.response.get("error") or f"http_{status}")
        if status == 429:
            raise RateLimited(retry_after(exc.response.headers)) from None
        if status >= 500 or error in TRANSIENT_ERRORS:
            raise Transient(f"{method}: {error}") from None
        if error in FALLBACK_ERRORS:
            raise Unusable(error, channel) from None
        raise Fatal(f"{method}: {error}") from None
    except (OSError, http.client.HTTPException) as exc:
        # URLError, timeouts, and a connection dropped after the request was sent.
        raise Transient(f"{method}: {type(exc).__name__}") from None


def retry_after(headers: Any) -> float:
    said = retry_after_header(headers)
    return 1.0 if said is None else said  # Slack always says; a second if it did not


def delivery_metadata(outbox_id: int, job_id: int) -> dict[str, Any]:
    return {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": outbox_id, "job_id": job_id}}


def find_delivered(
    client: WebClient, channel: str, thread_ts: str | None, outbox_id: int, since: datetime, pages: int
) -> str | None:
    """The ts of a message posted for this outbox row, looked up by its metadata."""
    for message in messages_since(client, channel, thread_ts, since, pages, include_all_metadata=True):
        meta = message.get("metadata") or {}
        payload = meta.get("event_payload") or {}
        if meta.get("event_type") == METADATA_EVENT and payload.get("outbox_id") == outbox_id:
            return str(message["ts"])
    return None


def messages_since(
    client: WebClient, channel: str, thread_ts: str | None, since: datetime, pages: int, **extra: Any
) -> Iterator[dict[str, Any]]:
    """The thread's (or, without `thread_ts`, the channel's) messages newer than `since`, up to `pages` pages of
    200, read a page at a time as they are wanted. Only messages newer than `since` (when the row was written,
    less a margin) can be an earlier attempt's, so only those are read (Slack's `oldest`): a thread with thousands
    of older replies costs no more than a fresh one."""
    cursor: str | None = None
    args: dict[str, Any] = {"channel": channel, "limit": 200, "oldest": f"{since.timestamp():.6f}", **extra}
    for _ in range(pages):
        if thread_ts is not None:
            page = call(client, "conversations_replies", channel, ts=thread_ts, **args)
        else:
            page = call(client, "conversations_history", channel, **args)
        yield from page.get("messages") or []
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return
        args["cursor"] = cursor

"""Who may start fine-tunes.

Two independent restrictions, each off when unset: ALLOWED_CHANNELS limits *where* jobs may be started;
ALLOWED_USERS and ALLOWED_USERGROUPS together limit *who* (a person listed directly or in one of the groups).
A request must pass both. Reading a job's status is not restricted, but only within the requester's workspace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class Permissions:
    def __init__(
        self,
        *,
        channels: Iterable[str] = (),
        users: Iterable[str] = (),
        usergroups: Iterable[str] = (),
        group_members: Callable[[str], set[str]] | None = None,
    ) -> None:
        self.channels = frozenset(channels)
        self.users = frozenset(users)
        self.usergroups = tuple(usergroups)
        self._group_members = group_members

    @property
    def unrestricted(self) -> bool:
        return not (self.channels or self.users or self.usergroups)

    def check(self, user_id: str, channel_id: str | None) -> Decision:
        if self.channels and channel_id not in self.channels:
            where = ", ".join(f"<#{c}>" for c in sorted(self.channels))
            return Decision(False, f"Fine-tunes can only be started in {where}.")
        if not (self.users or self.usergroups):
            return Decision(True)
        if user_id in self.users:
            return Decision(True)
        if self._group_members is not None:
            for group in self.usergroups:
                if user_id in self._group_members(group):
                    return Decision(True)
        return Decision(
            False, "You are not on the list of people allowed to start fine-tunes. Ask an admin of this app."
        )


class UsergroupDirectory:
    """Members of Slack user groups, cached so permission checks stay inside Slack's 3 s budget."""

    def __init__(self, client: WebClient, ttl_seconds: float = 300.0) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()

    def __call__(self, group_id: str) -> set[str]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(group_id)
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        try:
            resp = self._client.usergroups_users_list(usergroup=group_id)
            members = set(resp.get("users") or [])
        except SlackApiError as exc:
            # Fail closed: an unreadable group grants nobody, but keep the last good answer if we have one.
            log.warning("usergroup lookup failed", extra={"usergroup": group_id, "error": exc.response.get("error")})
            return hit[1] if hit else set()
        with self._lock:
            self._cache[group_id] = (now, members)
        return members

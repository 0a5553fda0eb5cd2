"""Who may start fine-tunes.

Two independent restrictions, each off when unset: ALLOWED_CHANNELS limits *where* jobs may be started;
ALLOWED_USERS and ALLOWED_USERGROUPS together limit *who* (a person listed directly or in one of the groups).
A request must pass both. Reading a job's status is not restricted, but only within the requester's workspace.
Cancelling or deleting a job is for its requester and ADMIN_USERS (`may_control`).

The check runs before Slack's 3 s ack, so it never calls Slack: group members come from `UsergroupDirectory`,
refreshed in the background. A group never read yet (Slack failing since the start) is said to be so, never
taken as "not on the list".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.catalog import Refreshing
from slackbot.retry import retry_after_header

log = logging.getLogger(__name__)

NOT_LISTED = "You are not on the list of people allowed to start fine-tunes. Ask an admin of this app."
UNCHECKED = "I couldn't check your user group membership with Slack just now; try again in a minute."


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
        group_members: Callable[[str], Collection[str] | None] | None = None,
    ) -> None:
        """`group_members(group)`: the group's members as last read, or None when they are not known."""
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
        unknown = False
        if self._group_members is not None:
            for group in self.usergroups:
                members = self._group_members(group)
                if members is None:
                    unknown = True
                elif user_id in members:
                    return Decision(True)
        return Decision(False, UNCHECKED if unknown else NOT_LISTED)

    def warm(self) -> None:
        """Start reading the groups' members in the background (at start, before the first request)."""
        if isinstance(self._group_members, UsergroupDirectory):
            self._group_members.warm()

    def close(self) -> None:
        if isinstance(self._group_members, UsergroupDirectory):
            self._group_members.close()


class UsergroupDirectory:
    """Members of Slack user groups, for checks that never wait on Slack (Slack gives a command 3 s to be acked).

    Each group is a `catalog.Refreshing` value: the members last read are answered at once, and a read older than
    the TTL starts one background refresh (single flight). A failed read keeps the last good answer and is not
    tried again before Slack's Retry-After (or `failure_pause_seconds`): a rate-limited Slack is not hammered.
    Give it a client that does not sleep on 429s itself, so a refresh ends and the pause takes over.
    """

    def __init__(
        self,
        client: WebClient,
        groups: Iterable[str],
        *,
        ttl_seconds: float = 300.0,
        failure_pause_seconds: float = 60.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._now = now
        self._failure_pause = failure_pause_seconds
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="usergroups")
        self._groups = {
            group: Refreshing(partial(self._fetch, group), ttl_seconds, self._executor, now=now) for group in groups
        }
        self._paused_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, group_id: str) -> frozenset[str] | None:
        """The members as last read (refreshing in the background when stale), or None if never read."""
        members = self._groups.get(group_id)
        if members is None:
            return None
        self._refresh(group_id, members)
        return members.cached()

    def warm(self) -> None:
        for group_id, members in self._groups.items():
            self._refresh(group_id, members)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _refresh(self, group_id: str, members: Refreshing[frozenset[str]]) -> None:
        with self._lock:
            paused = self._now() < self._paused_until.get(group_id, float("-inf"))
        if not paused:
            members.prefetch()

    def _fetch(self, group_id: str) -> frozenset[str]:
        try:
            response = self._client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            self._failed(group_id, str(exc.response.get("error")), _retry_after(exc))
            raise
        except Exception as exc:  # e.g. Slack unreachable: the same pause, then another try
            self._failed(group_id, type(exc).__name__, None)
            raise
        users = response.get("users")
        return frozenset(u for u in users if isinstance(u, str)) if isinstance(users, list) else frozenset()

    def _failed(self, group_id: str, error: str, retry_after: float | None) -> None:
        pause = self._failure_pause if retry_after is None else retry_after
        with self._lock:
            self._paused_until[group_id] = self._now() + pause
        log.warning("usergroup lookup failed", extra={"usergroup": group_id, "error": error, "retry_in": pause})


def _retry_after(exc: SlackApiError) -> float | None:
    return retry_after_header(getattr(exc.response, "headers", None))


def may_control(verb: str, slug: str, requester_id: str, user_id: str, admins: Collection[str]) -> Decision:
    """Whether `user_id` may `verb` ("cancel", "delete") the job `slug` started by `requester_id`: its requester
    and ADMIN_USERS may; anyone else is told who can. `slug` must already be escaped for Slack."""
    if user_id == requester_id or user_id in admins:
        return Decision(True)
    return Decision(
        False,
        f"Only <@{requester_id}>, who started {slug}, or an admin of this app (ADMIN_USERS) can {verb} it.",
    )

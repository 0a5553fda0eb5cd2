"""Who may see a job in `/finetune list` and `status`: jobs of public channels are the workspace's; jobs of a
private channel, a DM or a group DM show only to their requester and inside that conversation.

Whether a channel is public is asked of Slack (`conversations.info`) when a command needs it, so it is always
current (a channel made private stops showing its jobs within `ttl_seconds`), with no copy in the database.
Answers are cached per channel, and concurrent askers of one channel share one call, so a list costs at most
one call per distinct channel. Anything but a clear "public" (an error, `channel_not_found`, a timeout) counts
as private: a job is hidden rather than shown to someone who should not see it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.jobs.records import JobRecord

log = logging.getLogger(__name__)

TTL_SECONDS = 300.0
WAIT_SECONDS = 10.0  # for another thread's call in flight (the WebClient's own timeout is 10 s)


class ChannelVisibility:
    def __init__(
        self,
        slack: WebClient,
        *,
        ttl_seconds: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slack = slack
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, bool]] = {}  # channel → (expires at, public)
        self._asking: dict[str, Future[bool]] = {}

    def is_public(self, channel_id: str) -> bool:
        with self._lock:
            known = self._known.get(channel_id)
            if known is not None and known[0] > self._clock():
                return known[1]
            pending = self._asking.get(channel_id)
            mine = pending is None
            if pending is None:
                pending = self._asking[channel_id] = Future()
        if not mine:
            try:
                return pending.result(timeout=WAIT_SECONDS)
            except Exception:
                return False
        public, definite = False, False
        try:
            public, definite = self._ask(channel_id)
        finally:
            with self._lock:
                if definite:
                    self._known[channel_id] = (self._clock() + self._ttl, public)
                del self._asking[channel_id]
            pending.set_result(public)
        return public

    def _ask(self, channel_id: str) -> tuple[bool, bool]:
        """(public, definite): a transient failure is private for this question only, not cached."""
        try:
            response = self._slack.conversations_info(channel=channel_id)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.info("channel visibility unknown", extra={"channel": channel_id, "error": error})
            return False, error == "channel_not_found"
        except Exception as exc:
            log.info("channel visibility unknown", extra={"channel": channel_id, "error": type(exc).__name__})
            return False, False
        info = response.get("channel")
        if not isinstance(info, dict):
            return False, False
        # Public only when Slack says so for all three: a flag it left out (a DM's info has no is_private) is
        # read as private.
        public = all(info.get(flag) is False for flag in ("is_private", "is_im", "is_mpim"))
        return public, True

    def job_visible(self, job: JobRecord, user_id: str, channel_id: str) -> bool:
        """Whether `user_id`, running a command in `channel_id`, may see `job`."""
        if job.requester_id == user_id:
            return True
        homes = {job.channel_id, *([job.card_channel_id] if job.card_channel_id else [])}
        if channel_id in homes:
            return True
        return all(self.is_public(home) for home in sorted(homes))

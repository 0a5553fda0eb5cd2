"""Keeping App Home tabs current: a user's Home tab is published again when one of their jobs changes.

The notifier calls `HomeRefresh.job_changed` after it delivered a transition. A user's tab is published at most
once per `min_interval_seconds` (Slack's views.publish is rate limited, and a burst of transitions must not
become a burst of publishes): a change inside the interval is published when it ends, once, however many
changes came meanwhile (each publish renders the jobs as they are then). Publishing runs on a thread of its own,
so the notifier never waits on Slack for it.

Only users whose tab this process published (they opened it) are refreshed: a tab is published afresh whenever
it is opened, so a user who has not opened it since the bot started has nothing stale to replace. With several
replicas, the one that answered the opening refreshes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from slackbot.jobs.records import JobRecord

log = logging.getLogger(__name__)

User = tuple[str, str]  # (team id, user id)

MIN_INTERVAL_SECONDS = 10.0
# How often (real time) a waiting publish looks at the clock; the clock itself is the bot's (tests move it).
POLL_SECONDS = 0.25


class HomeRefresh:
    def __init__(
        self,
        publish: Callable[[str, str], None],
        clock: Callable[[], datetime],
        *,
        min_interval_seconds: float = MIN_INTERVAL_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        """`publish(team, user)` renders and publishes that user's tab (it may raise: logged, not retried)."""
        self._publish = publish
        self._clock = clock
        self._interval = min_interval_seconds
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._last: dict[User, datetime] = {}  # when each known user's tab was last published
        self._waiting: set[User] = set()  # changed since, not published yet
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._closed = False

    # --- entry points -------------------------------------------------------------------------------------

    def opened(self, team: str, user: str) -> None:
        """The user opened their tab: publish it now (in the caller's thread), and follow it from now on."""
        with self._lock:
            self._last[(team, user)] = self._clock()
            self._waiting.discard((team, user))
        self._publish_one((team, user))

    def job_changed(self, job: JobRecord) -> None:
        """The notifier's hook: never raises (it runs inside a delivery)."""
        try:
            self.changed(job.team_id, job.requester_id)
        except Exception:
            log.exception("home refresh not scheduled", extra={"job_id": job.id})

    def changed(self, team: str, user: str) -> None:
        """One of the user's jobs changed: publish their tab soon (now, or when the interval ends)."""
        key = (team, user)
        with self._lock:
            if self._closed or key not in self._last:
                return
            self._waiting.add(key)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="home-refresh", daemon=True)
                self._worker.start()
        self._wake.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            worker = self._worker
        self._wake.set()
        if worker is not None:
            worker.join(timeout=5)

    # --- the worker ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        """Publish every waiting tab whose interval is over; ends when none waits (started again on demand)."""
        while True:
            self._wake.clear()
            now = self._clock()
            with self._lock:
                if self._closed:
                    self._worker = None
                    return
                due = [k for k in self._waiting if (now - self._last[k]).total_seconds() >= self._interval]
                for key in due:
                    self._waiting.discard(key)
                    self._last[key] = now
                if not due and not self._waiting:
                    self._worker = None
                    return
            for key in due:
                self._publish_one(key)
            if not due:
                self._wake.wait(self._poll)

    def _publish_one(self, key: User) -> None:
        try:
            self._publish(*key)
        except Exception as exc:
            log.warning("home tab not published", extra={"team": key[0], "user": key[1], "error": type(exc).__name__})

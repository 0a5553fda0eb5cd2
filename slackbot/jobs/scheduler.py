"""The local timer: one APScheduler interval job per process that runs the tracker (and, on a faster timer of
its own, one that delivers the outbox; on one more, the feed follower that reads job events and metrics).

The database is the queue (see store.py), so the scheduler keeps no state worth persisting: APScheduler's
default in-memory job store, `max_instances=1` and `coalesce=True` so a slow tick never overlaps the next or
piles up missed runs, and a little jitter so replicas started together do not poll in lockstep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

_JOB_ID = "slackbot-tick"
_DELIVER_ID = _JOB_ID + "-deliver"
_MAINTENANCE_ID = _JOB_ID + "-maintenance"
_FEED_ID = _JOB_ID + "-feed"
# A wake-up sooner than this is taken as "now, after this run": APScheduler would skip a run that starts while
# the one that asked for it is still finishing.
_MIN_WAKE_SECONDS = 0.02


class TickFailed(Exception):
    """One or more steps of a tick raised; the others still ran."""


def guarded(*steps: tuple[str, Callable[[], object]]) -> Callable[[], None]:
    """A tick running each named step in turn; a failing step is logged and does not stop the ones after it.

    The tick raises `TickFailed` at the end if any step failed, so the scheduler can count failures for
    `healthy()`; it never kills the scheduler. Typical use:
    `guarded(("tracker", tracker.poll_once), ("notifier", notifier.deliver_due))`.
    """

    def tick() -> None:
        failed = []
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("tick step failed", extra={"step": name})
                failed.append(name)
        if failed:
            raise TickFailed("failed: " + ", ".join(failed))

    return tick


class JobScheduler:
    def __init__(
        self,
        tick: Callable[[], None],
        interval_seconds: float,
        *,
        jitter_seconds: float | None = None,
        stale_after_seconds: float | None = None,
        max_consecutive_failures: int = 5,
        monotonic: Callable[[], float] = time.monotonic,
        deliver: Callable[[], float | None] | None = None,
        deliver_interval_seconds: float = 1.0,
        maintenance: Callable[[], object] | None = None,
        maintenance_interval_seconds: float = 3600.0,
        feed: Callable[[], object] | None = None,
        feed_interval_seconds: float | None = None,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._tick = tick
        self._interval = interval_seconds
        self._jitter = min(1.0, interval_seconds / 10) if jitter_seconds is None else jitter_seconds
        # A tick that has not completed for this long means the timer is stuck or dead.
        self._stale_after = stale_after_seconds or max(3 * interval_seconds, interval_seconds + 60)
        self._max_failures = max_consecutive_failures
        self._monotonic = monotonic
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._run_lock = threading.Lock()  # run_now(wait=True) and the timer never tick at the same time
        self._state_lock = threading.Lock()
        self._started_at: float | None = None
        self._last_tick_done: float | None = None
        self._failures = 0
        self._again = threading.Event()
        self.ticks = 0
        # Deliveries run on their own, faster timer: the notifier posts at most one message per channel per
        # second, so tying it to the poll interval would let a burst of 50 replies in one channel take 50 ticks.
        # `deliver` returns in how many seconds a channel that rows wait on frees up: the next run is moved to
        # that moment when it comes before the next tick, so a burst goes out at the channel's pace exactly.
        self._deliver = deliver
        self._deliver_interval = deliver_interval_seconds
        # Housekeeping (retention) on a timer of its own: a slow prune never delays a tick or a delivery.
        self._maintenance = maintenance
        self._maintenance_interval = maintenance_interval_seconds
        # The feed (events, loss curves) on a timer of its own: a slow event log never delays the tracker's tick.
        self._feed = feed
        self._feed_interval = feed_interval_seconds or interval_seconds

    def start(self) -> None:
        self._started_at = self._monotonic()
        self._scheduler.add_job(
            self._run,
            IntervalTrigger(seconds=self._interval, jitter=self._jitter or None, timezone=UTC),
            id=_JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),  # the first tick at once: jobs left over from a restart
            replace_existing=True,
        )
        if self._deliver is not None:
            self._scheduler.add_job(
                self._deliver_once,
                IntervalTrigger(seconds=self._deliver_interval, timezone=UTC),
                id=_DELIVER_ID,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),  # rows left over from a restart go at once
                replace_existing=True,
            )
        if self._maintenance is not None:
            self._scheduler.add_job(
                self._maintain,
                IntervalTrigger(seconds=self._maintenance_interval, jitter=self._jitter or None, timezone=UTC),
                id=_MAINTENANCE_ID,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                # Not at once: a start (or a restart loop) should first catch up on what users wait for.
                next_run_time=datetime.now(UTC) + timedelta(seconds=min(60.0, self._maintenance_interval)),
                replace_existing=True,
            )
        if self._feed is not None:
            self._scheduler.add_job(
                self._follow_feed,
                IntervalTrigger(seconds=self._feed_interval, jitter=self._jitter or None, timezone=UTC),
                id=_FEED_ID,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),
                replace_existing=True,
            )
        self._scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop the timer; with `wait`, return only after the tick in progress has finished (SIGTERM path)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def run_now(self, wait: bool = False) -> None:
        """Tick as soon as possible: in the timer's thread, or (wait=True) in the caller's, after any tick.

        During a tick, another one follows it at once: the caller may have queued work the current tick has
        already passed by (APScheduler would just skip a run requested while one is in progress).
        """
        if wait or not self._scheduler.running:
            self._run()
            return
        self._again.set()
        if not self._run_lock.locked():
            self._scheduler.modify_job(_JOB_ID, next_run_time=datetime.now(UTC))

    def healthy(self) -> bool:
        """Running, a tick finished recently, and not failing tick after tick."""
        if not self._scheduler.running or self._started_at is None:
            return False
        with self._state_lock:
            last = self._last_tick_done if self._last_tick_done is not None else self._started_at
            failures = self._failures
        return failures < self._max_failures and self._monotonic() - last <= self._stale_after

    def _deliver_once(self) -> None:
        assert self._deliver is not None
        try:
            wake_in = self._deliver()
        except Exception:
            log.exception("tick step failed", extra={"step": "notifier"})
            return
        if wake_in is None or not self._scheduler.running:
            return
        at = datetime.now(UTC) + timedelta(seconds=max(wake_in, _MIN_WAKE_SECONDS))
        job = self._scheduler.get_job(_DELIVER_ID)
        if job is not None and job.next_run_time is not None and at < job.next_run_time:
            self._scheduler.modify_job(_DELIVER_ID, next_run_time=at)

    def _follow_feed(self) -> None:
        assert self._feed is not None
        try:
            self._feed()
        except Exception:
            log.exception("tick step failed", extra={"step": "feed"})

    def _maintain(self) -> None:
        assert self._maintenance is not None
        try:
            self._maintenance()
        except Exception:
            log.exception("tick step failed", extra={"step": "retention"})

    def _run(self) -> None:
        # Checked after the lock is released too, so a run_now() that arrives as a tick ends is not lost.
        while True:
            with self._run_lock:
                self._again.clear()
                self._tick_once()
            if not self._again.is_set():
                return

    def _tick_once(self) -> None:
        ok = True
        try:
            self._tick()
        except TickFailed as exc:
            ok = False  # each failing step was logged with its traceback already
            log.warning("scheduler tick incomplete: %s", exc)
        except Exception:
            ok = False
            log.exception("scheduler tick failed")
        with self._state_lock:
            self.ticks += 1
            self._last_tick_done = self._monotonic()
            self._failures = 0 if ok else self._failures + 1

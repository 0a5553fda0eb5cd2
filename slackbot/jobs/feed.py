"""Follow what a job's service tells beyond its status: the notable events of its log and its loss curve.

For followed jobs whose backend reports events and/or metrics (`Capabilities.events`, `.metrics`), the follower
reads the event log at most every `events_interval_seconds` per job and the metrics at most every
`chart_interval_seconds` (only the steps after the last one read), and once more when the job has ended. What one
read of the log brings that is notable and not told yet becomes ONE thread reply (`FeedEvents`); routine events
(a step's progress) are skipped. New steps queue a chart (`LossChart`), drawn and uploaded by the notifier when
the workspace's upload budget allows, never while one of the job's charts is still waiting (that one is drawn
from the points as they are when it goes), and never when no chart is needed: no step since the last chart shown.

Exactly once: feeds are leased like the tracker's jobs (the database's clock), and a read is recorded with a
compare-and-set on the feed's version, its outbox rows in the same transaction (see feed_store.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from slackbot.backends.base import (
    Backend,
    BackendError,
    JobEvent,
    MetricPoint,
    NotFoundError,
    ReportsEvents,
    ReportsMetrics,
)
from slackbot.backends.registry import capabilities
from slackbot.domain.events import FeedEvents, FeedItem
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs import feed_store
from slackbot.jobs.feed_store import FeedJob, FeedRead, Point
from slackbot.jobs.records import job_key
from slackbot.retry import backoff

log = logging.getLogger(__name__)

# Lifecycles in which a job has (or may have) a loss curve worth reading.
_CHARTED = frozenset({Lifecycle.RUNNING, Lifecycle.PAUSED, Lifecycle.CANCELLING, Lifecycle.UNKNOWN})


@dataclass(frozen=True)
class FeedConfig:
    events_interval_seconds: float = 30.0  # POLL_INTERVAL_SECONDS
    chart_interval_seconds: float = 300.0  # CHART_INTERVAL_SECONDS
    lease_seconds: float = 120.0
    batch_limit: int = 200
    max_jobs_per_tick: int = 2000
    max_items_per_reply: int = 10
    max_backoff_seconds: float = 900.0
    recent: timedelta = timedelta(minutes=10)  # a job that ended this recently still gets its last read


@dataclass
class FeedReport:
    claimed: int = 0
    event_reads: int = 0
    metric_reads: int = 0
    replies: int = 0  # grouped replies queued
    charts: int = 0  # reads that asked for a chart (queued unless one waits or nothing is new)
    lost: int = 0  # reads another follower recorded first
    errors: list[str] = field(default_factory=list)


class FeedFollower:
    def __init__(
        self,
        engine: Engine,
        backends: Iterable[Backend],
        owner: str,
        clock: Callable[[], datetime],
        config: FeedConfig | None = None,
    ) -> None:
        self.engine = engine
        self.owner = owner
        self.clock = clock
        self.config = config or FeedConfig()
        # Only backends that declare and implement a capability are read (a declared one missing its method is
        # a bug the declaration test catches; it is not called here).
        self.backends: dict[tuple[str, str], Backend] = {}
        for backend in backends:
            caps = capabilities(backend.name)
            events = caps.events and isinstance(backend, ReportsEvents)
            metrics = caps.metrics and isinstance(backend, ReportsMetrics)
            if events or metrics:
                self.backends[backend.name, backend.project] = backend

    def poll_once(self) -> FeedReport:
        cfg = self.config
        now = self.clock()
        report = FeedReport()
        if not self.backends:
            return report
        names = {name for name, _ in self.backends}
        first_chart = now + timedelta(seconds=cfg.chart_interval_seconds)
        feed_store.ensure(self.engine, names, now, first_chart, cfg.recent)
        while report.claimed < cfg.max_jobs_per_tick:
            limit = min(cfg.batch_limit, cfg.max_jobs_per_tick - report.claimed)
            batch = feed_store.claim(self.engine, self.owner, now, limit, cfg.lease_seconds)
            report.claimed += len(batch)
            for feed in batch:
                self._follow(feed, now, report)
            if len(batch) < limit:
                break
        return report

    def _follow(self, feed: FeedJob, now: datetime, report: FeedReport) -> None:
        cfg = self.config
        backend = self.backends.get((feed.backend, feed.project))
        if backend is None:  # its backend is off here (another replica may have it on): look again later
            later = now + timedelta(seconds=cfg.events_interval_seconds)
            feed_store.release(self.engine, self.owner, feed.job_id, later, feed.failures)
            return
        caps = capabilities(feed.backend)
        key = job_key(feed.backend, feed.slug, feed.model_id)
        final = feed.ended
        read_events = caps.events and isinstance(backend, ReportsEvents) and (final or feed.next_events_at <= now)
        read_metrics = (
            caps.metrics
            and isinstance(backend, ReportsMetrics)
            and (final or (feed.next_chart_at <= now and feed.lifecycle in _CHARTED))
        )
        try:
            events = backend.events(key) if read_events and isinstance(backend, ReportsEvents) else None
            report.event_reads += events is not None
            points = (
                backend.metrics(key, after_step=feed.last_step)
                if read_metrics and isinstance(backend, ReportsMetrics)
                else None
            )
            report.metric_reads += points is not None
        except BackendError as exc:
            self._failed(feed, exc, now, report)
            return
        read = self._read(feed, events, points, now, final)
        if feed_store.record(self.engine, self.owner, feed, read, now):
            report.replies += read.reply is not None
            report.charts += read.chart
        else:
            report.lost += 1

    def _read(
        self,
        feed: FeedJob,
        events: list[JobEvent] | None,
        metrics: list[MetricPoint] | None,
        now: datetime,
        final: bool,
    ) -> FeedRead:
        cfg = self.config
        told = list(feed.events_told)
        fresh: list[JobEvent] = []
        if events is not None:
            seen = set(told)
            # The log is oldest first: what comes before the last event told is old, even when its key has left the
            # bounded list of keys kept (feed_store.MAX_TOLD_KEYS).
            start = 1 + max((i for i, event in enumerate(events) if event.key in seen), default=-1)
            for event in events[start:]:
                if event.notable and event.key not in seen:
                    seen.add(event.key)
                    told.append(event.key)
                    fresh.append(event)
        reply = None
        if fresh:
            shown = fresh[: cfg.max_items_per_reply]
            items = tuple(FeedItem(level=e.level.value, kind=e.kind, message=e.message, at=e.at) for e in shown)
            reply = FeedEvents(items=items, more=len(fresh) - len(shown))
        points: list[Point] = list(feed.points)
        last_step = feed.last_step
        for point in sorted(metrics or [], key=lambda p: p.step):
            if (last_step is None or point.step > last_step) and (point.train_loss, point.eval_loss) != (None, None):
                points.append((point.step, point.train_loss, point.eval_loss))
            last_step = point.step if last_step is None else max(last_step, point.step)
        events_at = now + timedelta(seconds=cfg.events_interval_seconds)
        # Not read now (the job is not training yet): looked at again on the events' pace, so its first chart
        # comes soon after training starts rather than a whole chart interval later.
        chart_at = (
            now + timedelta(seconds=cfg.chart_interval_seconds)
            if metrics is not None
            else max(feed.next_chart_at, events_at)
        )
        new_steps = last_step is not None and (feed.charted_step is None or last_step > feed.charted_step)
        return FeedRead(
            events_told=told,
            points=points,
            last_step=last_step,
            next_events_at=events_at,
            next_chart_at=chart_at,
            reply=reply,
            events_read=events is not None,
            metrics_read=metrics is not None,
            chart=metrics is not None and bool(points) and new_steps,
            final=final,
        )

    def _failed(self, feed: FeedJob, exc: BackendError, now: datetime, report: FeedReport) -> None:
        cfg = self.config
        failures = feed.failures + 1
        report.errors.append(f"job {feed.job_id}: {exc.describe()}")
        if feed.ended and (isinstance(exc, NotFoundError) or failures >= 3):
            # An ended job's log that cannot be read (deleted at the service) will not come back: stop asking.
            feed_store.finish(self.engine, self.owner, feed.job_id)
            log.info("feed ended without its last read", extra={"job_id": feed.job_id, "error": exc.describe()})
            return
        delay = backoff(
            failures, base=cfg.events_interval_seconds, cap=cfg.max_backoff_seconds, retry_after=exc.retry_after
        )
        feed_store.release(self.engine, self.owner, feed.job_id, now + timedelta(seconds=delay), failures)
        log.warning("feed read failed", extra={"job_id": feed.job_id, "error": exc.describe(), "retry_in_s": delay})

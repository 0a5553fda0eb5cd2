"""The feed's queries: which jobs have a feed, leases on them, and recording a read with its outbox rows in one
transaction (the `job_feeds` table; see jobs/feed.py for what is read and when).

A read is recorded with a compare-and-set on the feed's `version` under the reader's lease, and the reply or
chart it causes is an outbox row with a key unique per job (`events:<n>`, `chart:<n>`, `chart:final`), written
in that same transaction: however many replicas or restarts race, a read is told once.

Chart rows are queued on the upload lane (`UPLOAD_LANE` as their `outbox.channel_id`) rather than the job's
channel: the notifier's claim takes the first due row of each free "channel", so the lane, whose slot in
`channel_slots` is the workspace's upload budget, yields at most one chart per free upload slot and never takes
the place of a reply in its channel.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from slackbot.domain.events import FeedEvents, LossChart, OutboxKind
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.db import db_now, reading, writing
from slackbot.jobs.outbox_writes import queue
from slackbot.jobs.schema import UNDELIVERED, OutboxState, job_feeds, jobs, outbox

# The outbox "channel" of chart rows, and the key of the workspace's upload slot in `channel_slots` (no Slack
# channel id starts with "~").
UPLOAD_LANE = "~uploads"
# Bounds of what a feed row keeps: the newest notable keys told, and the curve's points (thinned past this).
MAX_TOLD_KEYS = 2000
MAX_POINTS = 2000

Point = tuple[int, float | None, float | None]  # step, train loss, eval loss


@dataclass(frozen=True, slots=True)
class FeedJob:
    """A claimed feed with the job columns the follower needs."""

    job_id: int
    backend: str
    project: str
    slug: str
    model_id: str | None
    channel_id: str
    lifecycle: Lifecycle
    tracking: bool
    next_events_at: datetime
    next_chart_at: datetime
    events_told: tuple[str, ...]
    points: tuple[Point, ...]
    last_step: int | None
    charted_step: int | None
    replies: int
    charts: int
    failures: int
    version: int

    @property
    def ended(self) -> bool:
        """Nothing more will happen to the job (or the bot stopped following it): the feed's last read is due."""
        return self.lifecycle.is_terminal or not self.tracking


@dataclass(frozen=True)
class FeedRead:
    """What one pass over a feed found, to record."""

    events_told: Sequence[str]
    points: Sequence[Point]
    last_step: int | None
    next_events_at: datetime
    next_chart_at: datetime
    reply: FeedEvents | None = None
    events_read: bool = True  # False: `events_told` is as it was, not written again
    metrics_read: bool = True  # False: the curve is as it was, not written again
    chart: bool = False  # queue a chart if the curve has steps no chart showed and none is waiting
    final: bool = False  # the job's last read: the feed is done, and a pending chart gives way to the final one


def ensure(
    engine: Engine, backends: Collection[str], now: datetime, first_chart_at: datetime, recent: timedelta
) -> int:
    """Give a feed to every job of these backends that is followed (or ended within `recent`) and has none yet."""
    if not backends:
        return 0
    has_feed = exists().where(job_feeds.c.job_id == jobs.c.id)
    wanted = and_(
        jobs.c.backend.in_(list(backends)),
        jobs.c.lifecycle.not_in([Lifecycle.SUBMITTING.value, Lifecycle.REJECTED.value]),
        or_(jobs.c.tracking.is_(True), jobs.c.finished_at >= now - recent),
        ~has_feed,
    )
    with reading(engine) as conn:
        ids = list(conn.execute(select(jobs.c.id).where(wanted).order_by(jobs.c.id)).scalars())
    if not ids:
        return 0
    rows = [
        {
            "job_id": job_id,
            "next_events_at": now,
            "next_chart_at": first_chart_at,
            "events_told": [],
            "points": [],
            "replies": 0,
            "charts": 0,
            "failures": 0,
            "done": False,
            "version": 0,
        }
        for job_id in ids
    ]
    with writing(engine) as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(job_feeds).on_conflict_do_nothing(index_elements=["job_id"])
        return int(conn.execute(stmt, rows).rowcount or 0)


_FEED_COLUMNS = (
    job_feeds.c.job_id,
    jobs.c.backend,
    jobs.c.project,
    jobs.c.slug,
    jobs.c.model_id,
    jobs.c.channel_id,
    jobs.c.lifecycle,
    jobs.c.tracking,
    job_feeds.c.next_events_at,
    job_feeds.c.next_chart_at,
    job_feeds.c.events_told,
    job_feeds.c.points,
    job_feeds.c.last_step,
    job_feeds.c.charted_step,
    job_feeds.c.replies,
    job_feeds.c.charts,
    job_feeds.c.failures,
    job_feeds.c.version,
)


def claim(engine: Engine, owner: str, now: datetime, limit: int, lease_seconds: float) -> list[FeedJob]:
    """Lease up to `limit` feeds due now (`now`: the follower's clock) that no live lease holds (the database's
    clock, as for the tracker's leases). A feed is due when its next read is, or when its job has ended."""
    ended = or_(jobs.c.tracking.is_(False), jobs.c.lifecycle.in_([lc.value for lc in Lifecycle if lc.is_terminal]))
    with writing(engine) as conn:
        db = db_now(conn)
        free = or_(job_feeds.c.lease_until.is_(None), job_feeds.c.lease_until <= db)
        due = and_(
            job_feeds.c.done.is_(False),
            free,
            or_(job_feeds.c.next_events_at <= now, job_feeds.c.next_chart_at <= now, ended),
        )
        query = (
            select(job_feeds.c.job_id)
            .select_from(job_feeds.join(jobs, jobs.c.id == job_feeds.c.job_id))
            .where(due)
            .order_by(job_feeds.c.next_events_at, job_feeds.c.job_id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(of=job_feeds, skip_locked=True)
        ids = list(conn.execute(query).scalars())
        if not ids:
            return []
        conn.execute(
            update(job_feeds)
            .where(job_feeds.c.job_id.in_(ids), job_feeds.c.done.is_(False), free)
            .values(lease_owner=owner, lease_until=db + timedelta(seconds=lease_seconds))
        )
        mine = and_(job_feeds.c.job_id.in_(ids), job_feeds.c.lease_owner == owner)
        rows = conn.execute(
            select(*_FEED_COLUMNS)
            .select_from(job_feeds.join(jobs, jobs.c.id == job_feeds.c.job_id))
            .where(mine)
            .order_by(job_feeds.c.job_id)
        ).all()
    return [_feed_job(row) for row in rows]


def _feed_job(row: Any) -> FeedJob:
    points = tuple((int(p[0]), _loss(p[1]), _loss(p[2])) for p in row.points or [])
    return FeedJob(
        job_id=row.job_id,
        backend=row.backend,
        project=row.project,
        slug=row.slug,
        model_id=row.model_id,
        channel_id=row.channel_id,
        lifecycle=Lifecycle.parse(row.lifecycle),
        tracking=bool(row.tracking),
        next_events_at=row.next_events_at,
        next_chart_at=row.next_chart_at,
        events_told=tuple(str(k) for k in row.events_told or []),
        points=points,
        last_step=row.last_step,
        charted_step=row.charted_step,
        replies=row.replies,
        charts=row.charts,
        failures=row.failures,
        version=row.version,
    )


def _loss(value: object) -> float | None:
    # The JSON column hands back what was stored: a number, or None for a step without that loss.
    return float(value) if isinstance(value, int | float) else None


def record(engine: Engine, owner: str, feed: FeedJob, read: FeedRead, now: datetime) -> bool:
    """Record a read and queue what it tells, in one transaction, if the feed is still where it was read and
    ours; False (nothing written) if another follower moved it on meanwhile."""
    values: dict[str, Any] = {
        "next_events_at": read.next_events_at,
        "next_chart_at": read.next_chart_at,
        "failures": 0,
        "done": read.final,
        "version": feed.version + 1,
        "lease_owner": None,
        "lease_until": None,
    }
    # Only what was read is written: a curve of thousands of points is not rewritten on every read of the log.
    if read.events_read:
        values["events_told"] = list(read.events_told)[-MAX_TOLD_KEYS:]
    if read.metrics_read:
        values["points"] = [list(p) for p in thin(read.points)]
        values["last_step"] = read.last_step
    with writing(engine) as conn:
        mine = (
            job_feeds.c.job_id == feed.job_id,
            job_feeds.c.version == feed.version,
            job_feeds.c.lease_owner == owner,
        )
        if not conn.execute(update(job_feeds).where(*mine).values(**values)).rowcount:
            return False
        if read.reply is not None:
            queue(conn, feed.job_id, feed.channel_id, f"events:{feed.replies + 1}", read.reply, now)
            conn.execute(update(job_feeds).where(job_feeds.c.job_id == feed.job_id).values(replies=feed.replies + 1))
        if read.chart or read.final:
            _queue_chart(conn, feed, read, now)
        return True


def _queue_chart(conn: Connection, feed: FeedJob, read: FeedRead, now: datetime) -> None:
    charted = conn.execute(select(job_feeds.c.charted_step).where(job_feeds.c.job_id == feed.job_id)).scalar()
    if read.last_step is None or (charted is not None and read.last_step <= charted):
        return  # every step read is in a chart already shown: nothing to upload
    waiting = and_(outbox.c.job_id == feed.job_id, outbox.c.kind == OutboxKind.CHART.value)
    if read.final:
        # The final chart shows every point; one still waiting would show fewer, and later.
        conn.execute(
            update(outbox)
            .where(waiting, outbox.c.state == OutboxState.PENDING)
            .values(state=OutboxState.DEAD, last_error="superseded by the final chart")
        )
        queue(conn, feed.job_id, UPLOAD_LANE, "chart:final", LossChart(through_step=read.last_step, final=True), now)
        return
    pending = conn.execute(
        select(func.count()).select_from(outbox).where(waiting, outbox.c.state.in_(UNDELIVERED))
    ).scalar_one()
    if pending:
        return  # it is drawn when delivered, from the points as they are then: these steps will be in it
    key = f"chart:{feed.charts + 1}"
    if queue(conn, feed.job_id, UPLOAD_LANE, key, LossChart(through_step=read.last_step), now):
        conn.execute(update(job_feeds).where(job_feeds.c.job_id == feed.job_id).values(charts=feed.charts + 1))


def release(engine: Engine, owner: str, job_id: int, next_events_at: datetime, failures: int) -> None:
    """Give a feed back after a failed read, to be read again at `next_events_at`."""
    with writing(engine) as conn:
        conn.execute(
            update(job_feeds)
            .where(job_feeds.c.job_id == job_id, job_feeds.c.lease_owner == owner)
            .values(next_events_at=next_events_at, failures=failures, lease_owner=None, lease_until=None)
        )


def finish(engine: Engine, owner: str, job_id: int) -> None:
    """The ended job's feed cannot be read any more (its job is gone at the service): nothing more to tell."""
    with writing(engine) as conn:
        conn.execute(
            update(job_feeds)
            .where(job_feeds.c.job_id == job_id, job_feeds.c.lease_owner == owner)
            .values(done=True, lease_owner=None, lease_until=None)
        )


def thin(points: Sequence[Point]) -> list[Point]:
    """The curve within MAX_POINTS: past it, every other training-only point goes (evaluations and the last point
    stay), so a long run keeps its shape at a bounded cost per read and per chart."""
    kept = list(points)
    while len(kept) > MAX_POINTS:
        last = len(kept) - 1
        thinned = [p for i, p in enumerate(kept) if i % 2 == 0 or i == last or p[2] is not None]
        if len(thinned) == len(kept):
            break  # all evaluations: nothing left to thin
        kept = thinned
    return kept


# --- for the notifier ----------------------------------------------------------------------------------------


def chart_data(engine: Engine, job_id: int) -> tuple[list[Point], int | None]:
    """The job's curve as kept now, and the last step a chart shown in Slack went to."""
    with reading(engine) as conn:
        row = conn.execute(
            select(job_feeds.c.points, job_feeds.c.charted_step).where(job_feeds.c.job_id == job_id)
        ).first()
    if row is None:
        return [], None
    return [(int(p[0]), _loss(p[1]), _loss(p[2])) for p in row.points or []], row.charted_step


def mark_charted(engine: Engine, job_id: int, step: int) -> None:
    """A chart through `step` is in Slack: a later one is queued only for steps after it."""
    with writing(engine) as conn:
        conn.execute(
            update(job_feeds)
            .where(
                job_feeds.c.job_id == job_id,
                or_(job_feeds.c.charted_step.is_(None), job_feeds.c.charted_step < step),
            )
            .values(charted_step=step)
        )

"""The outbox as the notifier uses it: claiming due rows, their order, giving a claim back, marking the outcome
and when to look again. (Rows are written in the transaction of the change they tell: outbox_writes.py.)

A claim (`claimed_by` until `claimed_until`) runs on the database's clock, and an outcome is recorded only while
the claim is its recorder's: a notifier that lost a row to another never overwrites what that one did.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, or_, select, update

from slackbot.domain.events import OutboxKind
from slackbot.jobs.db import db_now, reading, writing
from slackbot.jobs.records import OutboxRecord
from slackbot.jobs.schema import UNDELIVERED, OutboxState, channel_slots, outbox


def claim(
    engine: Engine,
    owner: str,
    now: datetime,
    limit: int,
    lease_seconds: float,
    *,
    job_id: int | None = None,
    one_per_free_channel: bool = False,
) -> list[OutboxRecord]:
    """Lease due outbox rows (of one job, with `job_id`): pending ones whose time has come (`now`, the caller's
    clock, which schedules), and in-flight ones whose claim expired by the DATABASE's clock (`db.db_now`), so
    replicas whose clocks differ agree on whose a row is. The claim runs `lease_seconds` from the database's now.

    With `one_per_free_channel`, only the first due row of each channel whose posting slot is free now
    (`channel_slots`): rows waiting for a busy channel are not touched, so a backlog in one channel costs
    one read per round instead of a claim and a release per row. Nothing due costs no write transaction.

    `attempts` counts claims, so attempts > 1 means an earlier attempt may already have reached Slack and
    must be reconciled before sending again.
    """

    def due(db: datetime) -> Any:
        condition = or_(
            and_(outbox.c.state == OutboxState.PENDING, outbox.c.not_before <= now),
            and_(outbox.c.state == OutboxState.IN_FLIGHT, outbox.c.claimed_until <= db),
        )
        return condition if job_id is None else and_(outbox.c.job_id == job_id, condition)

    with reading(engine) as conn:
        ready = due(db_now(conn))
        query = select(outbox.c.id).where(ready).order_by(outbox.c.id).limit(limit)
        if one_per_free_channel:
            first = func.min(outbox.c.id)
            query = (
                select(first)
                .select_from(outbox.outerjoin(channel_slots, channel_slots.c.channel_id == outbox.c.channel_id))
                .where(ready, or_(channel_slots.c.free_at.is_(None), channel_slots.c.free_at <= now))
                .group_by(outbox.c.channel_id)
                .order_by(first)
                .limit(limit)
            )
        ids = list(conn.execute(query).scalars())
    if not ids:
        return []
    with writing(engine) as conn:
        db = db_now(conn)
        lock = select(outbox.c.id).where(outbox.c.id.in_(ids), due(db)).order_by(outbox.c.id)
        if conn.dialect.name == "postgresql":
            lock = lock.with_for_update(skip_locked=True)
        ids = list(conn.execute(lock).scalars())
        if not ids:
            return []
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids), due(db))
            .values(
                state=OutboxState.IN_FLIGHT,
                claimed_by=owner,
                claimed_until=db + timedelta(seconds=lease_seconds),
                attempts=outbox.c.attempts + 1,
            )
        )
        rows = conn.execute(
            select(outbox)
            .where(outbox.c.id.in_(ids), outbox.c.claimed_by == owner, outbox.c.state == OutboxState.IN_FLIGHT)
            .order_by(outbox.c.id)
        )
        return [OutboxRecord.from_row(row) for row in rows]


def reconfirm(engine: Engine, outbox_id: int, owner: str, lease_seconds: float) -> bool:
    """Right before a post: is the row still ours? If so its claim runs `lease_seconds` from the database's now.

    False means the claim ran out and another notifier took the row (or finished it): this one must not post,
    or the message would go out twice. The lease outlasts the post itself (Slack calls time out well before),
    so whoever takes the row over later finds this post when it reconciles.
    """
    with writing(engine) as conn:
        until = db_now(conn) + timedelta(seconds=lease_seconds)
        changed = conn.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id, outbox.c.claimed_by == owner, outbox.c.state == OutboxState.IN_FLIGHT)
            .values(claimed_until=until)
        ).rowcount
        return bool(changed)


def finish(engine: Engine, outbox_id: int, owner: str, **values: Any) -> bool:
    """Record the outcome of our claim on a row (sent, retry later, dead), only while the claim is ours: a
    notifier that lost the row to another must not overwrite what that one did. False if it was not ours."""
    with writing(engine) as conn:
        mine = (outbox.c.id == outbox_id, outbox.c.claimed_by == owner, outbox.c.state == OutboxState.IN_FLIGHT)
        return bool(conn.execute(update(outbox).where(*mine).values(**values)).rowcount)


def blocked_until(engine: Engine, job_id: int, outbox_id: int, recheck: datetime, *, chart: bool) -> datetime | None:
    """When an earlier undelivered row of the job that this row must wait for might be done; None if none.

    Rows of one job are delivered in id order, so a later reply never overtakes an earlier one. A chart waits for
    every earlier row of its job (it goes after the card and the replies before it); a reply never waits for a
    chart: charts go when the upload budget allows, replies at once. A row in flight elsewhere is looked at again
    at `recheck` (its claim runs on the database's clock, not the caller's).
    """
    query = select(outbox.c.state, outbox.c.not_before).where(
        outbox.c.job_id == job_id,
        outbox.c.id < outbox_id,
        outbox.c.state.in_(UNDELIVERED),
    )
    # A card redraw shows whatever is current when it goes: nothing waits for it.
    query = query.where(outbox.c.kind != OutboxKind.CARD_UPDATE.value)
    if not chart:
        query = query.where(outbox.c.kind != OutboxKind.CHART.value)
    with reading(engine) as conn:
        rows = conn.execute(query).all()
    # An in-flight row is busy until its owner is done (looked at again at `recheck`); a pending one until due.
    times: list[datetime] = [recheck if row.state == OutboxState.IN_FLIGHT else row.not_before for row in rows]
    return min(times) if times else None


def release(engine: Engine, outbox_id: int, owner: str, not_before: datetime) -> None:
    """Give back a claim that sent nothing (paced, rate limited, waiting for an earlier row).

    The claim's `attempts` increment is undone: attempts > 1 must keep meaning "an earlier attempt may have
    reached Slack", and waiting must not count towards giving up on the row.
    """
    with writing(engine) as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id, outbox.c.claimed_by == owner, outbox.c.state == OutboxState.IN_FLIGHT)
            .values(
                state=OutboxState.PENDING,
                not_before=not_before,
                attempts=case((outbox.c.attempts > 0, outbox.c.attempts - 1), else_=0),
                claimed_by=None,
                claimed_until=None,
            )
        )


def next_channel_free(engine: Engine, now: datetime) -> datetime | None:
    """The first moment a busy channel frees up for a row that will be due by then; None if no row waits.

    Lets the notifier run again exactly when the next post may go, instead of on its next timer tick after.
    """
    query = (
        select(func.min(channel_slots.c.free_at))
        .select_from(channel_slots.join(outbox, outbox.c.channel_id == channel_slots.c.channel_id))
        .where(
            channel_slots.c.free_at > now,
            outbox.c.state == OutboxState.PENDING,
            outbox.c.not_before <= channel_slots.c.free_at,
        )
    )
    with reading(engine) as conn:
        moment: datetime | None = conn.execute(query).scalar_one_or_none()
    return moment

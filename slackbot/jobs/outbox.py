"""Outbox queries the notifier needs beyond the store's: order checks, giving a claim back, and when to look
again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, case, func, select, update

from slackbot.jobs.db import reading, writing
from slackbot.jobs.schema import channel_slots, outbox
from slackbot.jobs.store import IN_FLIGHT, PENDING


def blocked_until(engine: Engine, job_id: int, outbox_id: int) -> datetime | None:
    """When an earlier, still undelivered row of the same job might be done; None if there is none.

    Rows of one job are delivered strictly in id order, so a later reply never overtakes an earlier one.
    """
    query = select(outbox.c.state, outbox.c.not_before, outbox.c.claimed_until).where(
        outbox.c.job_id == job_id,
        outbox.c.id < outbox_id,
        outbox.c.state.in_((PENDING, IN_FLIGHT)),
    )
    with reading(engine) as conn:
        rows = conn.execute(query).all()
    # An in-flight row is busy until its claim runs out; a pending one until it is due.
    times: list[datetime] = [
        (row.claimed_until or row.not_before) if row.state == IN_FLIGHT else row.not_before for row in rows
    ]
    return min(times) if times else None


def release(engine: Engine, outbox_id: int, owner: str, not_before: datetime) -> None:
    """Give back a claim that sent nothing (paced, rate limited, waiting for an earlier row).

    The claim's `attempts` increment is undone: attempts > 1 must keep meaning "an earlier attempt may have
    reached Slack", and waiting must not count towards giving up on the row.
    """
    with writing(engine) as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id, outbox.c.claimed_by == owner, outbox.c.state == IN_FLIGHT)
            .values(
                state=PENDING,
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
            outbox.c.state == PENDING,
            outbox.c.not_before <= channel_slots.c.free_at,
        )
    )
    with reading(engine) as conn:
        moment: datetime | None = conn.execute(query).scalar_one_or_none()
    return moment

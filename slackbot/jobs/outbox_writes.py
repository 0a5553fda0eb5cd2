"""Writing outbox rows: always inside the transaction of the change they tell, on the caller's Connection.

A row is unique per (job, dedupe key) (`uq_outbox_job_key`) and `queue` inserts ignoring a duplicate, so however
many replicas or retries write the same change, it is told once. A row holds a typed event
(slackbot.domain.events), rendered by the notifier when it goes. The keys:
  card:post, adopted, cancel, deleted, reply:EXPIRED, notice:<what>   once per job
  reply:<STATUS>, reply:<STATUS>:<n>   the n-th time the job enters STATUS (`reply_key`)
  rejected:<n>, events:<n>, chart:<n>, chart:final   counted by their writers
  card:details   the card's redraw: one row, put back to pending when the details change (`refresh_cards`)
The notifier's side of the table (claiming rows, recording outcomes) is outbox.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from slackbot.domain.events import CardRefresh, OutboxEvent, OutboxKind
from slackbot.jobs.schema import OutboxState, jobs, outbox

# A running job's card is redrawn with its newer details at most this often (chat.update is rated per workspace).
CARD_REFRESH_SECONDS = 300.0
_CARD_REFRESH_KEY = "card:details"


def queue(conn: Connection, job_id: int, channel_id: str, dedupe_key: str, event: OutboxEvent, now: datetime) -> bool:
    """Insert an outbox row unless one with the same key exists for the job; True if inserted."""
    values = {
        "job_id": job_id,
        "dedupe_key": dedupe_key,
        "kind": event.kind.value,
        "channel_id": channel_id,
        "payload": event.to_json(),
        "state": OutboxState.PENDING,
        "attempts": 0,
        "not_before": now,
        "created_at": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(outbox).values(**values).on_conflict_do_nothing(index_elements=["job_id", "dedupe_key"])
    # RETURNING, not rowcount: psycopg reports a row for an INSERT that ON CONFLICT DO NOTHING skipped.
    return conn.execute(stmt.returning(outbox.c.id)).first() is not None


def queue_for_job(conn: Connection, job_id: int, dedupe_key: str, event: OutboxEvent, now: datetime) -> bool:
    """`queue` in the job's channel; False if the job does not exist or the row did."""
    channel_id = conn.execute(select(jobs.c.channel_id).where(jobs.c.id == job_id)).scalar_one_or_none()
    return channel_id is not None and queue(conn, job_id, channel_id, dedupe_key, event, now)


def reply_key(conn: Connection, job_id: int, status: str) -> str:
    """`reply:<STATUS>` the first time the job enters STATUS, `reply:<STATUS>:<n>` the n-th time.

    Read in the transaction whose compare-and-set just moved the job into STATUS: only one writer can win that
    change, so the count (and so the key) is the same however many replicas raced, and the row's unique key
    still stops a retried transaction from telling it twice.
    """
    first = f"reply:{_key_part(status)}"
    keys = conn.execute(
        select(outbox.c.dedupe_key).where(outbox.c.job_id == job_id, outbox.c.kind == OutboxKind.REPLY.value)
    ).scalars()
    told = sum(1 for key in keys if key == first or key.startswith(first + ":"))
    return first if told == 0 else f"{first}:{told + 1}"


def _key_part(status: str) -> str:
    """The status as it goes into an outbox key: an unknown status from the backend can be any length, and the
    key is in a unique index (PostgreSQL refuses index entries over about 2.7 kB), so a long one is digested."""
    if len(status) <= 64:
        return status
    return f"{status[:32]}#{hashlib.sha256(status.encode()).hexdigest()[:16]}"


def refresh_cards(conn: Connection, job_ids: Sequence[int], now: datetime) -> None:
    """Queue each posted card's redraw: one outbox row per job, put back to pending once it went, no sooner than
    CARD_REFRESH_SECONDS after it last went. A row still waiting needs nothing: it draws the details as they are
    when it goes."""
    if not job_ids:
        return
    cards = conn.execute(
        select(jobs.c.id, jobs.c.card_channel_id, jobs.c.channel_id).where(
            jobs.c.id.in_(job_ids), jobs.c.card_ts.is_not(None)
        )
    ).all()
    if not cards:
        return
    rows = conn.execute(
        select(outbox.c.id, outbox.c.job_id, outbox.c.state, outbox.c.sent_at).where(
            outbox.c.job_id.in_([c.id for c in cards]), outbox.c.dedupe_key == _CARD_REFRESH_KEY
        )
    ).all()
    existing = {row.job_id: row for row in rows}
    went = (OutboxState.SENT, OutboxState.DEAD)
    for card in cards:
        row = existing.get(card.id)
        if row is None:
            queue(conn, card.id, card.card_channel_id or card.channel_id, _CARD_REFRESH_KEY, CardRefresh(), now)
        elif row.state in went:
            gap = timedelta(seconds=CARD_REFRESH_SECONDS)
            due = max(now, row.sent_at + gap) if row.sent_at is not None else now
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row.id, outbox.c.state.in_(went))
                .values(
                    state=OutboxState.PENDING,
                    not_before=due,
                    attempts=0,
                    claimed_by=None,
                    claimed_until=None,
                    last_error=None,
                )
            )

"""The tracker's leases on jobs: claiming the due ones (or named ones), renewing, releasing, rescheduling.

A followed job is held by at most one owner at a time (`jobs.lease_owner` until `jobs.lease_until`). Whose it is
goes by the DATABASE's clock (`db.db_now`), so replicas whose clocks differ agree on when a lease has run out;
what is due goes by the caller's clock, which schedules. A claim skips rows another replica is claiming (FOR
UPDATE SKIP LOCKED on PostgreSQL; SQLite's BEGIN IMMEDIATE makes its select-then-update atomic), and renewing,
releasing or rescheduling changes a row only while the caller holds it (when it names itself). Changes of a
job's state, which release the lease too, are in transitions.py.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, or_, select, update

from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.db import db_now, reading, writing
from slackbot.jobs.records import DueJob, job_key
from slackbot.jobs.schema import jobs

_DUE_COLUMNS = [field.name for field in fields(DueJob)]

# (id, key, status, lifecycle) of a followed job: what the tracker compares a model list with.
Followed = tuple[int, str, str | None, Lifecycle]


def claim_due(engine: Engine, owner: str, now: datetime, limit: int, lease_seconds: float) -> list[DueJob]:
    """Lease up to `limit` tracked jobs whose poll is due and that no live lease holds."""
    due = jobs.c.next_poll_at <= now
    order = (jobs.c.next_poll_at, jobs.c.id)
    return _claim(engine, owner, lease_seconds, due, order, limit)


def claim_ids(engine: Engine, owner: str, ids: Collection[int], now: datetime, lease_seconds: float) -> list[DueJob]:
    """Lease these tracked jobs, due or not, except those a live lease holds (another tracker has them)."""
    if not ids:
        return []
    return _claim(engine, owner, lease_seconds, jobs.c.id.in_(list(ids)), (jobs.c.id,), len(ids))


def _claim(
    engine: Engine, owner: str, lease_seconds: float, which: Any, order: Sequence[Any], limit: int
) -> list[DueJob]:
    # The caller's `now` already decided what is due in `which`; whose a job is goes by the database's clock.
    with writing(engine) as conn:
        db = db_now(conn)
        free = and_(
            jobs.c.tracking.is_(True),
            which,
            or_(jobs.c.lease_until.is_(None), jobs.c.lease_until <= db),
        )
        until = db + timedelta(seconds=lease_seconds)
        # PostgreSQL: rows another replica is claiming right now are skipped, not waited for. SQLite has
        # no row locks; its BEGIN IMMEDIATE transaction (see db.py) makes the select-then-update atomic.
        query = select(jobs.c.id).where(free).order_by(*order).limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(conn.execute(query).scalars())
        if not ids:
            return []
        conn.execute(update(jobs).where(jobs.c.id.in_(ids), free).values(lease_owner=owner, lease_until=until))
        columns = [jobs.c[name] for name in _DUE_COLUMNS]
        mine = and_(jobs.c.id.in_(ids), jobs.c.lease_owner == owner)
        return [DueJob(*row) for row in conn.execute(select(*columns).where(mine).order_by(jobs.c.id))]


def renew_lease(engine: Engine, job_id: int, owner: str, lease_seconds: float) -> bool:
    """Extend `owner`'s lease on a job to `lease_seconds` from the database's now; False if it is not ours."""
    with writing(engine) as conn:
        until = db_now(conn) + timedelta(seconds=lease_seconds)
        mine = (jobs.c.id == job_id, jobs.c.lease_owner == owner)
        return bool(conn.execute(update(jobs).where(*mine).values(lease_until=until)).rowcount)


def release(engine: Engine, job_id: int, lease_owner: str | None = None) -> None:
    """Give the job's lease back (only `lease_owner`'s, when named)."""
    conditions = [jobs.c.id == job_id]
    if lease_owner is not None:
        conditions.append(jobs.c.lease_owner == lease_owner)
    with writing(engine) as conn:
        conn.execute(update(jobs).where(*conditions).values(lease_owner=None, lease_until=None))


def reschedule_many(engine: Engine, due: Sequence[tuple[int, datetime]], lease_owner: str, failures: int = 0) -> int:
    """Set each job's next poll and release our lease on it (`failures`: the project's failures in a row): one
    transaction, one statement run for each row. Returns how many rows were ours to change."""
    if not due:
        return 0
    stmt = (
        update(jobs)
        .where(jobs.c.id == bindparam("b_id"), jobs.c.tracking.is_(True), jobs.c.lease_owner == lease_owner)
        .values(next_poll_at=bindparam("b_next"), poll_failures=failures, lease_owner=None, lease_until=None)
    )
    with writing(engine) as conn:
        result = conn.execute(stmt, [{"b_id": job_id, "b_next": at} for job_id, at in due])
        return int(result.rowcount)


def followed(engine: Engine) -> dict[tuple[str, str], list[Followed]]:
    """(id, key, status, lifecycle) of every job followed, leased or not, by (backend, project): which lists to
    read, and what to compare each with to find the jobs that moved before their next poll. The key is what
    the service follows the job by (`records.job_key`: the slug, or the job id once known)."""
    columns = (
        jobs.c.backend,
        jobs.c.project,
        jobs.c.id,
        jobs.c.slug,
        jobs.c.model_id,
        jobs.c.status,
        jobs.c.lifecycle,
    )
    query = select(*columns).where(jobs.c.tracking.is_(True))
    by_source: dict[tuple[str, str], list[Followed]] = {}
    with reading(engine) as conn:
        for row in conn.execute(query):
            key = job_key(row.backend, row.slug, row.model_id)
            by_source.setdefault((row.backend, row.project), []).append(
                (row.id, key, row.status, Lifecycle.parse(row.lifecycle))
            )
    return by_source

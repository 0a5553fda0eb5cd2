"""A job's changes of state after its row is written, each in one transaction with the outbox rows it causes.

Every change is a compare-and-set: the UPDATE's conditions say where its writer saw the row (its lifecycle, its
exact status, and the writer's lease when it holds one), and only if that changed the row is its message queued
(outbox_writes.py), with a key unique per job. So however many replicas or retries race, a change is made once
and told once; the losers get False. A change that ends the following, or moves the status, releases the lease.

Who calls what: the submitter (`confirm_created`, `reject`), the tracker (`apply_transition`, `adopt`,
`stop_watching`, `expire`, `update_details_many`), the card's controls (`record_cancel`, `mark_deleted`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Text, and_, bindparam, cast, func, select, update

from slackbot.backends.base import JobDetails, ModelState
from slackbot.domain.events import (
    Adopted,
    CancelRequested,
    Expired,
    ModelDeleted,
    OutboxEvent,
    OutboxKind,
    PostCard,
    Rejected,
    Transition,
)
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.db import writing
from slackbot.jobs.outbox_writes import queue, queue_for_job, refresh_cards, reply_key
from slackbot.jobs.schema import CANCEL_KEY, DELETED_KEY, OutboxState, jobs, outbox

# What a change queues, read in its transaction once the compare-and-set won: (dedupe key, event).
Message = Callable[[Connection], tuple[str, OutboxEvent]]


def confirm_created(
    engine: Engine, job_id: int, state: ModelState, now: datetime, next_poll_at: datetime, lease_owner: str | None
) -> bool:
    """Submitting → the backend's status, and queue the card. False if someone else resolved it first."""
    values = _new_status(state.status, state.lifecycle, now, state.is_terminal, next_poll_at)
    values |= {"model_id": state.id, "error_message": state.error_message}
    cas = _cas(job_id, Lifecycle.SUBMITTING, lease_owner)
    return _change(engine, job_id, cas, values, now, lambda _c: ("card:post", PostCard()))


def reject(
    engine: Engine,
    job_id: int,
    message: str,
    issues: Sequence[str],
    now: datetime,
    lease_owner: str | None,
    watch_until_next: datetime | None,
) -> bool:
    """Submitting → rejected and queue the refusal for the requester.

    A refusal (the backend answered no) is not followed any more. With `watch_until_next` (the create's
    outcome was never known, so the model may still appear) the row stays followed, next polled then, so that
    a create landing late is adopted (`adopt`) instead of training unfollowed.
    """

    def refusal(conn: Connection) -> tuple[str, OutboxEvent]:
        refused = and_(outbox.c.job_id == job_id, outbox.c.kind == OutboxKind.REJECTED.value)
        earlier = conn.execute(select(func.count()).select_from(outbox).where(refused)).scalar_one()
        return f"rejected:{earlier + 1}", Rejected(message=message, issues=tuple(issues))

    watch = watch_until_next is not None
    values = _new_status(None, Lifecycle.REJECTED, now, not watch, watch_until_next) | {"error_message": message}
    return _change(engine, job_id, _cas(job_id, Lifecycle.SUBMITTING, lease_owner), values, now, refusal)


def adopt(
    engine: Engine, job_id: int, state: ModelState, now: datetime, next_poll_at: datetime, lease_owner: str | None
) -> bool:
    """Rejected → the backend's status: the create we gave up on did make the model. Followed from now on.

    In the same transaction: a refusal not yet told is withdrawn (it would be wrong), the card is queued (it
    takes the place of the refusal told, see the notifier) and a reply saying it was started after all. The
    compare-and-set from rejected makes that told once, whoever adopts it.
    """
    values = _new_status(state.status, state.lifecycle, now, state.is_terminal, next_poll_at)
    values |= {"model_id": state.id, "error_message": state.error_message}
    with writing(engine) as conn:
        cas = _cas(job_id, Lifecycle.REJECTED, lease_owner)
        if not conn.execute(update(jobs).where(*cas).values(**values)).rowcount:
            return False
        refusals = (outbox.c.job_id == job_id, outbox.c.kind == OutboxKind.REJECTED.value)
        conn.execute(
            update(outbox)
            .where(*refusals, outbox.c.state == OutboxState.PENDING)
            .values(state=OutboxState.DEAD, last_error="withdrawn: the model was started after all")
        )
        channel_id = conn.execute(select(jobs.c.channel_id).where(jobs.c.id == job_id)).scalar_one()
        queue(conn, job_id, channel_id, "card:post", PostCard(adopted=True), now)
        queue(conn, job_id, channel_id, "adopted", Adopted(status=state.status, lifecycle=state.lifecycle), now)
        return True


def apply_transition(
    engine: Engine,
    job_id: int,
    expected: tuple[str | None, Lifecycle],
    new: tuple[str | None, Lifecycle],
    error_message: str | None,
    now: datetime,
    next_poll_at: datetime | None,
    lease_owner: str | None,
) -> bool:
    """Compare-and-set (status, lifecycle) from `expected` to `new` and queue its reply; False if the row
    moved on or the lease is gone. The status compare is exact: the service's string as stored.

    A new status of None keeps the stored one (a model that vanished has none; its last one is kept). Terminal
    lifecycles stop the tracking; the lease is released either way. A status the job comes back to (A→B→A) is
    a new transition and gets its own reply (see `outbox_writes.reply_key`).
    """
    (old_status, old_lifecycle), (new_status, new_lifecycle) = expected, new
    stop = new_lifecycle.is_terminal or next_poll_at is None
    event = Transition(
        from_status=old_status,
        to_status=new_status,
        from_lifecycle=old_lifecycle,
        to_lifecycle=new_lifecycle,
        at=now,
        error_message=error_message,
    )
    kept = old_status if new_status is None else new_status
    values = _new_status(kept, new_lifecycle, now, stop, next_poll_at) | {"error_message": error_message}
    key_part = new_status if new_status is not None else new_lifecycle.value
    cas = _cas(job_id, old_lifecycle, lease_owner, status=old_status)
    return _change(engine, job_id, cas, values, now, lambda conn: (reply_key(conn, job_id, key_part), event))


def stop_watching(engine: Engine, job_id: int, now: datetime, lease_owner: str) -> bool:
    """A rejected row whose model never appeared: no longer followed (nothing to tell, it was told already)."""
    conditions = [*_cas(job_id, Lifecycle.REJECTED, lease_owner), jobs.c.tracking.is_(True)]
    values = _unfollowed(now)
    with writing(engine) as conn:
        return bool(conn.execute(update(jobs).where(*conditions).values(**values)).rowcount)


def expire(engine: Engine, job_id: int, now: datetime, max_age_hours: float, lease_owner: str | None) -> bool:
    """Stop following a job that ran past the maximum age, and queue the notice (once)."""
    conditions = [jobs.c.id == job_id, jobs.c.tracking.is_(True)]
    if lease_owner is not None:
        conditions.append(jobs.c.lease_owner == lease_owner)
    values = _unfollowed(now)
    event = Expired(max_age_hours=max_age_hours)
    return _change(engine, job_id, conditions, values, now, lambda _c: ("reply:EXPIRED", event))


def update_details_many(engine: Engine, items: Sequence[tuple[int, JobDetails]], now: datetime) -> set[int]:
    """Keep what the service last told about each job beyond its status, in one transaction; the ids whose
    details changed. Not a transition (no compare-and-set, nothing told): the last read wins, and a posted card
    is queued for a redraw. A job whose details are as stored costs no write."""
    if not items:
        return set()
    wanted = {job_id: details.model_dump(mode="json") for job_id, details in items}
    texts = {job_id: json.dumps(value) for job_id, value in wanted.items()}
    # Compared as the JSON text written (PostgreSQL's json type has no equality, and keeps the text as sent).
    stored = cast(jobs.c.details, Text)
    with writing(engine) as conn:
        rows = conn.execute(select(jobs.c.id, stored.label("text")).where(jobs.c.id.in_(list(wanted))))
        changed = {row.id for row in rows if row.text != texts[row.id]}
        if changed:
            stmt = (
                update(jobs)
                .where(jobs.c.id == bindparam("b_id"))
                .values(details=bindparam("b_details"), updated_at=now)
            )
            conn.execute(stmt, [{"b_id": job_id, "b_details": wanted[job_id]} for job_id in sorted(changed)])
            # A service that tells nothing beyond the status (OpenPipe) has nothing to redraw.
            refresh_cards(conn, sorted(i for i in changed if any(v is not None for v in wanted[i].values())), now)
    return changed


# --- the card's controls (services/cancel.py, services/delete.py) ---------------------------------------------


def record_cancel(engine: Engine, job_id: int, by: str, state: ModelState | None, now: datetime) -> bool:
    """`by` cancelled the job: the state the service answered (if it moved) and the reply saying who, in one
    transaction; the reply's key makes it told once. False when it was told already or the job is finished."""
    with writing(engine, urgent=True) as conn:
        columns = (jobs.c.status, jobs.c.lifecycle, jobs.c.channel_id, jobs.c.details)
        query = select(*columns).where(jobs.c.id == job_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None or Lifecycle.parse(row.lifecycle).is_terminal:
            return False
        told = select(outbox.c.id).where(outbox.c.job_id == job_id, outbox.c.dedupe_key == CANCEL_KEY)
        if conn.execute(told).first() is not None:
            return False  # (the job row is locked: on PostgreSQL no other cancel is between this and the insert)
        # What the cancel answered beyond the status, when it said anything; else what was last read.
        details = state.details if state is not None and state.details != JobDetails() else None
        price = details.price_usd if details is not None else None
        if price is None:
            price = (row.details or {}).get("price_usd")
        moved = state is not None and (state.status, state.lifecycle.value) != (row.status, row.lifecycle)
        event = CancelRequested(
            by=by,
            at=now,
            price_usd=price,
            status=state.status if moved and state is not None else None,
            lifecycle=state.lifecycle if moved and state is not None else None,
        )
        if not queue(conn, job_id, row.channel_id, CANCEL_KEY, event, now):
            return False
        if state is not None and moved:
            # The tracker's lease is left to the tracker; its compare-and-set on the old status then fails.
            values = {
                k: v
                for k, v in _new_status(state.status, state.lifecycle, now, state.is_terminal, now).items()
                if k not in ("lease_owner", "lease_until")
            }
            values["details"] = details.model_dump(mode="json") if details is not None else row.details
            cas = _cas(job_id, Lifecycle.parse(row.lifecycle), None, status=row.status)
            conn.execute(update(jobs).where(*cas).values(**values))
        return True


def mark_deleted(engine: Engine, job_id: int, by: str, now: datetime, existed: bool) -> bool:
    """A finished job's model was deleted at the service by `by`: the job becomes gone and the reply saying who
    is queued, once (compare-and-set from a finished lifecycle). False if it was gone already."""
    finished = [lc.value for lc in Lifecycle if lc.is_terminal and lc not in (Lifecycle.GONE, Lifecycle.REJECTED)]
    conditions = [jobs.c.id == job_id, jobs.c.lifecycle.in_(finished)]
    values = {"lifecycle": Lifecycle.GONE.value, "updated_at": now, "status_changed_at": now, "tracking": False}
    event = ModelDeleted(by=by, at=now, existed=existed)
    return _change(engine, job_id, conditions, values, now, lambda _c: (DELETED_KEY, event))


# --- the compare-and-set ------------------------------------------------------------------------------------------


def _change(
    engine: Engine, job_id: int, conditions: list[Any], values: dict[str, Any], now: datetime, message: Message
) -> bool:
    """Update the job where `conditions` hold and, only if that changed it, queue `message` in the same
    transaction. False when the row had moved on (or the lease was lost)."""
    with writing(engine) as conn:
        if not conn.execute(update(jobs).where(*conditions).values(**values)).rowcount:
            return False
        key, event = message(conn)
        queue_for_job(conn, job_id, key, event, now)
        return True


def _new_status(
    status: str | None, lifecycle: Lifecycle, now: datetime, stop: bool, next_poll_at: datetime | None
) -> dict[str, Any]:
    """Column values for a status change; `stop` ends the tracking. The lease is released either way."""
    return {
        "status": status,
        "lifecycle": lifecycle.value,
        "updated_at": now,
        "status_changed_at": now,
        "tracking": not stop,
        "finished_at": now if stop else None,
        "next_poll_at": None if stop else next_poll_at,
        "poll_failures": 0,
        "lease_owner": None,
        "lease_until": None,
    }


def _unfollowed(now: datetime) -> dict[str, Any]:
    """Column values for a job no longer followed, its lease released (its status and lifecycle kept)."""
    return {"tracking": False, "next_poll_at": None, "updated_at": now, "lease_owner": None, "lease_until": None}


_ANY: Any = object()


def _cas(job_id: int, lifecycle: Lifecycle, lease_owner: str | None, *, status: str | None = _ANY) -> list[Any]:
    """The row is still where its reader saw it: in `lifecycle` and, when given, exactly at `status`."""
    conditions: list[Any] = [jobs.c.id == job_id, jobs.c.lifecycle == lifecycle.value]
    if status is None:
        conditions.append(jobs.c.status.is_(None))
    elif status is not _ANY:
        conditions.append(jobs.c.status == status)
    if lease_owner is not None:
        conditions.append(jobs.c.lease_owner == lease_owner)
    return conditions

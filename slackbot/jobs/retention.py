"""Retention: finished jobs, and the outbox rows that told them, are deleted once older than `RETENTION_DAYS`.

Runs as its own scheduler job (not inside the tracker's tick), in small batches of one short transaction each
and a bounded number of batches per run, so neither the tracker nor a Slack-facing write waits long behind it;
what a run leaves is taken by the next. Never deleted: a job still followed (`tracking`), or one with an outbox
row not yet delivered (pending or in flight: its reply or card would be lost). A row the notifier gave up on
("dead", logged when it died) does not hold its job back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, exists, func, select

from slackbot.jobs.db import writing
from slackbot.jobs.schema import UNDELIVERED, jobs, outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionConfig:
    days: float = 90.0
    batch_size: int = 200  # jobs per transaction
    max_batches: int = 20  # per run; the rest waits for the next run
    interval_seconds: float = 3600.0


class Retention:
    def __init__(self, engine: Engine, clock: Callable[[], datetime], config: RetentionConfig | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.config = config or RetentionConfig()

    def prune_once(self) -> int:
        """Delete up to `max_batches` batches of expired jobs with their outbox rows; how many jobs went."""
        cfg = self.config
        cutoff = self.clock() - timedelta(days=cfg.days)
        undelivered = exists().where(outbox.c.job_id == jobs.c.id, outbox.c.state.in_(UNDELIVERED))
        # Re-checked by the DELETE itself, so a row that changed since it was picked (e.g. a new reply queued) stays.
        expired = and_(
            jobs.c.tracking.is_(False),
            func.coalesce(jobs.c.finished_at, jobs.c.updated_at) < cutoff,
            ~undelivered,
        )
        pruned = 0
        for _ in range(cfg.max_batches):
            with writing(self.engine) as conn:
                ids = list(
                    conn.execute(select(jobs.c.id).where(expired).order_by(jobs.c.id).limit(cfg.batch_size)).scalars()
                )
                if not ids:
                    break
                gone = list(
                    conn.execute(delete(jobs).where(jobs.c.id.in_(ids), expired).returning(jobs.c.id)).scalars()
                )
                # Their outbox rows (all delivered) go too; the foreign key's cascade would do it, this says so.
                conn.execute(delete(outbox).where(outbox.c.job_id.in_(gone)))
                pruned += len(gone)
            if len(ids) < cfg.batch_size:
                break
        if pruned:
            log.info("pruned finished jobs", extra={"jobs": pruned, "older_than_days": cfg.days})
        return pruned

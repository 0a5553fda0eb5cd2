"""Retention: finished jobs and their delivered outbox rows go after RETENTION_DAYS, in bounded batches, never a
job still followed or one with something left to tell; and it runs on its own timer, not in the tracker's tick."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from slackbot.domain.events import TrackingStarted
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.retention import Retention, RetentionConfig
from slackbot.jobs.scheduler import JobScheduler
from slackbot.jobs.schema import outbox
from slackbot.jobs.store import JobStore
from slackbot.sandbox.waiting import wait_until
from slackbot.settings import Settings, SettingsError, load_settings
from tests.jobs.helpers import T0, Clock, op, spec

OLD = T0 - timedelta(days=100)


def _job(store: JobStore, slug: str, at: datetime, *, finish: str | None = "DEPLOYED", deliver: str = "sent") -> int:
    """A job with its card row, moved to `finish` (None: still followed) at `at`; its rows then `deliver`ed."""
    job = store.create_job(
        team_id="T1",
        channel_id="C1",
        requester_id="U1",
        backend="fake",
        project="p1",
        spec=spec(slug),
        now=at,
        status="TRAINING",
        lifecycle=Lifecycle.RUNNING,
        outbox_event=TrackingStarted(by="U1"),
    )
    if finish is not None:
        assert store.apply_transition(job.id, op("TRAINING"), op(finish), None, at, None, lease_owner=None)
    if deliver != "pending":
        for row in store.claim_deliveries("n1", at, limit=100, lease_seconds=60, job_id=job.id):
            if deliver == "sent":
                assert store.mark_sent(row.id, "1.0", at, owner="n1")
            else:
                assert store.mark_dead(row.id, "channel_not_found", owner="n1")
    return job.id


def _rejected(store: JobStore, slug: str, at: datetime) -> int:
    job = store.create_job(
        team_id="T1", channel_id="C1", requester_id="U1", backend="fake", project="p1", spec=spec(slug), now=at
    )
    assert store.reject(job.id, "Input validation failed", [], at)
    for row in store.claim_deliveries("n1", at, limit=100, lease_seconds=60, job_id=job.id):
        assert store.mark_sent(row.id, "1.0", at, owner="n1")
    return job.id


def _outbox_rows(store: JobStore, job_id: int) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox).where(outbox.c.job_id == job_id)).scalar_one())


def test_prunes_only_old_finished_jobs_with_everything_told_in_bounded_batches(store: JobStore) -> None:
    pruned_ones = [_job(store, "old-done", OLD), _rejected(store, "old-refused", OLD)]
    pruned_ones.append(_job(store, "old-dead-row", OLD, deliver="dead"))  # given up on: nothing left to tell
    pruned_ones += [_job(store, f"old-{i}", OLD) for i in range(7)]
    kept = {
        "still followed": _job(store, "old-training", OLD, finish=None),
        "reply not yet told": _job(store, "old-untold", OLD, deliver="pending"),
        "recent": _job(store, "recent", T0 - timedelta(days=10)),
    }
    retention = Retention(store.engine, Clock(T0), RetentionConfig(days=90, batch_size=4, max_batches=2))
    assert retention.prune_once() == 8  # two batches of four; the rest waits for the next run
    assert retention.prune_once() == 2
    assert retention.prune_once() == 0
    for job_id in pruned_ones:
        assert store.get(job_id) is None and _outbox_rows(store, job_id) == 0
    for why, job_id in kept.items():
        assert store.get(job_id) is not None, why
        assert _outbox_rows(store, job_id) >= 1, why
    # Once the untold reply is delivered, that job goes too.
    for row in store.claim_deliveries("n1", T0, limit=100, lease_seconds=60, job_id=kept["reply not yet told"]):
        assert store.mark_sent(row.id, "2.0", T0, owner="n1")
    assert retention.prune_once() == 1
    assert store.get(kept["reply not yet told"]) is None


def test_retention_runs_on_its_own_timer_while_a_tick_is_stuck() -> None:
    in_tick, release = threading.Event(), threading.Event()
    prunes = 0

    def stuck_tick() -> None:
        in_tick.set()
        release.wait(10)

    def prune() -> None:
        nonlocal prunes
        prunes += 1
        if prunes == 2:
            raise RuntimeError("database briefly unavailable")  # logged; the timer goes on

    scheduler = JobScheduler(stuck_tick, 3600, maintenance=prune, maintenance_interval_seconds=0.02)
    scheduler.start()
    try:
        assert in_tick.wait(5)
        wait_until(lambda: prunes >= 4)
        assert scheduler.ticks == 0  # the tracker's tick is still in progress
    finally:
        release.set()
        scheduler.shutdown()


def test_retention_days_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).retention_days == 90
    monkeypatch.setenv("RETENTION_DAYS", "30")
    assert load_settings(_env_file=None).retention_days == 30
    monkeypatch.setenv("RETENTION_DAYS", "0")
    with pytest.raises(SettingsError, match="RETENTION_DAYS"):
        load_settings(_env_file=None)

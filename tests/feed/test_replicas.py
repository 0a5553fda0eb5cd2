"""Two feed replica PROCESSES on one PostgreSQL database: every notable event is told exactly once, whichever
replica read it, and each ended job gets one final chart."""

from __future__ import annotations

import functools
import json
import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from slackbot.domain.events import FeedEvents, OutboxKind
from slackbot.jobs.db import make_engine, migrate
from slackbot.jobs.schema import job_feeds
from slackbot.jobs.store import JobStore
from tests import replicas
from tests.feed.conftest import move, new_job

JOBS = 20
REPLICAS = 2
STAGES = 4


def _start(db_url: str, log: Path) -> list[subprocess.Popen[str]]:
    workers = [{"db_url": db_url, "log": str(log), "owner": f"feed-r{i}"} for i in range(REPLICAS)]
    return replicas.start("tests.feed.replica_worker", workers)


def _told(store: JobStore, job_id: int) -> list[str]:
    items: list[str] = []
    for row in store.outbox_for_job(job_id):
        if row.kind == OutboxKind.FEED:
            event = row.event
            assert isinstance(event, FeedEvents)
            items += [item.message for item in event.items]
    return items


def _wait(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"replicas did not catch up: {what}")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.postgres
def test_feed_replica_processes_tell_every_event_exactly_once(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    migrate(engine)
    store = JobStore(engine)
    ids = {f"rep-{n}": new_job(store, f"rep-{n}", datetime.now(UTC)).id for n in range(JOBS)}
    log = tmp_path / "log.json"
    state: dict[str, dict[str, list[list[object]]]] = {"events": {}, "points": {}}
    log.write_text(json.dumps(state), "utf-8")
    procs = _start(pg_url, log)
    try:
        for stage in range(1, STAGES + 1):
            for slug in ids:
                events = state["events"].setdefault(slug, [])
                for n in range(3):
                    i = len(events) + 1
                    events.append([f"{slug}-{i}", "checkpoint_save", f"{slug} event {i}", n != 1])  # one routine
                points = state["points"].setdefault(slug, [])
                points += [[len(points) + 1, 1.0 / (len(points) + 1)] for _ in range(10)]
            tmp = log.with_suffix(".tmp")
            tmp.write_text(json.dumps(state), "utf-8")
            tmp.replace(log)  # replicas never read half a file
            want = stage * 2
            _wait(functools.partial(_all_told, store, ids.values(), want), f"stage {stage}")
        for job_id in ids.values():
            move(store, job_id, "completed", datetime.now(UTC))

        def all_done() -> bool:
            with engine.connect() as conn:
                return all(conn.execute(select(job_feeds.c.done)).scalars())

        _wait(all_done, "the final reads")
        time.sleep(0.3)  # a few more ticks: a late duplicate would show up now
    finally:
        summaries = replicas.stop(procs)

    for slug, job_id in ids.items():
        expected = [f"{slug} event {i}" for i in range(1, STAGES * 3 + 1) if i % 3 != 2]
        assert _told(store, job_id) == expected, slug
        charts = {r.dedupe_key: r.state for r in store.outbox_for_job(job_id) if r.kind == OutboxKind.CHART}
        assert charts == {"chart:1": "dead", "chart:final": "pending"}, charts  # nobody delivered: superseded
    told_rows = sum(1 for job_id in ids.values() for r in store.outbox_for_job(job_id) if r.kind == OutboxKind.FEED)
    assert sum(s["replies"] for s in summaries) == told_rows
    assert all(s["claimed"] > 0 for s in summaries), summaries  # the work was shared
    assert sum(s["errors"] for s in summaries) == 0
    engine.dispose()


def _all_told(store: JobStore, job_ids: Iterable[int], want: int) -> bool:
    return all(len(_told(store, i)) >= want for i in job_ids)

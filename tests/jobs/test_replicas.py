"""Several tracker PROCESSES on one database: every (job, status) is told exactly once and none is missed."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.jobs.db import make_engine
from slackbot.jobs.schema import jobs
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitRequest, SubmitService
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from tests import replicas

KEY = "opk_replicas_secret"
JOBS = 50
REPLICAS = 2


def _start_workers(db_url: str, api: LocalOpenPipe) -> list[subprocess.Popen[str]]:
    workers = [
        {"db_url": db_url, "openpipe_url": api.url, "api_key": KEY, "owner": f"r{i}", "batch_limit": 10}
        for i in range(REPLICAS)
    ]
    return replicas.start("tests.jobs.replica_worker", workers)


def _wait_for(store: JobStore, statuses: dict[int, str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with store.engine.connect() as conn:
            current = {row.id: row.status for row in conn.execute(select(jobs.c.id, jobs.c.status))}
        behind = {i: current.get(i) for i, status in statuses.items() if current.get(i) != status}
        if not behind:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"replicas did not catch up: {behind}")
        time.sleep(0.1)


@pytest.mark.slow
def test_replica_processes_report_every_transition_exactly_once(db_url: str) -> None:
    api = LocalOpenPipe(KEY, clock=ManualClock(datetime(2026, 7, 1, tzinfo=UTC).timestamp())).start()
    procs = _start_workers(db_url, api)  # they migrate the empty database concurrently
    engine = make_engine(db_url)
    try:
        store = JobStore(engine)
        backend = OpenPipeBackend(SecretStr(KEY), api.url, timeout=5)
        service = SubmitService(store, backend, lambda _id: None, lambda: datetime.now(UTC), poll_interval_seconds=0.05)
        dataset = api.add_dataset("replicas", 100)
        ids = []
        for n in range(JOBS):
            spec = openpipe_spec(
                dataset_id=dataset,
                slug=f"replica-{n}",
                provider=Provider.OPENPIPE,
                base_model="meta-llama/Meta-Llama-3.1-8B-Instruct",
            )
            outcome = service.submit(SubmitRequest("T1", "U1", "C1", None, spec, "replicas", 100, {}, f"v{n}"))
            assert outcome.created and outcome.error is None
            ids.append(outcome.job.id)
        backend.close()
        # Each step is held until every job shows it, so no status can be skipped by timing: a missing
        # row below is a lost transition, not a fast model.
        final = {i: ("ERROR" if n % 5 == 0 else "DEPLOYED") for n, i in enumerate(ids)}
        for step in ("QUEUED", "PROVISIONING", "TRAINING", "FINAL"):
            for n, job_id in enumerate(ids):
                status = final[job_id] if step == "FINAL" else step
                if status == "ERROR":
                    api.fail_model(f"replica-{n}", "out of memory")
                else:
                    api.set_status(f"replica-{n}", status)
            expected = {i: (final[i] if step == "FINAL" else step) for i in ids}
            _wait_for(store, expected)
        time.sleep(0.3)  # a few more ticks: a late duplicate would show up now
    finally:
        summaries = replicas.stop(procs)
        api.stop()

    for job_id in ids:
        job = store.get(job_id)
        assert job is not None and not job.tracking
        keys = [r.dedupe_key for r in store.outbox_for_job(job_id)]
        assert keys == ["card:post", "reply:QUEUED", "reply:PROVISIONING", "reply:TRAINING", f"reply:{final[job_id]}"]
    engine.dispose()
    # Each successful compare-and-set wrote one row; the replicas together made exactly that many.
    assert sum(s["transitions"] for s in summaries) == JOBS * 4
    assert all(s["transitions"] > 0 for s in summaries), summaries  # the work was shared
    assert sum(s["errors"] for s in summaries) == 0
    # One GET /models per replica tick with due jobs; the list held every model, so no per-model GETs.
    list_calls = sum(1 for r in api.requests if r.method == "GET" and r.path == "/models")
    assert list_calls == sum(s["requests"] for s in summaries)
    assert not any(r.method == "GET" and r.path.startswith("/models/") for r in api.requests)

"""One tracker replica in its own process, for test_replicas.py: `python -m tests.jobs.replica_worker '<json>'`.

Migrates (concurrently with the other replicas), prints "ready", ticks on a JobScheduler until SIGTERM, then
waits for the tick in progress and prints a JSON summary of what it did.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.jobs.db import make_engine, migrate
from slackbot.jobs.scheduler import JobScheduler, guarded
from slackbot.jobs.store import JobStore
from slackbot.jobs.tracker import Tracker, TrackerConfig


def main() -> None:
    args = json.loads(sys.argv[1])
    engine = make_engine(args["db_url"])
    migrate(engine)
    backend = OpenPipeBackend(SecretStr(args["api_key"]), args["openpipe_url"], timeout=5, max_attempts=2)
    config = TrackerConfig(
        interval_seconds=0.05,
        max_interval_seconds=0.2,
        max_age=timedelta(hours=1),
        lease_seconds=10,
        batch_limit=args["batch_limit"],
        # Small ticks, so that both replicas really share the jobs (and race on them).
        max_jobs_per_tick=args["batch_limit"],
    )
    tracker = Tracker(JobStore(engine), [backend], args["owner"], lambda: datetime.now(UTC), config)
    totals = {"ticks": 0, "claimed": 0, "requests": 0, "transitions": 0, "lost": 0, "errors": 0}
    lock = threading.Lock()

    def poll() -> None:
        report = tracker.poll_once()
        with lock:
            totals["ticks"] += 1
            totals["claimed"] += report.claimed
            totals["requests"] += report.requests
            totals["transitions"] += len(report.transitions)
            totals["lost"] += report.lost
            totals["errors"] += len(report.errors)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler = JobScheduler(guarded(("tracker", poll)), 0.05)
    scheduler.start()
    print("ready", flush=True)
    stop.wait(120)
    scheduler.shutdown(wait=True)
    backend.close()
    engine.dispose()
    print(json.dumps(totals), flush=True)


if __name__ == "__main__":
    main()

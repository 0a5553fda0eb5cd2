"""One tracker replica in its own process, for test_replicas.py: `python -m tests.jobs.replica_worker '<json>'`.

Migrates (concurrently with the other replicas), then ticks until SIGTERM (`tests.replicas.serve`: "ready" first,
a JSON summary of what it did last).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.jobs.db import make_engine, migrate
from slackbot.jobs.store import JobStore
from slackbot.jobs.tracker import TickReport, Tracker, TrackerConfig
from tests.replicas import serve


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

    counts: dict[str, Callable[[TickReport], int]] = {
        "claimed": lambda r: r.claimed,
        "requests": lambda r: r.requests,
        "transitions": lambda r: len(r.transitions),
        "lost": lambda r: r.lost,
        "errors": lambda r: len(r.errors),
    }
    serve("tracker", tracker.poll_once, counts)
    backend.close()
    engine.dispose()


if __name__ == "__main__":
    main()

"""One feed replica in its own process, for test_replicas.py: `python -m tests.feed.replica_worker '<json>'`.

Its backend reads the event log and metrics from a JSON file the test grows, so every replica sees the same
service. Follows feeds until SIGTERM (`tests.replicas.serve`: "ready" first, a JSON summary last).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slackbot.backends.base import JobEvent, MetricPoint
from slackbot.backends.registry import registered
from slackbot.jobs.db import make_engine, migrate
from slackbot.jobs.feed import FeedConfig, FeedFollower, FeedReport
from tests.feed.backend import FEEDTOY, FeedBackend
from tests.replicas import serve


class FileBackend(FeedBackend):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _read(self) -> dict[str, dict[str, list[list[Any]]]]:
        data: dict[str, dict[str, list[list[Any]]]] = json.loads(self.path.read_text("utf-8"))
        return data

    def events(self, slug: str) -> list[JobEvent]:
        rows = self._read()["events"].get(slug, [])
        return [JobEvent(key=str(k), kind=str(kind), message=str(m), notable=bool(n)) for k, kind, m, n in rows]

    def metrics(self, slug: str, *, after_step: int | None = None) -> list[MetricPoint]:
        rows = self._read()["points"].get(slug, [])
        points = [MetricPoint(step=int(s), train_loss=float(t)) for s, t in rows]
        return [p for p in points if after_step is None or p.step > after_step]


def main() -> None:
    args = json.loads(sys.argv[1])
    engine = make_engine(args["db_url"])
    migrate(engine)
    config = FeedConfig(
        events_interval_seconds=0.05,
        chart_interval_seconds=0.2,
        lease_seconds=10,
        # Small ticks, so that both replicas really share the feeds (and race on them).
        batch_limit=5,
        max_jobs_per_tick=5,
    )
    with registered(FEEDTOY):
        follower = FeedFollower(
            engine, [FileBackend(Path(args["log"]))], args["owner"], lambda: datetime.now(UTC), config
        )

        counts: dict[str, Callable[[FeedReport], int]] = {
            "claimed": lambda r: r.claimed,
            "replies": lambda r: r.replies,
            "charts": lambda r: r.charts,
            "lost": lambda r: r.lost,
            "errors": lambda r: len(r.errors),
        }
        serve("feed", follower.poll_once, counts)
    engine.dispose()


if __name__ == "__main__":
    main()

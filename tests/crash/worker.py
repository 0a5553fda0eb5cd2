"""A bot worker process for the crash tests: store + tracker + notifier + scheduler, with failpoints.

Run as a script by tests/crash/test_restarts.py against the test's database (CRASH_DATABASE_URL: a SQLite file,
or a PostgreSQL URL whose search_path names the test's own schema) and the LocalOpenPipe / LocalSlack the test
process serves. `SLACKBOT_FAILPOINT=<name>:<n>` SIGKILLs this process the n-th time it reaches <name>:
the failpoints live here, in wrappers around the real components, so production code carries no test hooks.

Failpoints: after_claim_due, after_transition, after_claim_deliveries (mid-tick: rows in flight, nothing sent),
before_slack_post, after_slack_post (Slack accepted it, nothing recorded), after_card_update,
after_record_card (card recorded, row not marked sent), after_mark_sent.

The process imports everything, then waits for a line on stdin before it starts: the test keeps one such
warm spare ready, so a restart after a kill costs no interpreter start-up.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.delivery.notifier import Notifier, NotifierConfig
from slackbot.jobs.db import make_engine
from slackbot.jobs.records import DueJob, OutboxRecord
from slackbot.jobs.scheduler import JobScheduler, guarded
from slackbot.jobs.store import JobStore
from slackbot.jobs.tracker import Tracker, TrackerConfig


class Failpoint:
    def __init__(self, spec: str | None) -> None:
        self.name, _, count = (spec or "").partition(":")
        self.at = int(count or 1)
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()

    def reach(self, name: str) -> None:
        with self.lock:
            self.seen[name] += 1
            if name == self.name and self.seen[name] == self.at:
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)


class FailingStore(JobStore):
    def __init__(self, engine: Any, failpoint: Failpoint) -> None:
        super().__init__(engine)
        self.failpoint = failpoint

    def claim_due(self, owner: str, now: datetime, limit: int, lease_seconds: float) -> list[DueJob]:
        claimed = super().claim_due(owner, now, limit, lease_seconds)
        if claimed:
            self.failpoint.reach("after_claim_due")
        return claimed

    def apply_transition(self, *args: Any, **kwargs: Any) -> bool:
        changed = super().apply_transition(*args, **kwargs)
        if changed:
            self.failpoint.reach("after_transition")
        return changed

    def claim_deliveries(
        self, owner: str, now: datetime, limit: int, lease_seconds: float, **kwargs: Any
    ) -> list[OutboxRecord]:
        rows = super().claim_deliveries(owner, now, limit, lease_seconds, **kwargs)
        if rows:
            self.failpoint.reach("after_claim_deliveries")
        return rows

    def record_card(self, job_id: int, channel_id: str, ts: str, thread_ts: str | None = None) -> None:
        super().record_card(job_id, channel_id, ts, thread_ts)
        self.failpoint.reach("after_record_card")

    def mark_sent(self, outbox_id: int, ts: str | None, now: datetime, *, owner: str) -> bool:
        marked = super().mark_sent(outbox_id, ts, now, owner=owner)
        self.failpoint.reach("after_mark_sent")
        return marked


class FailingWebClient(WebClient):
    failpoint: Failpoint

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        if api_method == "chat.postMessage":
            self.failpoint.reach("before_slack_post")
        response = super().api_call(api_method, **kwargs)
        if api_method == "chat.postMessage":
            self.failpoint.reach("after_slack_post")
        elif api_method == "chat.update":
            self.failpoint.reach("after_card_update")
        return response


def main() -> None:
    # Started ahead of need as a warm spare (imports done): begin only when the test says "go" on stdin.
    if not sys.stdin.readline():
        return
    env = os.environ
    failpoint = Failpoint(env.get("SLACKBOT_FAILPOINT"))
    owner = f"worker-{os.getpid()}"
    store = FailingStore(make_engine(env["CRASH_DATABASE_URL"]), failpoint)
    web = FailingWebClient(token=env["CRASH_SLACK_TOKEN"], base_url=env["CRASH_SLACK_URL"], timeout=5)
    web.failpoint = failpoint
    backend = OpenPipeBackend(
        SecretStr(env["CRASH_OPENPIPE_KEY"]), env["CRASH_OPENPIPE_URL"], timeout=5, max_attempts=2
    )

    def clock() -> datetime:
        return datetime.now(UTC)

    lease = float(env.get("CRASH_LEASE_SECONDS", "1.0"))
    tracker = Tracker(
        store,
        [backend],
        owner,
        clock,
        TrackerConfig(interval_seconds=0.05, max_interval_seconds=0.1, lease_seconds=lease),
    )
    notifier = Notifier(
        store,
        web,
        owner,
        clock,
        NotifierConfig(
            post_interval_seconds=0.05, lease_seconds=lease, backoff_base_seconds=0.1, backoff_max_seconds=0.5
        ),
    )
    scheduler = JobScheduler(
        guarded(("tracker", tracker.poll_once), ("notifier", notifier.deliver_due)),
        interval_seconds=0.03,
        jitter_seconds=0,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler.start()
    print("ready", flush=True)
    stop.wait()
    scheduler.shutdown(wait=True)


if __name__ == "__main__":
    main()

"""Restart tests with real processes: a worker is SIGKILLed at chosen points (and at random) and restarted.

Whatever point it dies at, every job's thread must end up with its card and exactly one reply per transition,
in order. The OpenPipe stand-in's clock is moved one status step at a time, and only once everything queued
so far has been delivered, so every status is seen and must be told.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.delivery.notifier import METADATA_EVENT
from slackbot.jobs.db import make_engine, migrate
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitRequest, SubmitService
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("worker.py")
SLACK_TOKEN = "xoxb-crash-test"
OPENPIPE_KEY = "opk_crash_test_key"
CHANNEL = "C0GENERAL"
REPLIES = ("QUEUED", "PROVISIONING", "TRAINING", "DEPLOYED")
STEP = 60.0


@dataclass
class World:
    tmp: Path
    slack: LocalSlack
    openpipe: LocalOpenPipe
    openpipe_clock: ManualClock
    store: JobStore
    db_url: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, failpoint: str | None = None) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "CRASH_DATABASE_URL": self.db_url,
            "CRASH_SLACK_URL": self.slack.url,
            "CRASH_SLACK_TOKEN": SLACK_TOKEN,
            "CRASH_OPENPIPE_URL": self.openpipe.url,
            "CRASH_OPENPIPE_KEY": OPENPIPE_KEY,
            "CRASH_LEASE_SECONDS": "0.5",
        }
        env.pop("SLACKBOT_FAILPOINT", None)
        if failpoint:
            env["SLACKBOT_FAILPOINT"] = failpoint
        with (self.tmp / f"worker-{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, str(WORKER)], env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def go(self, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        return proc

    def submit(self, slug: str) -> int:
        backend = OpenPipeBackend(SecretStr(OPENPIPE_KEY), self.openpipe.url, timeout=5, max_attempts=2)
        dataset = self.openpipe.add_dataset(f"data-{slug}", 50)
        service = SubmitService(
            self.store, backend, deliver_now=lambda _job_id: None, clock=_now, poll_interval_seconds=0.1
        )
        spec = openpipe_spec(
            dataset_id=dataset,
            slug=slug,
            provider=Provider.OPENPIPE,
            base_model="meta-llama/Meta-Llama-3.1-8B-Instruct",
        )
        outcome = service.submit(
            SubmitRequest(
                team_id="T0LOCAL",
                user_id="U0ALICE",
                channel_id=CHANNEL,
                thread_ts=None,
                spec=spec,
                dataset_name=f"data-{slug}",
                dataset_entries=50,
            )
        )
        assert outcome.error is None and outcome.job.status == "PENDING"
        backend.close()
        return outcome.job.id

    def settled(self, job_ids: list[int]) -> bool:
        """Every job shows the service's current status and all its messages are out."""
        for job_id in job_ids:
            job = self.store.get(job_id)
            assert job is not None
            if job.status != self.openpipe.model(job.slug)["openpipe"]["status"]:
                return False
            if any(row.state != "sent" for row in self.store.outbox_for_job(job_id)):
                return False
        return True

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("worker-*.log")))


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    """Slack, OpenPipe and a migrated database; `db_url` (a SQLite file or a fresh PostgreSQL schema, its
    search_path in the URL) is handed to every worker process, so each test's workers share only its database."""
    slack = LocalSlack(bot_token=SLACK_TOKEN, post_rate_per_channel=20.0, burst=5).start()
    openpipe_clock = ManualClock(1_780_000_000.0)
    openpipe = LocalOpenPipe(api_key=OPENPIPE_KEY, clock=openpipe_clock, step_seconds=STEP).start()
    engine = make_engine(db_url)
    migrate(engine)
    w = World(tmp_path, slack, openpipe, openpipe_clock, JobStore(engine), db_url)
    try:
        yield w
    finally:
        for proc in w.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            if proc.stdin is not None:
                proc.stdin.close()
        engine.dispose()
        openpipe.stop()
        slack.stop()


def drive(world: World, job_ids: list[int], failpoints: list[str], *, random_kills: int = 0) -> int:
    """Move every job to DEPLOYED, restarting the worker whenever it dies; returns how many times it died.

    The n-th worker runs with `failpoints[n]` (none once they are used up); with `random_kills`, the test
    also SIGKILLs workers itself at random moments.
    """
    rng = random.Random(1234)

    def failpoint(n: int) -> str | None:
        return failpoints[n] if n < len(failpoints) else None

    # A restart is the next spare, already started and imported, told to go: restarts cost no start-up time.
    worker = world.go(world.spawn(failpoint(0)))
    spare = world.spawn(failpoint(1))
    deaths = 0
    kill_at = time.monotonic() + rng.uniform(0.3, 1.0) if random_kills else None
    deadline = time.monotonic() + 100
    while True:
        assert time.monotonic() < deadline, "jobs did not finish in time\n" + world.logs()
        if worker.poll() is not None:
            assert worker.returncode == -signal.SIGKILL, f"worker exited with {worker.returncode}\n{world.logs()}"
            deaths += 1
            worker, spare = world.go(spare), world.spawn(failpoint(deaths + 1))
            if kill_at is not None and deaths < random_kills:
                kill_at = time.monotonic() + rng.uniform(0.3, 1.5)
            else:
                kill_at = None
        elif kill_at is not None and time.monotonic() >= kill_at:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            continue
        if world.settled(job_ids):
            statuses = {world.openpipe.model(s)["openpipe"]["status"] for s in _slugs(world, job_ids)}
            if statuses == {"DEPLOYED"} and kill_at is None and deaths >= len(failpoints):
                break
            if statuses != {"DEPLOYED"}:
                world.openpipe_clock.advance(STEP)
        time.sleep(0.02)
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=15)
    spare.kill()
    return deaths


def _slugs(world: World, job_ids: list[int]) -> list[str]:
    return [job.slug for job in (world.store.get(i) for i in job_ids) if job is not None]


def assert_told_exactly_once(world: World, job_ids: list[int]) -> None:
    messages = world.slack.messages(CHANNEL)
    delivered = [m["metadata"]["event_payload"]["outbox_id"] for m in messages if m.get("metadata")]
    assert len(delivered) == len(set(delivered)), "an outbox row was posted twice"
    for job_id in job_ids:
        job = world.store.get(job_id)
        assert job is not None and job.card_ts is not None and job.status == "DEPLOYED"
        cards = [m for m in messages if m["thread_ts"] is None and f"Fine-tune {job.slug}:" in m["text"]]
        assert len(cards) == 1 and cards[0]["ts"] == job.card_ts
        assert cards[0]["text"] == f"Fine-tune {job.slug}: Deployed"
        thread = world.slack.thread(CHANNEL, job.card_ts)
        said = [m["text"].split(": ", 1)[1].split(" —")[0] for m in thread]
        expected = ["Queued", "Provisioning", "Training started", "Deployed"]
        assert said == expected, f"{job.slug}: {said}"
        assert all(m["metadata"]["event_type"] == METADATA_EVENT for m in thread)
        rows = world.store.outbox_for_job(job_id)
        assert [r.dedupe_key for r in rows] == ["card:post", *(f"reply:{s}" for s in REPLIES)]
        assert all(r.state == "sent" for r in rows)
        assert [r.sent_ts for r in rows] == [cards[0]["ts"], *(m["ts"] for m in thread)]


# Each chain is one life of two jobs; the worker is killed at each point in turn (the count is per process).
CHAINS = {
    "told-but-not-recorded": [
        "after_slack_post:1",  # Slack took the card, nothing recorded
        "after_record_card:1",  # the card recorded (after reconciling it), its row not marked sent
        "after_transition:1",  # a status changed, nothing told yet
        "after_slack_post:2",  # Slack took a reply, nothing recorded
    ],
    "mid-tick": [
        "after_claim_due:2",  # jobs leased for polling
        "after_claim_deliveries:1",  # outbox rows claimed, nothing sent
        "before_slack_post:2",
        "after_card_update:2",  # the card shows the new status, the reply not posted
    ],
}


@pytest.mark.parametrize("chain", list(CHAINS))
def test_killed_at_failpoints_tells_every_transition_once(world: World, chain: str) -> None:
    job_ids = [world.submit("crash-a"), world.submit("crash-b")]
    failpoints = CHAINS[chain]
    deaths = drive(world, job_ids, failpoints)
    assert deaths == len(failpoints), f"not every failpoint was reached\n{world.logs()}"
    assert_told_exactly_once(world, job_ids)


def test_random_kills_tell_every_transition_once(world: World) -> None:
    job_ids = [world.submit(f"rand-{i}") for i in range(3)]
    deaths = drive(world, job_ids, [], random_kills=4)
    assert deaths == 4
    assert_told_exactly_once(world, job_ids)

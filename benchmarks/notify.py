"""Notification delay: a status change at the local service (OpenPipe, then Together) → the thread reply at the
local Slack, in real time.

The bot's Runtime runs for real (APScheduler ticking the tracker and the notifier every `INTERVAL` seconds,
SQLite, the service's backend over HTTP, a slack_sdk WebClient), and so do the stand-ins, all on the wall clock:
LocalSlack stamps each call with time.time(), so delays are read off its call log. Together's jobs are created at
its stand-in directly (the create alone, as in polling.py: setup, not measured) and followed by their id.

Scale runs: N jobs followed; a few "watched" jobs, each with its card in its own channel, change status at
random moments after a warm-up. Burst run: 50 jobs with cards in one channel change at once; the replies'
chat.postMessage timestamps at LocalSlack must be ≥ 1 s apart per channel, with no 429.
"""

from __future__ import annotations

import itertools
import random
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import func, select

from benchmarks.common import TOGETHER_KEY, Section, WallClock, percentile, ratio, spec, together_spec, utcnow
from slackbot.backends.base import FineTuneSpec, ModelState
from slackbot.backends.together.backend import TogetherBackend, to_state
from slackbot.backends.together.fields import to_create_request
from slackbot.blocks.card import status_card
from slackbot.demo import BOT_TOKEN, OPENPIPE_KEY, SIGNING_SECRET
from slackbot.jobs.records import JobRecord
from slackbot.jobs.schema import jobs as jobs_table
from slackbot.runtime import Runtime
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.together_api import LocalTogether
from slackbot.settings import Settings

INTERVAL = 1.0  # scheduler tick (POLL_INTERVAL_SECONDS); the tracker then polls a still job every 1 to 4 s
WATCHED = 10
WINDOW = 5 * INTERVAL  # the watched jobs change at random moments within this window
BURST = 50
SERVICES = ("openpipe", "together")
NAMES = {"openpipe": "OpenPipe", "together": "Together"}


@dataclass
class Bench:
    runtime: Runtime
    service: LocalOpenPipe | LocalTogether
    slack: LocalSlack
    dataset_id: str
    replicas: list[Runtime]  # `runtime` and any others sharing its database

    def create(self, slug: str) -> ModelState:
        backend = self.runtime.backend
        if isinstance(backend, TogetherBackend):
            # The create alone (the backend's own also estimates the price first).
            return to_state(backend.client.create_job(to_create_request(self.spec(slug))))
        return backend.create(self.spec(slug))

    def spec(self, slug: str) -> FineTuneSpec:
        if isinstance(self.service, LocalTogether):
            return together_spec(slug, self.dataset_id)
        return spec(slug, self.dataset_id)

    def change(self, job: JobRecord) -> None:
        """The job starts training at the service."""
        if isinstance(self.service, LocalTogether):
            assert job.model_id is not None
            self.service.set_status(job.model_id, "running")
        else:
            self.service.set_status(job.slug, "TRAINING")


@contextmanager
def _bench(tmp: Path, replicas: int = 1, service: str = "openpipe") -> Iterator[Bench]:
    # The local service runs on the wall clock and no status moves alone (step_seconds=1e9).
    local: LocalOpenPipe | LocalTogether
    keys: dict[str, Any]
    if service == "together":
        local = LocalTogether(TOGETHER_KEY, clock=WallClock(), step_seconds=1e9).start()
        keys = {"openpipe_api_key": None, "together_api_key": TOGETHER_KEY, "together_base_url": local.url}
        keys["together_timeout_seconds"] = 30.0
    else:
        local = LocalOpenPipe(OPENPIPE_KEY, clock=WallClock(), step_seconds=1e9).start()
        keys = {"openpipe_api_key": OPENPIPE_KEY, "openpipe_base_url": local.url, "openpipe_timeout_seconds": 30.0}
    slack = LocalSlack(bot_token=BOT_TOKEN, clock=WallClock()).start()
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.url,
        **keys,
        "database_url": f"sqlite:///{tmp / 'bot.db'}",
        "poll_interval_seconds": INTERVAL,
    }
    settings = Settings(_env_file=None, **values)
    # Replicas: each its own Runtime (tracker, notifier, pacer, clients) on the one database, as processes would be.
    runtimes = [Runtime.build(settings, clock=utcnow) for _ in range(replicas)]
    try:
        if isinstance(local, LocalTogether):
            backend = runtimes[0].backend
            assert isinstance(backend, TogetherBackend)
            dataset = backend.client.list_files().fine_tune_files()[0].id
        else:
            dataset = local.add_dataset("bench dataset", entries=1000)
        yield Bench(runtimes[0], local, slack, dataset, runtimes)
    finally:
        for runtime in runtimes:
            runtime.stop()
        slack.stop()
        local.stop()


def _follow(b: Bench, slugs: list[str], channel: str | None) -> list[JobRecord]:
    """Create the jobs at the service and follow them; with a channel, give each a real card there."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        states = list(pool.map(b.create, slugs))
    poster = WebClient(token=BOT_TOKEN, base_url=b.slack.url)
    jobs = []
    for slug, state in zip(slugs, states, strict=True):
        now = utcnow()
        job = b.runtime.store.create_job(
            team_id=b.slack.team_id,
            channel_id=channel or "C0GENERAL",
            requester_id="U0ALICE",
            backend=b.runtime.backend.name,
            project=b.runtime.backend.project,
            spec=b.spec(slug),
            now=now,
            status=state.status,
            lifecycle=state.lifecycle,
            model_id=state.id,
        )
        if channel is not None:
            text, blocks = status_card(job, now)
            ts = str(poster.chat_postMessage(channel=channel, text=text, blocks=blocks)["ts"])
            b.runtime.store.record_card(job.id, channel, ts)
        jobs.append(job)
    return jobs


def _replies(b: Bench, channel: str) -> list[tuple[float, int]]:
    """(time, HTTP status) of every threaded chat.postMessage in `channel`, in arrival order."""
    return [
        (c.at, c.status)
        for c in b.slack.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and c.args.get("thread_ts")
    ]


def _wait(b: Bench, channels: list[str], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len([r for r in _replies(b, ch) if r[1] == 200]) >= count for ch in channels):
            return
        time.sleep(0.05)


@dataclass
class Delays:
    total: list[float]
    detect: list[float]  # change → the tracker's tick that recorded it
    missing: int


def _warm_up(b: Bench, timeout: float = 300.0) -> None:
    """Start ticking; return once every job was polled at least once and at least 10 ticks went by, so that
    still jobs have reached the tracker's slowest interval (4 ticks) — the steady state."""
    began = utcnow()
    for runtime in b.replicas:
        runtime.start()
    time.sleep(INTERVAL * 10)
    deadline = time.monotonic() + timeout
    query = select(func.min(jobs_table.c.next_poll_at)).where(jobs_table.c.tracking.is_(True))
    while time.monotonic() < deadline:
        with b.runtime.engine.connect() as conn:
            oldest = conn.execute(query).scalar_one()
        if oldest is not None and oldest.replace(tzinfo=began.tzinfo) > began:
            return
        time.sleep(INTERVAL)
    raise RuntimeError("the tracker did not poll every job once in time")


def _scale(n: int, rng: random.Random, service: str = "openpipe") -> Delays:
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp, _bench(Path(tmp), service=service) as b:
        channels = [f"C0W{i:02d}" for i in range(WATCHED)]
        watched = []
        for channel in channels:
            b.slack.add_channel(channel, channel.lower())
            watched += _follow(b, [f"watch-{n}-{channel.lower()}"], channel)
        _follow(b, [f"quiet-{n}-{i:05d}" for i in range(n - WATCHED)], None)
        _warm_up(b)
        changed_at = {}
        start = time.time()
        for job, offset in sorted(
            zip(watched, (rng.uniform(0, WINDOW) for _ in watched), strict=True), key=lambda p: p[1]
        ):
            time.sleep(max(0.0, start + offset - time.time()))
            b.change(job)
            changed_at[job.id] = time.time()
        _wait(b, channels, 1, timeout=180)
        delays = Delays([], [], 0)
        for job, channel in zip(watched, channels, strict=True):
            got = _replies(b, channel)
            row = b.runtime.store.get(job.id)
            if not got or row is None:
                delays.missing += 1
                continue
            delays.total.append(got[0][0] - changed_at[job.id])
            delays.detect.append(row.status_changed_at.timestamp() - changed_at[job.id])
        return delays


@dataclass
class Burst:
    gaps: list[float]
    rate_limited: int
    delivered: int
    drain_seconds: float


def _burst(replicas: int) -> Burst:
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp, _bench(Path(tmp), replicas) as b:
        channel = "C0BURST"
        b.slack.add_channel(channel, "burst")
        b.slack.workspace.post_rate = None  # the 50 cards are setup, not measured: post them unpaced
        jobs = _follow(b, [f"burst-{i:02d}" for i in range(BURST)], channel)
        b.slack.workspace.post_rate = 1.0
        _warm_up(b)
        t0 = time.time()
        for job in jobs:
            b.change(job)
        _wait(b, [channel], BURST, timeout=BURST * 3 + 30)
        replies = _replies(b, channel)
        ok = sorted(at for at, status in replies if status == 200)
        return Burst(
            gaps=[later - earlier for earlier, later in itertools.pairwise(ok)],
            rate_limited=sum(1 for _, status in replies if status == 429),
            delivered=len(ok),
            drain_seconds=(ok[-1] - t0) if ok else float("nan"),
        )


def run(quick: bool) -> list[Section]:
    rng = random.Random(7)
    scales = (10, 100, 1_000) if quick else (10, 100, 1_000, 10_000)
    section = Section(
        f"Notification delay (status change at the service → thread reply at Slack; real-time tick {INTERVAL:g} s)",
        [
            "service",
            "jobs",
            "delay p50 / max",
            "of which detection p50 / max",
            "p50 in ticks",
            "p50 vs 10 jobs",
            "missing",
        ],
    )
    for service in SERVICES:
        base = None
        for n in scales:
            started = time.perf_counter()
            d = _scale(n, rng, service)
            print(f"  notify {service}: {n} jobs in {time.perf_counter() - started:.0f} s", flush=True)
            p50 = percentile(d.total, 50)
            base = base if base is not None else p50
            section.rows.append(
                [
                    NAMES[service],
                    f"{n:,}",
                    f"{p50:.2f} / {max(d.total, default=float('nan')):.2f} s",
                    f"{percentile(d.detect, 50):.2f} / {max(d.detect, default=float('nan')):.2f} s",
                    f"{p50 / INTERVAL:.1f}",
                    ratio(p50, base),
                    str(d.missing),
                ]
            )
    section.notes += [
        f"{WATCHED} watched jobs (cards in {WATCHED} channels) change status at random times in a {WINDOW:g} s "
        "window, after a warm-up (≥ 10 ticks and every job polled once); the other jobs stay still.",
        "Detection = change → start of the tracker tick that recorded it (the job row's status_changed_at); "
        "the rest of the delay is delivery.",
        "Baselines: the tick interval (a tick-driven poller cannot beat half a tick to one tick) and the 10-job run.",
        "Together: the same method against the local Together (jobs created at it directly and followed by their "
        "id; the change is pending → running; one GET /fine-tunes per tick for the account).",
    ]
    burst_section = Section(
        f"Burst: {BURST} jobs in one channel change at once (tick {INTERVAL:g} s)",
        [
            "replicas",
            "replies delivered",
            "min gap between posts",
            "gap p50",
            "429s at LocalSlack",
            "all delivered after",
        ],
        notes=[
            "Gaps are between the chat.postMessage calls LocalSlack accepted in the channel (its own timestamps); "
            "LocalSlack allows 1 post/s per channel and answers 429 beyond.",
            "2 replicas: two Runtimes (each with its tracker, notifier and scheduler) on one SQLite database, both "
            "delivering to the channel; they share its pace through the database (delivery/pacing.py).",
        ],
    )
    for replicas in (1, 2):
        started = time.perf_counter()
        burst = _burst(replicas)
        print(f"  notify: burst with {replicas} replica(s) in {time.perf_counter() - started:.0f} s", flush=True)
        burst_section.rows.append(
            [
                str(replicas),
                f"{burst.delivered} / {BURST}",
                f"{min(burst.gaps, default=float('nan')):.3f} s",
                f"{percentile(burst.gaps, 50):.3f} s",
                str(burst.rate_limited),
                f"{burst.drain_seconds:.1f} s",
            ]
        )
    return [section, burst_section]

"""Polling cost: the real Tracker (one list read per project per tick: OpenPipe's GET /models, Together's
GET /fine-tunes) against a naive per-job poller.

The naive poller is the same Tracker with a backend whose `refresh` reads each job on its own (GET /models/{slug},
GET /fine-tunes/{id}), so both do identical database work (claim, reschedule) and differ only in how they ask the
service. The local services run in a child process, so tracemalloc's peak is the bot's memory alone.

A "sweep" polls every followed job once: the clock jumps past every job's next poll, then ticks run until a
tick claims nothing. Requests and bytes are counted on the bot's side (an httpx event hook).
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
import tracemalloc
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
from pydantic import SecretStr

from benchmarks.common import TOGETHER_KEY, Section, percentile, ratio, spec, together_spec
from slackbot.backends.base import Backend, ModelState, NotFoundError
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.together.backend import TogetherBackend, to_state
from slackbot.backends.together.fields import to_create_request
from slackbot.demo import OPENPIPE_KEY, BotClock
from slackbot.jobs.db import make_engine, migrate
from slackbot.jobs.store import JobStore
from slackbot.jobs.tracker import Tracker, TrackerConfig
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.together_api import LocalTogether

INTERVAL = 30.0  # the production default (POLL_INTERVAL_SECONDS); Runtime derives the rest as below
CONFIG = TrackerConfig(interval_seconds=INTERVAL, max_interval_seconds=INTERVAL * 4, lease_seconds=INTERVAL * 4)


def _serve(conn: Connection, service: str) -> None:
    """Child process: a local service whose jobs never move on their own (a frozen clock)."""
    clock = ManualClock(start=time.time())
    if service == "together":
        together = LocalTogether(TOGETHER_KEY, clock=clock, step_seconds=1e9).start()
        conn.send((together.url, together.add_file("bench.jsonl", b'{"text": "x"}\n' * 1000)))
        conn.recv()  # any message: stop
        together.stop()
        return
    api = LocalOpenPipe(OPENPIPE_KEY, clock=clock, step_seconds=1e9).start()
    conn.send((api.url, api.add_dataset("bench dataset", entries=1000)))
    conn.recv()
    api.stop()


class Counter:
    """Counts the bot's OpenPipe requests and response bytes, through the HTTP clients it hands out."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self._clients: list[httpx.Client] = []

    def client(self) -> httpx.Client:
        self._clients.append(httpx.Client(timeout=60, event_hooks={"response": [self.hook]}))
        return self._clients[-1]

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.requests += 1
        self.bytes += len(response.content)


class PerJobBackend(OpenPipeBackend):
    """The naive strategy: one GET /models/{slug} per followed job."""

    def refresh(self, slugs: Collection[str], *, listed_enough: Collection[str] = ()) -> dict[str, ModelState]:
        found: dict[str, ModelState] = {}
        for slug in slugs:
            try:
                found[slug] = self.client.get_model(slug).to_state()
            except NotFoundError:
                continue
        return found


class PerJobTogether(TogetherBackend):
    """The naive strategy for Together: one GET /fine-tunes/{id} per followed job."""

    def refresh(self, slugs: Collection[str], *, listed_enough: Collection[str] = ()) -> dict[str, ModelState]:
        found: dict[str, ModelState] = {}
        for key in slugs:
            try:
                found[key] = to_state(self.client.get_job(key))
            except NotFoundError:
                continue
        return found


@dataclass
class Sweep:
    ticks: list[float] = field(default_factory=list)  # seconds per tick that claimed something
    requests: list[int] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    peak: int = 0  # bytes above the pre-sweep level, when traced


def _sweep(tracker: Tracker, clock: BotClock, counter: Counter, trace: bool = False, max_ticks: int = 0) -> Sweep:
    """Tick until every job was polled once (or `max_ticks` ticks ran); with `trace`, record peak memory."""
    clock.advance(3600)  # every job is due
    out = Sweep()
    start_req, start_bytes = counter.requests, counter.bytes
    if trace:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    idle, end_bytes = 0, counter.bytes  # the closing tick's list read (nothing due): not part of the sweep
    while True:
        before, bytes_before = counter.requests, counter.bytes
        t0 = time.perf_counter()
        report = tracker.poll_once()
        if report.claimed == 0:
            idle, end_bytes = counter.requests - before, bytes_before
            break
        out.ticks.append(time.perf_counter() - t0)
        out.requests.append(counter.requests - before)
        if report.errors:
            raise RuntimeError(f"tick failed: {report.errors[:3]}")
        if len(out.ticks) == max_ticks:
            end_bytes = counter.bytes
            break
    out.seconds = sum(out.ticks)
    if trace:
        out.peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    out.bytes = end_bytes - start_bytes
    if sum(out.requests) != counter.requests - start_req - idle:
        raise RuntimeError("requests counted outside the ticks")
    return out


def _setup(
    service: str, n: int, url: str, dataset_id: str, db: Path
) -> tuple[JobStore, BotClock, dict[str, Tracker], Counter]:
    clock = BotClock(start=time.time())
    counter = Counter()
    real: Backend
    naive: Backend
    if service == "together":
        key = SecretStr(TOGETHER_KEY)
        together = TogetherBackend(key, url, timeout=60, client=counter.client())
        real, naive = together, PerJobTogether(key, url, timeout=60, client=counter.client())
        make = together_spec

        def create(slug: str) -> ModelState:
            # The create alone (the backend's own also estimates the price first): the setup, not the measure.
            return to_state(together.client.create_job(to_create_request(make(slug, dataset_id))))
    else:
        key = SecretStr(OPENPIPE_KEY)
        openpipe = OpenPipeBackend(key, url, timeout=60, client=counter.client())
        real, naive = openpipe, PerJobBackend(key, url, timeout=60, client=counter.client())
        make = spec

        def create(slug: str) -> ModelState:
            return openpipe.create(make(slug, dataset_id))

    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    store = JobStore(engine)
    slugs = [f"bench-{n}-{i:05d}" for i in range(n)]
    with ThreadPoolExecutor(max_workers=8) as pool:  # the server is another process: overlap its work
        states = list(pool.map(create, slugs))
    now = clock.utc()
    for slug, state in zip(slugs, states, strict=True):
        store.create_job(
            team_id="T0LOCAL",
            channel_id="C0GENERAL",
            requester_id="U0ALICE",
            backend=real.name,
            project=real.project,
            spec=make(slug, dataset_id),
            now=now,
            status=state.status,
            lifecycle=state.lifecycle,
            model_id=state.id,
            next_poll_at=now + timedelta(seconds=1),
        )
    trackers = {
        name: Tracker(store, [b], f"bench-{name}", clock.utc, CONFIG)
        for name, b in (("tracker", real), ("naive", naive))
    }
    return store, clock, trackers, counter


def _measure(service: str, n: int, url: str, dataset_id: str) -> dict[str, tuple[Sweep, Sweep]]:
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp:
        store, clock, trackers, counter = _setup(service, n, url, dataset_id, Path(tmp) / "bot.db")
        for tracker in trackers.values():
            _sweep(tracker, clock, counter, max_ticks=1)  # warm-up: connections, statement caches
        results: dict[str, tuple[Sweep, Sweep]] = {}
        for name in trackers:
            timed = _sweep(trackers[name], clock, counter)
            # Memory is freed between ticks, so the peak of two full ticks stands for the sweep's.
            traced = _sweep(trackers[name], clock, counter, trace=True, max_ticks=2)
            results[name] = (timed, traced)
        counter.close()
        store.engine.dispose()
        return results


def run(quick: bool) -> Section:
    scales = (10, 100, 1_000) if quick else (10, 100, 1_000, 10_000)
    section = Section(
        "Polling cost (one sweep = every followed job polled once)",
        [
            "service",
            "jobs",
            "poller",
            "req/tick",
            "ticks/sweep",
            "req/sweep",
            "tick p50 / max",
            "sweep time",
            "MB received/sweep",
            "peak memory/tick",
            "vs naive: req · time · memory",
        ],
    )
    for service in ("openpipe", "together"):
        _run_service(section, service, scales)
    section.notes += [
        f"Tracker config as Runtime builds it for the default POLL_INTERVAL_SECONDS={INTERVAL:g}: "
        f"every due job claimed in one tick (batches of {CONFIG.batch_limit}, up to {CONFIG.max_jobs_per_tick:,}), "
        "one project.",
        "naive = the same Tracker and database work, with a backend reading each job on its own "
        "(GET /models/{slug}, GET /fine-tunes/{id}; written in benchmarks/polling.py).",
        "Peak memory: tracemalloc peak over two full ticks, above the level before them (a separate traced run; "
        "times come from an untraced sweep). The local service runs in a child process and is not counted.",
        "Requests and bytes are counted by the bot's HTTP client. No model changes status during a sweep.",
    ]
    return section


def _run_service(section: Section, service: str, scales: tuple[int, ...]) -> None:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child, service), daemon=True)
    server.start()
    try:
        url, dataset_id = parent.recv()
        for n in scales:
            started = time.perf_counter()
            results = _measure(service, n, url, dataset_id)
            print(f"  polling {service}: {n} jobs measured in {time.perf_counter() - started:.0f} s", flush=True)
            naive_timed, naive_traced = results["naive"]
            for name in results:
                timed, traced = results[name]
                vs = "—"
                if name != "naive":
                    vs = " · ".join(
                        [
                            ratio(sum(timed.requests), sum(naive_timed.requests)),
                            ratio(timed.seconds, naive_timed.seconds),
                            ratio(traced.peak, naive_traced.peak),
                        ]
                    )
                section.rows.append(
                    [
                        service,
                        f"{n:,}",
                        name,
                        f"{sum(timed.requests) / len(timed.requests):.1f}",
                        str(len(timed.ticks)),
                        f"{sum(timed.requests):,}",
                        f"{percentile(timed.ticks, 50) * 1000:.0f} / {max(timed.ticks) * 1000:.0f} ms",
                        f"{timed.seconds:.2f} s",
                        f"{timed.bytes / 1e6:.2f}",
                        f"{traced.peak / 1e6:.1f} MB",
                        vs,
                    ]
                )
    finally:
        parent.send("stop")
        server.join(timeout=10)

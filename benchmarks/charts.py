"""The cost of loss curves: metrics reads, points read and uploads per job-hour, and render time per chart.

Job-hour run: N jobs training for one simulated hour (one step every 2 s, an evaluation every 50 steps), the
feed follower (events every 30 s, charts every 300 s) and the notifier against the local Slack (files.* limited to
20 per minute per method, as a low tier), on one manual clock over a real SQLite file. Baseline, computed from the
same run's parameters: a naive follower that re-reads the whole curve and uploads a chart on every poll (every
30 s), without an upload budget.

Render run: `loss_chart` at 100 and 2,000 points (the most a feed keeps) against a baseline in the same process:
a blank figure of the same size saved as PNG, the fixed cost of the Agg canvas and the PNG encoder.
"""

from __future__ import annotations

import io
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from slack_sdk import WebClient

from benchmarks.common import Section, percentile
from slackbot.backends.base import FineTuneSpec, MetricPoint, ModelState
from slackbot.backends.registry import registered
from slackbot.delivery import charts
from slackbot.delivery.notifier import Notifier
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.db import make_engine, migrate
from slackbot.jobs.feed import FeedConfig, FeedFollower
from slackbot.jobs.store import JobStore
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.slack_api import LocalSlack
from tests.feed.backend import FEED_STATUSES, FEEDTOY, FeedBackend

TOKEN = "xoxb-bench-charts"
T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)
POLL = 30.0
CHART = 300.0
STEP_SECONDS = 2.0


class CountingBackend(FeedBackend):
    """Metrics that grow with the clock; counts the points each read returns."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.points_read = 0

    def metrics(self, slug: str, *, after_step: int | None = None) -> list[MetricPoint]:
        last = int((self.clock.now() - T0.timestamp()) / STEP_SECONDS)
        first = 1 if after_step is None else after_step + 1
        with self.lock:
            self.reads.append(("metrics", slug, after_step))
        found = [
            MetricPoint(step=s, train_loss=2.0 / (1 + s / 300), eval_loss=2.1 / (1 + s / 280) if s % 50 == 0 else None)
            for s in range(first, last + 1)
        ]
        self.points_read += len(found)
        return found


def _job_hour(jobs: int) -> list[str]:
    clock = ManualClock(T0.timestamp())
    with tempfile.TemporaryDirectory() as tmp, registered(FEEDTOY):
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate(engine)
        store = JobStore(engine)
        slack = LocalSlack(bot_token=TOKEN, clock=clock, stamp_clock=clock, file_rate_per_minute=20).start()
        try:

            def now() -> datetime:
                return datetime.fromtimestamp(clock.now(), UTC)

            for n in range(jobs):
                channel = f"C0BENCH{n:04d}"
                slack.add_channel(channel, f"bench-{n}")
                spec = FineTuneSpec(backend="feedtoy", dataset_id="ds", slug=f"bench-{n}", base_model="feed-base")
                job = store.create_job(
                    team_id="T0LOCAL",
                    channel_id=channel,
                    requester_id="U0ALICE",
                    backend="feedtoy",
                    project="feedtoy:local",
                    spec=spec,
                    now=now(),
                )
                state = ModelState(
                    id=f"b{n}",
                    slug=spec.slug,
                    status="running",
                    lifecycle=Lifecycle.RUNNING,
                    base_model="b",
                    dataset_id="ds",
                )
                assert store.confirm_created(job.id, state, now(), now() + timedelta(seconds=POLL))
            backend = CountingBackend(clock)
            follower = FeedFollower(
                engine, [backend], "bench", now, FeedConfig(events_interval_seconds=POLL, chart_interval_seconds=CHART)
            )
            notifier = Notifier(store, WebClient(token=TOKEN, base_url=slack.url, timeout=10), "bench", now)
            render = 0.0
            started = time.perf_counter()
            for second in range(3600):
                if second % 5 == 0:
                    follower.poll_once()
                t = time.perf_counter()
                notifier.deliver_due()
                render += time.perf_counter() - t
                clock.advance(1)
            for job_id in range(1, jobs + 1):  # the end: each job's last read and final chart
                old, new = ("running", Lifecycle.RUNNING), ("completed", FEED_STATUSES.lifecycle("completed"))
                assert store.apply_transition(job_id, old, new, None, now(), None, None)
            follower.poll_once()
            for _ in range(jobs * 5 + 60):
                notifier.deliver_due()
                clock.advance(1)
            wall = time.perf_counter() - started
            uploads = [c for c in slack.calls if c.method == "files.completeUploadExternal" and c.status == 200]
            limited = [c for c in slack.calls if c.status == 429]
            metrics_reads = backend.count("metrics")
        finally:
            slack.stop()
            engine.dispose()
    naive_reads = 3600 / POLL
    naive_points = sum(int(t / STEP_SECONDS) for t in range(int(POLL), 3601, int(POLL)))
    return [
        f"{jobs}",
        f"{metrics_reads / jobs:.1f} / {naive_reads:.0f}",
        f"{backend.points_read / jobs:,.0f} / {naive_points:,.0f}",
        f"{len(uploads) / jobs:.1f} / {naive_reads:.0f}",
        f"{len(limited)}",
        f"{render / max(1, len(uploads)) * 1000:.0f} ms",
        f"{wall:.0f} s",
    ]


def _render_times(points: int, runs: int) -> list[float]:
    curve = [(s, 2.0 / (1 + s / 300), 2.1 / (1 + s / 280) if s % 50 == 0 else None) for s in range(1, points + 1)]
    charts.loss_chart("warm-up", curve, final=False)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        charts.loss_chart("bench-job", curve, final=False)
        times.append(time.perf_counter() - t)
    return times


def _blank_times(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        figure = Figure(figsize=(charts.WIDTH_PX / charts.DPI, charts.HEIGHT_PX / charts.DPI), dpi=charts.DPI)
        FigureCanvasAgg(figure)
        figure.savefig(io.BytesIO(), format="png", dpi=charts.DPI, pil_kwargs={"compress_level": 2})
        times.append(time.perf_counter() - t)
    return times


def run(quick: bool) -> list[Section]:
    hours = Section(
        "Loss curves per job-hour",
        [
            "jobs",
            "metrics reads: feed / naive",
            "points read: feed / naive",
            "uploads: feed / naive",
            "429s",
            "notifier time per upload (render included)",
            "wall time",
        ],
    )
    for jobs in (10,) if quick else (10, 50):
        hours.rows.append(_job_hour(jobs))
    hours.notes.append(
        "One simulated hour, a step every 2 s; naive = whole curve read and a chart uploaded every 30 s poll."
    )
    runs = 5 if quick else 20
    baseline = _blank_times(runs)
    render = Section("Render time per chart", ["chart", "p50", "p90", "p50 vs blank figure"])
    base50 = percentile(baseline, 50)
    render.rows.append(
        [
            "blank figure, same size (baseline)",
            f"{base50 * 1000:.0f} ms",
            f"{percentile(baseline, 90) * 1000:.0f} ms",
            "1.00x",
        ]
    )
    for points in (100, 2000):
        times = _render_times(points, runs)
        p50 = percentile(times, 50)
        render.rows.append(
            [
                f"{points:,} points",
                f"{p50 * 1000:.0f} ms",
                f"{percentile(times, 90) * 1000:.0f} ms",
                f"{p50 / base50:.2f}x",
            ]
        )
    return [hours, render]

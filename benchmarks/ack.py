"""Ack latency through the real HTTP endpoint: the bot against a bare Bolt app, each in its own process.

Each simulated user runs the whole flow in a loop: /finetune (measured until views.open reaches the local
Slack), a dataset options request (until the HTTP response), a view submission (until the HTTP response).
The bot is `slackbot run --http` as deployed; the bare app (`benchmarks/bare_app.py`) is a Bolt App behind the
same waitress `HttpServer` whose listeners only ack. Both talk to the same local Slack and OpenPipe, which run
with the load generator in this process — as in production, where Slack and OpenPipe are other machines.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import BASE_MODEL, Section, bootstrap_ratio, interval, ms, percentile, ratio
from slackbot import ids
from slackbot.backends.openpipe.fields import Provider
from slackbot.demo import BOT_TOKEN, OPENPIPE_KEY, SIGNING_SECRET
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.driver import VERIFICATION_TOKEN, SlackDriver
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.waiting import wait_until
from slackbot.services.submission import BUSY
from slackbot.web import EVENTS_PATH

SLOW_SECONDS = 2.0
BLOCKS = 4  # the load alternates between the two apps this many times
# With 2 or more CPUs the app under test gets the last one to itself and the load generator and the stand-ins
# keep to the others, as when Slack and OpenPipe are other machines: the app's latency is then its own work.
_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
APP_CPUS = set(_CPUS[-1:]) if len(_CPUS) >= 2 else set()
LOAD_CPUS = set(_CPUS[:-1]) if len(_CPUS) >= 2 else set()
STEPS = ("/finetune → views.open", "options → response", "submission → response")


class ViewsOpenLog:
    """Wraps `LocalSlack.handle` to note when each views.open arrives (by trigger_id) and the view it opened."""

    def __init__(self, slack: LocalSlack) -> None:
        self._handle = slack.handle
        self._arrived: dict[str, tuple[float, str]] = {}
        self._cond = threading.Condition()
        slack.handle = self._wrapped  # type: ignore[method-assign]  # instance-level tap, benchmark only

    def _wrapped(self, method: str, args: Any, authorization: str | None) -> Any:
        at = time.perf_counter()
        trigger = args.get("trigger_id") if method == "views.open" else None
        result = self._handle(method, args, authorization)
        if trigger is not None:
            body = result[2]
            view_id = body.get("view", {}).get("id", "") if isinstance(body, dict) else ""
            with self._cond:
                self._arrived[str(trigger)] = (at, str(view_id))
                self._cond.notify_all()
        return result

    def wait(self, trigger: str, timeout: float = 10.0) -> tuple[float, str] | None:
        with self._cond:
            self._cond.wait_for(lambda: trigger in self._arrived, timeout=timeout)
            return self._arrived.get(trigger)


class TimedDriver(SlackDriver):
    """A driver whose HTTP client notes when the last request went out and when its response came back."""

    def __init__(self, app_url: str, slack: LocalSlack) -> None:
        self.sent_at = 0.0
        self.last = 0.0
        hooks: dict[str, list[Callable[..., Any]]] = {"request": [self._sent], "response": [self._answered]}
        super().__init__(app_url, SIGNING_SECRET, slack, http=httpx.Client(timeout=30, event_hooks=hooks))

    def _sent(self, _request: httpx.Request) -> None:
        self.sent_at = time.perf_counter()

    def _answered(self, _response: httpx.Response) -> None:
        self.last = time.perf_counter() - self.sent_at

    def finetune(self, user_id: str) -> tuple[str, httpx.Response]:
        """/finetune with a trigger_id we know (SlackDriver.slash_command's fields)."""
        trigger = self.slack.issue_trigger_id(user_id=user_id)
        response = self.post_form(
            {
                "token": VERIFICATION_TOKEN,
                "team_id": self.team_id,
                "team_domain": "local",
                "channel_id": "C0GENERAL",
                "channel_name": "general",
                "user_id": user_id,
                "user_name": user_id.lower(),
                "command": "/finetune",
                "text": "",
                "api_app_id": self.slack.app_id,
                "is_enterprise_install": "false",
                "response_url": self.response_url(),
                "trigger_id": trigger,
            }
        )
        return trigger, response


@dataclass
class Samples:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    degraded: int = 0  # options answered with an error option instead of datasets
    told_busy: int = 0  # submissions answered in the form that the after-ack pool is full (nothing typed lost)
    jobs_started: int = 0  # jobs the bot created for these submissions, counted once it went quiet
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, step: str, seconds: float | None, reason: str = "") -> None:
        with self.lock:
            if seconds is None:
                self.failures[step] += 1
                self.reasons[reason] += 1
            else:
                self.latencies[step].append(seconds)


def _why(response: httpx.Response) -> str:
    late = " after ≥ 3 s" if response.elapsed.total_seconds() >= 3.0 else ""
    return f"HTTP {response.status_code}{late}"


def _flow(driver: TimedDriver, log: ViewsOpenLog, user: str, slug: str, out: Samples | None) -> list[Any]:
    """One user's /finetune → options → submission; `out=None` for a warm-up. Returns the options got."""
    record = out.add if out else (lambda step, seconds, reason="": None)
    trigger, response = driver.finetune(user)
    arrived = log.wait(trigger)
    if response.status_code != 200 or arrived is None or not arrived[1]:
        record(STEPS[0], None, _why(response) if response.status_code != 200 else "no views.open")
        return []
    record(STEPS[0], arrived[0] - driver.sent_at)
    view_id = arrived[1]
    response = driver.block_suggestion(view_id, ids.ACTION_DATASET, ids.BLOCK_DATASET, "bench", user_id=user)
    options = response.json().get("options", []) if response.status_code == 200 else []
    real = [o for o in options if o.get("value") != ids.OPTION_ERROR_VALUE]
    record(STEPS[1], driver.last if response.status_code == 200 else None, _why(response))
    if out and options and not real:
        with out.lock:
            out.degraded += 1
    values = {
        ids.BLOCK_DATASET: (real or options)[0] if options else None,
        ids.block_base_model(Provider.OPENPIPE): BASE_MODEL,
        ids.BLOCK_SLUG: slug,
        ids.BLOCK_SFT_EPOCHS: "3",
    }
    response = driver.view_submission(view_id, {k: v for k, v in values.items() if v is not None}, user_id=user)
    answer = response.json() if response.status_code == 200 and response.content.strip() else {}
    if response.status_code != 200:
        record(STEPS[2], None, _why(response))
    elif "errors" in answer and list(answer["errors"].values()) == [BUSY]:
        # The bot's answer to more starts waiting than it takes (a slow service): in time, and the form keeps all.
        record(STEPS[2], driver.last)
        if out:
            with out.lock:
                out.told_busy += 1
    elif "errors" in answer:
        record(STEPS[2], None, f"errors {sorted(answer['errors'])}")
    else:
        record(STEPS[2], driver.last)
    return real


class AppProcess:
    """An app under test in its own process (as in production: the stand-ins and the load are elsewhere), so that
    what is measured is the app's own work, not the GIL it would share with the driver and the stand-ins."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
        with log_path.open("w") as out:
            self._proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        if APP_CPUS:
            os.sched_setaffinity(self._proc.pid, APP_CPUS)
        try:
            wait_until(self._ready, 30, ignoring=(httpx.HTTPError,))
        except Exception:
            self.stop()
            raise RuntimeError(f"{argv[2]} did not start; see {log_path}:\n{log_path.read_text()[-2000:]}") from None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _ready(self) -> bool:
        if self._proc.poll() is not None:
            raise RuntimeError(f"exited with {self._proc.returncode}")
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200

    def stop(self) -> None:
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENPIPE_", "DATABASE_"))}
    return {**base, **values}


def _bot(tmp: Path, slack: LocalSlack, openpipe: LocalOpenPipe) -> AppProcess:
    """`slackbot run --http` exactly as deployed (default poll interval and log level), on a SQLite file."""
    port = _free_port()
    env = _env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.url,
        OPENPIPE_API_KEY=OPENPIPE_KEY,
        OPENPIPE_BASE_URL=openpipe.url,
        DATABASE_URL=f"sqlite:///{tmp / 'bot.db'}",
    )
    argv = [sys.executable, "-m", "slackbot", "run", "--http", "--host", "127.0.0.1", "--port", str(port)]
    return AppProcess(argv, env, port, tmp / "bot.log")


def _bare(tmp: Path, slack: LocalSlack, view: dict[str, Any], options: list[dict[str, Any]]) -> AppProcess:
    port = _free_port()
    fixture = tmp / "bare.json"
    fixture.write_text(json.dumps({"view": view, "options": options}), encoding="utf-8")
    argv = [sys.executable, "-m", "benchmarks.bare_app", "--port", str(port), "--slack-url", slack.url]
    return AppProcess([*argv, "--fixture", str(fixture)], _env(), port, tmp / "bare.log")


def _load(url: str, slack: LocalSlack, log: ViewsOpenLog, users: int, rounds: int, tag: str, out: Samples) -> None:
    names = [f"U0B{tag.upper()}{i:02d}" for i in range(users)]
    for name in names:
        slack.add_user(name, name.lower())
    drivers = [TimedDriver(url, slack) for _ in names]

    def user(i: int) -> None:
        for r in range(rounds):
            _flow(drivers[i], log, names[i], f"{tag}-{i}-{r}", out)

    with ThreadPoolExecutor(max_workers=users) as pool:
        list(pool.map(user, range(users)))
    for d in drivers:
        d.close()


def _drain(openpipe: LocalOpenPipe, expected: int, quiet: float = 10.0, timeout: float = 600.0) -> None:
    """Let the work the bot does after its acks finish before counting the jobs it started: wait until OpenPipe
    holds `expected` models, or none was created for `quiet` seconds. (With OpenPipe answering in 2 s, the
    after-ack pool works through a backlog of creates for minutes; its cards trickle out at Slack's pace.)"""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len(openpipe.models())
        if now >= expected:
            return
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)


def _scenario(users: int, rounds: int, blocks: int, slow: bool) -> dict[str, Samples]:
    """Both apps run side by side; the load alternates between them in `blocks` (bare then bot, then bot then
    bare, …), so that drift in the machine's speed during the run falls on both alike."""
    if LOAD_CPUS:
        os.sched_setaffinity(0, LOAD_CPUS)  # this process (the load and the stand-ins); the apps get APP_CPUS
    with tempfile.TemporaryDirectory(prefix="bench-ack-") as name:
        tmp = Path(name)
        clock = ManualClock(start=time.time())  # never advanced: the jobs stay PENDING, the tracker idles
        with (
            LocalOpenPipe(OPENPIPE_KEY, clock=clock, step_seconds=60) as openpipe,
            LocalSlack(bot_token=BOT_TOKEN, clock=clock) as slack,
        ):
            openpipe.add_dataset("bench dataset", entries=5000)
            log = ViewsOpenLog(slack)
            bot = _bot(tmp, slack, openpipe)
            bare: AppProcess | None = None
            try:
                # Warm-up (not measured): connections, and the bot's catalogue cache, as in steady state.
                options = _flow(TimedDriver(bot.url, slack), log, "U0ALICE", "warm-up", None)
                if not options:
                    raise RuntimeError(f"warm-up flow failed; see {tmp / 'bot.log'}")
                opened = slack.calls_to("views.open")[0].args["view"]
                wait_until(lambda: slack.calls_to("chat.postMessage"), 10)  # its card: the job is started
                bare = _bare(tmp, slack, opened, options)
                _flow(TimedDriver(bare.url, slack), log, "U0ALICE", "warm-up-bare", None)
                if slow:
                    openpipe.inject("*", "latency", delay=SLOW_SECONDS, times=None)
                results = {"bare": Samples(), "bot": Samples()}
                apps = {"bare": bare, "bot": bot}
                for block in range(blocks):
                    for which in ("bare", "bot") if block % 2 == 0 else ("bot", "bare"):
                        _load(apps[which].url, slack, log, users, rounds, f"{which}{block}", results[which])
                _drain(openpipe, expected=1 + len(results["bot"].latencies[STEPS[2]]) - results["bot"].told_busy)
                results["bot"].jobs_started = len(openpipe.models()) - 1  # less the warm-up's
                return results
            finally:
                if bare is not None:
                    bare.stop()
                bot.stop()


@contextmanager
def _busy_neighbour() -> Iterator[None]:
    """A process that spins on the apps' CPU until the block ends (or this process dies: it checks its parent)."""
    code = (
        f"import os\nos.sched_setaffinity(0, {sorted(APP_CPUS)})\nparent = {os.getpid()}\n"
        "while os.getppid() == parent:\n    sum(range(100_000))\n"
    )
    spinner = subprocess.Popen([sys.executable, "-c", code])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def run(quick: bool) -> Section:
    section = Section(
        "Ack latency through HTTP (signed requests; ratio = bot ÷ bare Bolt app, each in its own process)",
        [
            "OpenPipe",
            "users",
            "step",
            "bare p50 / p99",
            "bot p50 / p99",
            "p50 ratio",
            "p99 ratio",
            "p99 ratio, 90% interval",
            "bot failures",
        ],
    )
    scenarios = [(slow, users, False) for slow in (False, True) for users in (1, 20)]
    if APP_CPUS:
        scenarios.append((False, 1, True))
    for slow, users, busy in scenarios:
        # 1,000 samples per app at 1 user (a p99 decided by 10 requests, not 2) and 640 at 20 users.
        rounds = (5 if quick else 250) if users == 1 else (1 if quick else 8)
        started = time.perf_counter()
        with _busy_neighbour() if busy else nullcontext():
            res = _scenario(users, rounds, BLOCKS, slow)
        took = time.perf_counter() - started
        reasons = dict(res["bot"].reasons)
        print(f"  ack: slow={slow} users={users} busy={busy} in {took:.0f} s; bot failures: {reasons}", flush=True)
        label = (f"slow ({SLOW_SECONDS:g} s)" if slow else "normal") + (", busy CPU" if busy else "")
        bare, bot = res["bare"], res["bot"]
        for step in STEPS:
            # A failed request counts as infinitely slow: p99 must not hide it.
            b = bare.latencies[step] + [math.inf] * bare.failures[step]
            s = bot.latencies[step] + [math.inf] * bot.failures[step]
            fails = f"{bot.failures[step]} of {len(s)}"
            if step == STEPS[1] and bot.degraded:
                fails += f" (+{bot.degraded} “OpenPipe is slow” answers)"
            if step == STEPS[2] and bot.told_busy:
                fails += f" (+{bot.told_busy} told busy)"
            section.rows.append(
                [
                    label,
                    str(users),
                    step,
                    f"{ms(percentile(b, 50))} / {ms(percentile(b, 99))}",
                    f"{ms(percentile(s, 50))} / {ms(percentile(s, 99))}",
                    ratio(percentile(s, 50), percentile(b, 50)),
                    ratio(percentile(s, 99), percentile(b, 99)),
                    interval(bootstrap_ratio(s, b, 99)),
                    fails,
                ]
            )
        accepted = len(bot.latencies[STEPS[2]]) - bot.told_busy
        failures = ", ".join(f"{why}: {count}" for why, count in sorted(reasons.items())) or "none"
        section.notes.append(
            f"{label}, {users} users: the bot started {bot.jobs_started} jobs for {accepted} accepted "
            f"submissions (the work after the ack, done while it was measured); failures: {failures}."
        )
    section.notes += [
        "Busy CPU: a process spinning on the apps' CPU for the whole scenario, as on a shared machine with a noisy "
        "neighbour: both apps get about half of the CPU, and the bot's background work takes longer to get out of "
        "the way.",
        "Each user loops /finetune → dataset options → submit (a valid form, so a job is started after the ack). "
        "Slow = LocalOpenPipe answers every endpoint after an injected 2 s latency.",
        "The interval is a bootstrap of the p99 ratio (both sample sets resampled 1,000 times): how far the ratio "
        "moves from noise alone.",
        "A failure is a non-200 answer, no views.open within 10 s, or a submission answered with errors other than "
        "“busy” (the after-ack pool full: an answer in time, counted apart as “told busy”); it counts as infinitely "
        "slow in the percentiles (shown as “failed”).",
        "Warm-up (not measured): one flow per app, which also fills the bot's dataset cache, as in steady state; "
        "the latency is injected after it. Target: p99 well under Slack's 3 s and within 1.5 times the bare app's.",
        f"Each app is its own process (the bot: `slackbot run --http`, default settings, SQLite); the load "
        f"alternates between them {BLOCKS} times. The load generator, the local Slack and the local OpenPipe share "
        "a third process. "
        + (
            f"The apps run on CPU {sorted(APP_CPUS)} and the load on CPU {sorted(LOAD_CPUS)}, so that neither "
            "slows the other (as when Slack and OpenPipe are other machines)."
            if APP_CPUS
            else "One CPU: the apps and the load share it."
        ),
    ]
    return section

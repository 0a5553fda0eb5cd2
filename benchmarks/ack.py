"""Ack latency through the real HTTP endpoint: the bot (`OfflineBot`) against a bare Bolt app, same server.

Each simulated user runs the whole flow in a loop: /finetune (measured until views.open reaches the local
Slack), a dataset options request (until the HTTP response), a view submission (until the HTTP response).
The bare app is a Bolt App behind the same waitress `HttpServer`, driven by the same `SlackDriver`, whose
listeners only ack — plus, for /finetune, the one views.open call the measurement needs (it opens the very
view the bot opened, so payload sizes match).
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from slack_bolt import Ack, App
from slack_sdk import WebClient

from benchmarks.common import BASE_MODEL, Section, ms, percentile, ratio
from slackbot.backends.base import Provider
from slackbot.blocks import ids
from slackbot.demo import BOT_TOKEN, SIGNING_SECRET, OfflineBot
from slackbot.sandbox.driver import VERIFICATION_TOKEN, SlackDriver
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.web import HttpServer

SLOW_SECONDS = 2.0
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
    elif "errors" in answer:
        record(STEPS[2], None, f"errors {sorted(answer['errors'])}")
    else:
        record(STEPS[2], driver.last)
    return real


def _bare_app(slack: LocalSlack, view: dict[str, Any], options: list[dict[str, Any]]) -> App:
    app = App(
        client=WebClient(token=BOT_TOKEN, base_url=slack.url),
        signing_secret=SIGNING_SECRET,
        process_before_response=False,
        token_verification_enabled=False,
    )

    @app.command(ids.COMMAND)
    def command(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=command["trigger_id"], view=view)

    @app.options(ids.ACTION_DATASET)
    def picker(ack: Ack) -> None:
        ack(options=options)

    @app.view(ids.VIEW_FINETUNE)
    def submit(ack: Ack) -> None:
        ack()

    return app


def _load(url: str, bot: OfflineBot, log: ViewsOpenLog, users: int, rounds: int, tag: str) -> Samples:
    out = Samples()
    names = [f"U0B{tag.upper()}{i:02d}" for i in range(users)]
    for name in names:
        bot.slack.add_user(name, name.lower())
    drivers = [TimedDriver(url, bot.slack) for _ in names]

    def user(i: int) -> None:
        for r in range(rounds):
            _flow(drivers[i], log, names[i], f"{tag}-{i}-{r}", out)

    with ThreadPoolExecutor(max_workers=users) as pool:
        list(pool.map(user, range(users)))
    for d in drivers:
        d.close()
    return out


def _drain(bot: OfflineBot, quiet: float = 3.0, timeout: float = 120.0) -> None:
    """Let the work listeners do after their ack (create the model, post the card) finish before closing:
    wait until no job is SUBMITTING and neither OpenPipe nor Slack saw a request for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        jobs = bot.runtime.store.recent(bot.slack.team_id, limit=10_000)
        now = (len(jobs), len(bot.openpipe.requests), len(bot.slack.calls))
        busy = any(job.status == "SUBMITTING" for job in jobs)
        if now != last or busy:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)


def _scenario(users: int, rounds: int, slow: bool) -> dict[str, Samples]:
    with tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp:
        bot = OfflineBot(Path(tmp))
        try:
            bot.openpipe.add_dataset("bench dataset", entries=5000)
            log = ViewsOpenLog(bot.slack)
            # Warm-up (not measured): connections, and the bot's catalogue cache, as in steady state.
            options = _flow(TimedDriver(bot.server.url, bot.slack), log, "U0ALICE", "warm-up", None)
            if not options:
                raise RuntimeError("warm-up flow failed")
            opened = bot.slack.calls_to("views.open")[0].args["view"]
            bot.wait(lambda: bot.slack.calls_to("chat.postMessage"), timeout=10)  # its card: the job is started
            if slow:
                bot.openpipe.inject("*", "latency", delay=SLOW_SECONDS, times=None)
            bare_server = HttpServer(_bare_app(bot.slack, opened, options), lambda: {"ok": True}, "127.0.0.1", 0)
            bare_server.start()
            try:
                _flow(TimedDriver(bare_server.url, bot.slack), log, "U0ALICE", "warm-up-bare", None)
                results = {"bare": _load(bare_server.url, bot, log, users, rounds, "bare")}
            finally:
                bare_server.stop()
            results["bot"] = _load(bot.server.url, bot, log, users, rounds, "bot")
            _drain(bot)
            results["bot"].jobs_started = len(bot.runtime.store.recent(bot.slack.team_id, limit=10_000)) - 1
            return results
        finally:
            bot.close()


def run(quick: bool) -> Section:
    section = Section(
        "Ack latency through HTTP (signed requests; ratio = bot ÷ bare Bolt app, same server and driver)",
        ["OpenPipe", "users", "step", "bare p50 / p99", "bot p50 / p99", "p50 ratio", "p99 ratio", "bot failures"],
    )
    for slow in (False, True):
        for users in (1, 20):
            rounds = (10 if quick else 40) if users == 1 else (2 if quick else 5)
            started = time.perf_counter()
            res = _scenario(users, rounds, slow)
            took = time.perf_counter() - started
            reasons = dict(res["bot"].reasons)
            print(f"  ack: slow={slow} users={users} in {took:.0f} s; bot failures: {reasons}", flush=True)
            label = f"slow ({SLOW_SECONDS:g} s)" if slow else "normal"
            bare, bot = res["bare"], res["bot"]
            for step in STEPS:
                # A failed request counts as infinitely slow: p99 must not hide it.
                b = bare.latencies[step] + [math.inf] * bare.failures[step]
                s = bot.latencies[step] + [math.inf] * bot.failures[step]
                fails = f"{bot.failures[step]} of {len(s)}"
                if step == STEPS[1] and bot.degraded:
                    fails += f" (+{bot.degraded} “OpenPipe is slow” answers)"
                section.rows.append(
                    [
                        label,
                        str(users),
                        step,
                        f"{ms(percentile(b, 50))} / {ms(percentile(b, 99))}",
                        f"{ms(percentile(s, 50))} / {ms(percentile(s, 99))}",
                        ratio(percentile(s, 50), percentile(b, 50)),
                        ratio(percentile(s, 99), percentile(b, 99)),
                        fails,
                    ]
                )
            if reasons:
                accepted = len(bot.latencies[STEPS[2]])
                section.notes.append(
                    f"{label}, {users} users — bot failures: "
                    + ", ".join(f"{why}: {count}" for why, count in sorted(reasons.items()))
                    + f"; jobs the bot started anyway: {bot.jobs_started} for {accepted} accepted submissions."
                )
    section.notes += [
        "Each user loops /finetune → dataset options → submit (a valid form, so a job is started after the ack). "
        "Slow = LocalOpenPipe answers every endpoint after an injected 2 s latency.",
        "A failure is a non-200 answer, no views.open within 10 s, or a submission answered with errors; it counts "
        "as infinitely slow in the percentiles (shown as “failed”).",
        "Warm-up (not measured): one flow per app, which also fills the bot's dataset cache, as in steady state; "
        "the latency is injected after it. Target: p99 well under Slack's 3 s and within 1.5 times the bare app's.",
    ]
    return section

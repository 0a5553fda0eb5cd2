"""What every backend's story shows the same way: headings, a request body, the card, and the thread followed live
while the bot's manual clock runs (each reply as it arrives, the card's status line each time it changes)."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from slackbot.demo.offline import STEP_SECONDS, OfflineBot
from slackbot.demo.render import WIDTH, Reader
from slackbot.jobs import feed_store
from slackbot.jobs.records import JobRecord, OutboxRecord
from slackbot.sandbox.slack_files import Files
from slackbot.text import clip_plain

CHANNEL = "C0GENERAL"
CARD_SUMMARY = ("Status: ", "Progress: ", "Cost: ")  # the card's lines that change as the job goes
QUIET_TICKS = 2  # once the job has ended and nothing is due, this many ticks with nothing new end the thread


def say(line: str = "") -> None:
    print(line, flush=True)


def heading(title: str) -> None:
    say()
    say(f"── {title} " + "─" * max(3, 72 - len(title)))


def reader_for(bot: OfflineBot) -> Reader:
    return Reader({uid: str(user.get("name") or uid) for uid, user in bot.slack.workspace.users.items()})


def request(method: str, path: str, body: Mapping[str, Any]) -> None:
    """A JSON request as sent: an object that does not fit on its line is opened up, one key a line."""
    say(f"  {method} {path}")
    for line in json_lines(body, "    "):
        say(line)


def json_lines(value: Any, indent: str, head: str = "", tail: str = "") -> list[str]:
    """`head` + the value + `tail` on one line if it fits, else the object's keys each on its own (recursively)."""
    flat = f"{indent}{head}{json.dumps(value, ensure_ascii=False)}{tail}"
    if len(flat) <= WIDTH or not isinstance(value, dict) or not value:
        return [clip_plain(flat, WIDTH)]
    keys = list(value)
    lines = [f"{indent}{head}{{"]
    for number, key in enumerate(keys):
        comma = "," if number < len(keys) - 1 else ""
        lines.extend(json_lines(value[key], indent + "  ", f"{json.dumps(key)}: ", comma))
    return [*lines, f"{indent}}}{tail}"]


def open_form(bot: OfflineBot, reader: Reader, service: str) -> dict[str, Any]:
    """Part 1: alice types /finetune and the service's form opens; the view."""
    heading(f"1 · /finetune opens {service}'s form")
    say("#general — @alice types:  /finetune")
    bot.driver.slash_command("/finetune")
    view = bot.driver.wait_for_view()
    for line in reader.form(view):
        say(f"  {line}")
    return view


def show_errors(view: dict[str, Any], answer: dict[str, Any]) -> None:
    """A refused submission's errors, each where Slack shows it: under its field's label."""
    for block_id, message in answer.get("errors", {}).items():
        field = next(str(b["label"]["text"]) for b in view["blocks"] if b.get("block_id") == block_id)
        say(f"  ▸ the form stays open; under “{field}” it says:")
        say(f"      {message}")


def the_job(
    bot: OfflineBot,
    reader: Reader,
    slug: str,
    service: str,
    *,
    limit: float,
    failure: tuple[float, Callable[[JobRecord], None]] | None,
) -> None:
    """Parts 3 to 5: the card as posted, its thread while the service trains (`failure`: at that second of the
    service's time, make the job fail), and the card at the end."""
    heading("3 · The status card in #general")
    job: JobRecord = bot.wait(lambda: (j := bot.runtime.store.by_slug(bot.slack.team_id, slug)) and j.card_ts and j)
    say("#general — finetune (bot):")
    show_card(bot, reader, job)

    heading(f"4 · The card's thread while {service} trains")
    at = {failure[0]: functools.partial(failure[1], job)} if failure is not None else None
    follow(bot, Thread(bot, reader, job), step=STEP_SECONDS / 2, limit=limit, at=at)

    heading("5 · The card at the end")
    say("#general — finetune (bot), the same message, updated:")
    show_card(bot, reader, job)


def card_of(bot: OfflineBot, ts: str) -> dict[str, Any]:
    found: dict[str, Any] = next(m for m in bot.slack.messages(CHANNEL) if m["ts"] == ts)
    return found


def show_card(bot: OfflineBot, reader: Reader, job: JobRecord) -> None:
    assert job.card_ts is not None
    for line in reader.blocks(card_of(bot, job.card_ts)["blocks"]):
        say(f"  │ {line}")


class Thread:
    """The thread under a job's card as it grows: prints each new message once, and the card's summary (status,
    progress, cost) whenever it changes."""

    def __init__(self, bot: OfflineBot, reader: Reader, job: JobRecord) -> None:
        assert job.card_ts is not None
        self.bot, self.reader, self.job_id, self.ts = bot, reader, job.id, job.card_ts
        self.seen = {job.card_ts}
        self.summary = self._summary()

    def _summary(self) -> str:
        lines = self.reader.blocks(card_of(self.bot, self.ts)["blocks"])
        return " · ".join(line for line in lines if line.startswith(CARD_SUMMARY))

    def show_new(self) -> bool:
        """Print what appeared since the last call; whether anything did."""
        new = [m for m in self.bot.slack.thread(CHANNEL, self.ts) if m["ts"] not in self.seen]
        for message in new:
            self.seen.add(message["ts"])
            lines = self._message(message)
            say(f"  ↳ {lines[0]}")
            for line in lines[1:]:
                say(f"      {line}")
        summary = self._summary()
        changed = summary != self.summary
        if changed:
            self.summary = summary
            say(f"    card ↻ {clip_plain(summary, 100)}")
        return bool(new) or changed

    def _message(self, message: dict[str, Any]) -> list[str]:
        if message.get("files"):
            return [self._file(f) for f in message["files"]]
        if message.get("blocks"):
            return self.reader.blocks(message["blocks"])
        return self.reader.text(message["text"]).splitlines()

    def _file(self, shared: dict[str, Any]) -> str:
        """An uploaded chart as the thread shows it: its title, and what the image is."""
        stored = self.bot.slack.files.files[shared["id"]]
        size = Files.png_size(stored.data or b"")
        points, charted = feed_store.chart_data(self.bot.runtime.engine, self.job_id)
        drawn = len([p for p in points if charted is None or p[0] <= charted])
        what = f"a {shared.get('filetype', '')} file"
        if size is not None:
            what = f"a {size[0]}\N{MULTIPLICATION SIGN}{size[1]} PNG"
        return f"📈 a chart, “{shared['title']}”: {what} of {drawn} points ({shared['name']})"


def follow(
    bot: OfflineBot, thread: Thread, *, step: float, limit: float, at: Mapping[float, Callable[[], None]] | None = None
) -> None:
    """Run the bot's clock `step` seconds a tick (`at`: what the service does at those seconds), printing the
    thread as it grows, until the job has ended and everything is told."""
    started, elapsed, quiet = time.monotonic(), 0.0, 0
    while elapsed < limit and quiet < QUIET_TICKS:
        bot.clock.advance(step)
        elapsed += step
        bot.tick()
        if at and elapsed in at:  # after the tick: what the bot read at this moment, it has told
            at[elapsed]()
        news = thread.show_new()
        job = bot.runtime.store.get(thread.job_id)
        ended = job is not None and job.is_terminal and not job.tracking and not due(bot, job)
        quiet = quiet + 1 if ended and not news else 0
    say(f"  ({elapsed / 60:.0f} minutes of the service's time, played in {time.monotonic() - started:.1f} s)")


def due(bot: OfflineBot, job: JobRecord) -> list[OutboxRecord]:
    """The job's messages the bot has yet to deliver that are due now (a card redraw may wait its turn later)."""
    now = bot.clock.utc()
    return [row for row in bot.runtime.store.pending_for_job(job.id) if row.not_before <= now]

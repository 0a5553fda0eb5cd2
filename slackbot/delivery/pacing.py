"""Posting pace per channel: about one message per second, and a 429's Retry-After, across every replica.

`ChannelSlots` keeps each channel's next free moment in the database (the `channel_slots` table): taking the
slot is a conditional UPDATE, so of several replicas wanting the same channel at the same moment exactly one
gets it, and the others learn when to come back. `Pacer` is what the notifier asks before each post; it also
remembers the slots in this process, so a channel known to be busy costs no database round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from slackbot.delivery.slack_post import Busy, RateLimited, call
from slackbot.jobs.db import writing
from slackbot.jobs.schema import channel_slots


class ChannelSlots:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def take(self, channel: str, now: datetime, interval: timedelta) -> datetime | None:
        """Take the channel's slot for a post now: None if taken (the channel is then ours until now + interval),
        else the moment the channel is free."""
        with writing(self.engine) as conn:
            _add_if_missing(conn, channel, now - interval)
            taken = conn.execute(
                update(channel_slots)
                .where(channel_slots.c.channel_id == channel, channel_slots.c.free_at <= now)
                .values(free_at=now + interval)
            ).rowcount
            if taken:
                return None
            free_at: datetime = conn.execute(
                select(channel_slots.c.free_at).where(channel_slots.c.channel_id == channel)
            ).scalar_one()
            return free_at

    def hold(self, channel: str, until: datetime) -> None:
        """Nobody posts to the channel before `until` (Slack answered 429 with a Retry-After)."""
        with writing(self.engine) as conn:
            _add_if_missing(conn, channel, until)
            conn.execute(
                update(channel_slots)
                .where(channel_slots.c.channel_id == channel, channel_slots.c.free_at < until)
                .values(free_at=until)
            )


def _add_if_missing(conn: Connection, channel: str, free_at: datetime) -> None:
    """The channel's row, with `free_at`, unless it has one already."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(channel_slots)
        .values(channel_id=channel, free_at=free_at)
        .on_conflict_do_nothing(index_elements=["channel_id"])
    )


class Pacer:
    """About one post per `interval` per channel. With `slots`, shared by every replica using that database;
    without, tracked in this process only."""

    def __init__(
        self, clock: Callable[[], datetime], interval_seconds: float, slots: ChannelSlots | None = None
    ) -> None:
        self.clock = clock
        self.interval = timedelta(seconds=interval_seconds)
        self._slots = slots
        self._free_at: dict[str, datetime] = {}  # known busy until
        self._held: dict[str, datetime] = {}  # slots we took and have not posted in yet, until when

    def check(self, channel: str) -> None:
        """Return if this process may post to the channel now (taking its slot); else raise Busy(until).

        Checking again before `posted` (e.g. after a join, or card update then post) keeps the slot taken.
        """
        now = self.clock()
        held = self._held.get(channel)
        if held is not None and held > now:
            return
        free_at = self._free_at.get(channel)
        if free_at is None or free_at <= now:
            free_at = self._slots.take(channel, now, self.interval) if self._slots is not None else None
            if free_at is None or free_at <= now:
                self._held[channel] = now + self.interval
                return
            self._free_at[channel] = free_at
        raise Busy(free_at)

    def posted(self, channel: str) -> None:
        """A post went out: the channel's next slot counts from now (the post may have left well after the slot
        was taken, e.g. behind a card update), for every replica."""
        self._held.pop(channel, None)
        free_at = self.clock() + self.interval
        self._free_at[channel] = free_at
        if self._slots is not None:
            self._slots.hold(channel, free_at)

    def call(self, client: WebClient, method: str, channel: str, /, **kwargs: Any) -> Any:
        """`slack_post.call`, with a 429 turned into a pause of that channel alone (raised as Busy)."""
        try:
            return call(client, method, channel, **kwargs)
        except RateLimited as limited:
            raise Busy(self.rate_limited(channel, limited.retry_after)) from None

    def rate_limited(self, channel: str, seconds: float) -> datetime:
        """Slack answered 429: nobody posts to the channel for `seconds`; the moment it frees up."""
        until = self.clock() + timedelta(seconds=seconds)
        self._held.pop(channel, None)
        self._free_at[channel] = max(until, self._free_at.get(channel, until))
        if self._slots is not None:
            self._slots.hold(channel, until)
        return until

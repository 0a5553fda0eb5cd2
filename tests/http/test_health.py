"""/healthz reads without the write lock: it answers at once while a writer holds the database."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import text

from slackbot.demo import OfflineBot
from slackbot.jobs.db import writing


def test_healthz_answers_while_a_writer_holds_the_database(bot: OfflineBot) -> None:
    bot.runtime.start()
    healthz = bot.server.url.removesuffix("/slack/events") + "/healthz"
    assert httpx.get(healthz, timeout=5).json() == {"ok": True, "database": True, "scheduler": True}
    with writing(bot.runtime.engine) as conn:  # a write transaction (BEGIN IMMEDIATE), left open
        conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
        started = time.monotonic()
        answer = httpx.get(healthz, timeout=5)
        elapsed = time.monotonic() - started
    # Answered, and healthy, while the writer still holds the database: it did not wait for the write lock (behind
    # the writer it would wait out SQLite's 10 s busy timeout, and this client gives up after 5 s).
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ok": True, "database": True, "scheduler": True}
    # A correctness bound, not a benchmark (well under the busy timeout, loose enough for a loaded CI machine).
    assert elapsed < 3.0

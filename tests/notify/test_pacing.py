"""One message per second per channel across replicas: the slot table, and two notifiers sharing a channel."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

from slackbot.delivery.pacing import ChannelSlots
from slackbot.jobs.store import JobStore
from tests.jobs.helpers import T0
from tests.notify.conftest import Env

SECOND = timedelta(seconds=1)


def test_a_slot_is_taken_once_and_a_hold_is_kept(store: JobStore) -> None:
    slots = ChannelSlots(store.engine)
    assert slots.take("C1", T0, SECOND) is None
    assert slots.take("C1", T0, SECOND) == T0 + SECOND  # taken: come back then
    assert slots.take("C2", T0, SECOND) is None  # another channel has its own pace
    assert slots.take("C1", T0 + SECOND, SECOND) is None
    slots.hold("C1", T0 + 30 * SECOND)  # a 429 with Retry-After
    assert slots.take("C1", T0 + 5 * SECOND, SECOND) == T0 + 30 * SECOND
    slots.hold("C1", T0 + 10 * SECOND)  # an earlier hold never shortens a later one
    assert slots.take("C1", T0 + 29 * SECOND, SECOND) == T0 + 30 * SECOND
    assert slots.take("C1", T0 + 30 * SECOND, SECOND) is None
    slots.hold("C3", T0 + 3 * SECOND)  # a channel never posted to can be held too
    assert slots.take("C3", T0, SECOND) == T0 + 3 * SECOND


def test_racing_replicas_get_one_slot(store: JobStore) -> None:
    slots = ChannelSlots(store.engine)
    barrier = threading.Barrier(8)
    results: list[object] = []
    lock = threading.Lock()

    def take() -> None:
        barrier.wait()
        got = slots.take("C1", T0, SECOND)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results.count(None) == 1
    assert [r for r in results if r is not None] == [T0 + SECOND] * 7


def test_two_replicas_keep_one_channel_at_one_post_per_second(env: Env) -> None:
    """Two notifiers (as in two replicas) deliver 12 cards to one channel, ticking at the same moments: together
    they post at most one message a second, and Slack never answers 429."""
    # Small batches, so that both replicas hold rows of the channel at the same moments.
    first, second = env.notifier("replica-1", batch_size=3), env.notifier("replica-2", batch_size=3)
    jobs = [env.new_job(f"pace-{i}").id for i in range(12)]
    sent_by = {"replica-1": 0, "replica-2": 0}
    for _ in range(200):
        for notifier in (first, second) if int(env.clock.now()) % 2 == 0 else (second, first):
            sent_by[notifier.owner] += notifier.deliver_due().sent
        if env.idle():
            break
        env.advance(0.25)
    assert env.idle()
    posts = env.slack.calls_to("chat.postMessage")
    assert [c.status for c in posts] == [200] * len(jobs), "no 429: the replicas shared the channel's pace"
    assert {str(m["text"]).split(":")[0] for m in env.posts("C0GENERAL")} == {f"Fine-tune pace-{i}" for i in range(12)}
    times = sorted(c.at for c in posts)
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1.0
    assert sent_by["replica-1"] > 0 and sent_by["replica-2"] > 0, sent_by
    assert len(jobs) == sum(sent_by.values())


def test_rows_waiting_for_a_busy_channel_are_left_alone(env: Env) -> None:
    """A backlog of cards in one channel: each round claims only the channel's next row once it is free, so the
    waiting rows are never claimed and put back (no write per waiting row), and a quiet channel is not held up."""
    from sqlalchemy import select

    from slackbot.jobs.schema import outbox

    notifier = env.notifier()
    busy = [env.new_job(f"backlog-{i}").id for i in range(20)]
    first = notifier.deliver_due()
    assert (first.sent, first.deferred) == (1, 0)
    assert first.wake_in == 1.0, "the next card may go when the channel's second is up: run again then"
    quiet = env.new_job("elsewhere", channel="C0RANDOM").id
    again = notifier.deliver_due()  # same instant: C0GENERAL is still busy
    assert (again.sent, again.deferred) == (1, 0), "only the other channel's card went, and nothing was claimed"
    assert env.job(quiet).card_ts is not None

    def untouched() -> list[tuple[int, int]]:
        query = select(outbox.c.job_id, outbox.c.attempts).where(outbox.c.state == "pending")
        with env.store.engine.connect() as conn:
            return [(row.job_id, row.attempts) for row in conn.execute(query)]

    assert untouched() == [(job_id, 0) for job_id in busy[1:]]
    for _ in range(8):  # two seconds, in the scheduler's quarter-second ticks: two more cards
        env.advance(0.25)
        notifier.deliver_due()
    assert [job_id for job_id, _ in untouched()] == busy[3:]
    assert all(attempts == 0 for _, attempts in untouched())
    env.run(notifier, 30, step=0.25)
    assert env.idle() and notifier.deliver_due().wake_in is None  # nothing waits: the timer alone

"""Delivers outbox rows to Slack: the status card, one thread reply per transition, refusals, expiry notices.

Outbox rows hold typed events (slackbot.domain.events), written by the store in the same transaction as the change
they describe; each row's dedupe key makes it told once:
  PostCard / TrackingStarted   key card:post     — post the status card; `PostCard(adopted=True)`: a rejected
      job's model appeared after all, so the refusal told becomes the card (chat.update; a new card if that
      message cannot be edited)
  Transition                   key reply:<STATUS> — reply + update the card
  Rejected                     key rejected:<n>   — refusal + "Edit and retry"
  Expired                      key reply:EXPIRED  — reply + update the card
  Notice                       key notice:<what>  — a reply of ours, once
  Adopted                      key adopted        — reply "was started after all"
  FeedEvents                   key events:<n>     — one reply for the notable events one read of the log brought
  LossChart                    key chart:<n>, chart:final — upload the loss curve to the thread (chart_lane.py)
  CardRefresh                  key card:details  — redraw the card with newer details, nothing posted
Text is rendered at delivery time from the payload and the job's CURRENT row, so a late card update can never
show an old state. This module dispatches on the event and posts and marks rows; the card's redraws are in
card_updates.py, the loss-chart uploads in chart_lane.py.

Guarantees:
- Rows of one job go out in id order; a row waits while an earlier one of its job is undelivered.
- About one post per second per channel, across replicas (delivery/pacing.py); a 429 pauses only the channel it
  came from, for every replica (the WebClient must not sleep on 429s itself, so RateLimitErrorRetryHandler is
  stripped from the clients used here).
- A run claims only the first due row of each channel free to post in, and says when the next busy channel
  frees up (`DeliveryReport.wake_in`) so the scheduler runs it again right then: rows waiting on a busy channel
  cost nothing, and a burst leaves at the channel's pace.
- Exactly once across crashes: every post carries message metadata naming its outbox row. A row claimed again
  after an attempt that may have reached Slack (attempts > 1: a crash, a dropped connection) is first looked
  for in the channel/thread (among the messages newer than the row, however long the thread); if found it is
  marked sent with that ts instead of being posted again.
- Exactly once across slow notifiers: claims run on the database's clock, and right before each post the claim
  is re-confirmed (still ours, extended): a notifier stalled past its claim while another took the row over
  posts nothing. Outcomes (sent, retry, dead) are recorded only by the claim's owner.
  chat.postMessage is never retried blindly by the SDK for the same reason; chat.update is idempotent.
- Unusable channels fall back: not_in_channel → conversations.join and retry; otherwise a DM to the requester
  saying why. A card that fell back to a DM moves the job's thread to that DM.
- Transient failures back off; after `max_attempts` claims a row is marked dead and logged, never dropped.
- Replies first, charts when there is room: chart rows sit on the upload lane (`feed_store.UPLOAD_LANE`), whose
  slot is the workspace's upload budget, so a claim takes at most one chart per free upload slot and never in a
  reply's place; a reply never waits for an earlier chart of its job; in a run, charts go after the replies.
  A chart is drawn when it goes, from the points kept then, and not uploaded if a chart shown already has them.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

from slackbot.blocks.adopted import adopted_reply
from slackbot.blocks.card import Rendered, status_card
from slackbot.blocks.events import feed_reply
from slackbot.blocks.replies import control_reply, expired_reply, rejected_message, transition_reply
from slackbot.delivery.card_updates import CardUpdates
from slackbot.delivery.chart_lane import ChartLane
from slackbot.delivery.config import NotifierConfig
from slackbot.delivery.pacing import ChannelSlots, Pacer
from slackbot.delivery.slack_post import (
    METADATA_EVENT,
    Busy,
    Fatal,
    Lost,
    Posted,
    Target,
    Transient,
    Unusable,
    delivery_metadata,
    find_delivered,
)
from slackbot.domain.events import (
    Adopted,
    CancelRequested,
    CardRefresh,
    EventError,
    Expired,
    FeedEvents,
    LossChart,
    ModelDeleted,
    Notice,
    OutboxKind,
    PostCard,
    Rejected,
    TrackingStarted,
    Transition,
)
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs import outbox as outbox_q
from slackbot.jobs.records import JobRecord, OutboxRecord
from slackbot.jobs.schema import OutboxState
from slackbot.jobs.store import JobStore
from slackbot.retry import backoff

__all__ = ["METADATA_EVENT", "DeliveryReport", "Notifier", "NotifierConfig"]

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    sent: int = 0
    reconciled: int = 0  # found already posted by an earlier attempt, or done with nothing to post
    deferred: int = 0  # paced, rate limited or waiting for an earlier row of the job
    retried: int = 0
    dead: int = 0
    fallbacks: int = 0
    lost: int = 0  # claims another notifier took over while this one was slow: nothing posted, nothing marked
    errors: list[str] = field(default_factory=list)
    # Seconds until a busy channel frees up for a row waiting on it (None: nothing waits on a busy channel):
    # the scheduler runs the notifier again then, not on its next tick after.
    wake_in: float | None = None

    def add(self, other: DeliveryReport) -> None:
        for name in ("sent", "reconciled", "deferred", "retried", "dead", "fallbacks", "lost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


class Notifier:
    def __init__(
        self,
        store: JobStore,
        slack: WebClient,
        owner: str,
        clock: Callable[[], datetime],
        config: NotifierConfig | None = None,
    ) -> None:
        self.store = store
        self.owner = owner
        self.clock = clock
        self.config = config or NotifierConfig()
        handlers = [h for h in slack.retry_handlers if not isinstance(h, RateLimitErrorRetryHandler)]
        # Reads, joins and chat.update may be retried on a dropped connection; posts may not (it may have
        # gone through, and only reconciliation can tell), so they use a copy without retry handlers.
        self._slack = copy.copy(slack)
        self._slack.retry_handlers = handlers
        self._poster = copy.copy(slack)
        self._poster.retry_handlers = []
        # Shared through the database: several replicas together keep a channel at about one post a second.
        self._pacer = Pacer(clock, self.config.post_interval_seconds, ChannelSlots(store.engine))
        api_bases = {"openpipe": self.config.openpipe_api_base, **self.config.api_bases}
        self._cards = CardUpdates(self._slack, self._pacer, clock, api_bases, store.control_note)
        self._charts = ChartLane(store, owner, self.config, clock, self._slack, self._poster, self._pacer)
        # deliver_job runs in a listener's thread while the scheduler runs deliver_due: one at a time.
        self._lock = threading.Lock()
        # Told each job whose transition was just delivered (the wiring refreshes Home tabs: delivery/home.py).
        self.on_transition: Callable[[JobRecord], object] = lambda job: None

    # --- entry points -------------------------------------------------------------------------------------

    def deliver_due(self) -> DeliveryReport:
        """Deliver every due outbox row that may go out now (up to the batch size), paced per channel."""
        return self._deliver_free()

    def deliver_job(self, job_id: int) -> DeliveryReport:
        """Deliver one job's due rows now (e.g. the card right after a submit)."""
        return self._deliver_free(job_id)

    def _deliver_free(self, job_id: int | None = None) -> DeliveryReport:
        """Claim the first due row of each channel free to post in, deliver them, and go again while that
        sends something (with no pacing, a channel is free again at once).

        Rows waiting for a busy channel are left alone in the database rather than claimed and put back, so a
        backlog of hundreds of cards in one channel costs one read per round.
        """
        report = DeliveryReport()
        claimed = 0
        while claimed < self.config.batch_size:
            rows = self.store.claim_deliveries(
                self.owner,
                self.clock(),
                self.config.batch_size - claimed,
                self.config.lease_seconds,
                job_id=job_id,
                one_per_free_channel=True,
            )
            if not rows:
                break
            claimed += len(rows)
            done = self._deliver(rows)
            report.add(done)
            if done.sent + done.reconciled == 0:
                break
        if job_id is None:
            now = self.clock()
            free = outbox_q.next_channel_free(self.store.engine, now)
            report.wake_in = None if free is None else (free - now).total_seconds()
        return report

    def _deliver(self, rows: list[OutboxRecord]) -> DeliveryReport:
        report = DeliveryReport()
        # Replies first: a chart (a render and three calls) never holds up a reply claimed in the same run.
        ordered = sorted(rows, key=lambda r: r.kind == OutboxKind.CHART)
        with self._lock:
            for row in ordered:
                self._deliver_row(row, report)
        return report

    # --- one row ------------------------------------------------------------------------------------------

    def _deliver_row(self, row: OutboxRecord, report: DeliveryReport) -> None:
        now = self.clock()
        job = self.store.get(row.job_id)
        if job is None:
            self._dead(row, "the job no longer exists", report)
            return
        try:
            # Capped: an earlier row in flight at another replica is usually done long before its lease ends.
            recheck = now + timedelta(seconds=self.config.order_recheck_seconds)
            chart = row.kind == OutboxKind.CHART
            earlier = outbox_q.blocked_until(self.store.engine, row.job_id, row.id, recheck, chart=chart)
            if earlier is not None:
                raise Busy(min(max(earlier, now), recheck))
            try:
                event = row.event
            except EventError as exc:
                raise Fatal(str(exc)) from None
            match event:
                case PostCard() | TrackingStarted():
                    self._post_card(job, row, event, report)
                case Transition():
                    self._transition(job, row, event, report)
                case Rejected():  # in the channel (or the thread it was asked in): the job has no card
                    target = Target(job.channel_id, job.thread_ts)
                    self._sent(row, self._post(job, row, target, rejected_message(job, event)), report)
                case Adopted():
                    self._adopted(job, row, event, report)
                case Expired():
                    self._redraw_and_reply(job, row, lambda: expired_reply(job, event), report)
                case CancelRequested() | ModelDeleted():  # the card's Cancel or Delete: who, and the card redrawn
                    self._redraw_and_reply(job, row, lambda: control_reply(job, event), report)
                case Notice():  # a fixed text of ours, e.g. the tracker's "model list too large"
                    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": event.text}}]
                    self._sent(row, self._post(job, row, self._reply_target(job), (event.text, blocks)), report)
                case FeedEvents():
                    self._sent(row, self._post(job, row, self._reply_target(job), feed_reply(job, event)), report)
                case LossChart():
                    self._sent(row, self._charts.deliver(job, row, event, self._reply_target(job)), report)
                case CardRefresh():  # newer details: the card redrawn, nothing posted
                    self._sent(row, self._cards.refresh(job), report)
        except Busy as busy:
            outbox_q.release(self.store.engine, row.id, self.owner, busy.until)
            report.deferred += 1
        except Lost:
            report.lost += 1
            log.warning("claim lost to another notifier; not posted", extra={"outbox_id": row.id, "job_id": row.job_id})
        except Transient as exc:
            self._retry(row, str(exc), now, report)
        except Unusable as exc:
            self._dead(row, f"{exc.error} in {exc.channel}, and no fallback worked", report)
        except Fatal as exc:
            self._dead(row, str(exc), report)
        except Exception as exc:
            # A bug or an unexpected answer must not stall the batch, nor retry one row forever.
            log.exception("delivery failed unexpectedly", extra={"outbox_id": row.id, "job_id": row.job_id})
            self._retry(row, f"unexpected {type(exc).__name__}", now, report)

    def _post_card(
        self, job: JobRecord, row: OutboxRecord, event: PostCard | TrackingStarted, report: DeliveryReport
    ) -> None:
        if job.card_ts is not None and job.card_channel_id is not None:
            # Recorded only after a successful post: an earlier attempt died before marking the row sent.
            self._sent(row, Posted(job.card_channel_id, job.card_ts, reconciled=True), report)
            return
        card = status_card(job, self.clock(), self._cards.api_base(job))
        told = self._told_refusal(job) if isinstance(event, PostCard) and event.adopted else None
        if told is not None and self._cards.edit(job.channel_id, told, card):
            # The "was not started" message becomes the card: its wrong words and its "Edit and retry" button (which
            # would start the model a second time) are gone, and its thread is the job's thread from now on.
            self.store.record_card(job.id, job.channel_id, told)
            self._sent(row, Posted(job.channel_id, told), report)
            return
        posted = self._post(job, row, Target(job.channel_id, job.thread_ts), card)
        # Recorded before mark_sent: if we die in between, the row is reconciled and recorded again.
        self.store.record_card(job.id, posted.channel, posted.ts, posted.ts if posted.fell_back else None)
        self._sent(row, posted, report)

    def _transition(self, job: JobRecord, row: OutboxRecord, event: Transition, report: DeliveryReport) -> None:
        last = event.to_lifecycle.is_terminal  # nothing more will be posted: the requester is mentioned
        api_base = self._cards.api_base(job) or ""
        failed = event.to_lifecycle is Lifecycle.FAILED
        broadcast = failed and self.config.broadcast_failures and self._reply_target(job).thread_ts is not None
        self._redraw_and_reply(
            job,
            row,
            lambda: transition_reply(job, event, self.clock(), last, api_base=api_base),
            report,
            broadcast=broadcast,
        )
        self.on_transition(job)

    def _adopted(self, job: JobRecord, row: OutboxRecord, event: Adopted, report: DeliveryReport) -> None:
        """Say the model was started after all, in the card's thread; nothing to correct if no refusal was told."""
        if self._told_refusal(job) is None:
            self._sent(row, None, report)
            return
        self._redraw_and_reply(job, row, lambda: adopted_reply(job, event), report)

    def _redraw_and_reply(
        self,
        job: JobRecord,
        row: OutboxRecord,
        render: Callable[[], Rendered],
        report: DeliveryReport,
        *,
        broadcast: bool = False,
    ) -> None:
        """Redraw the card, then post the reply (rendered after the redraw) in its thread. The channel's slot is
        taken first, so a row that has to wait costs no API call."""
        target = self._reply_target(job)
        self._pacer.check(target.channel)
        self._cards.update(job)
        self._sent(row, self._post(job, row, target, render(), broadcast), report)

    def _told_refusal(self, job: JobRecord) -> str | None:
        """The ts of the last refusal of the job that was posted, if any."""
        rows = self.store.outbox_for_job(job.id)
        told = [r.sent_ts for r in rows if r.kind is OutboxKind.REJECTED and r.state is OutboxState.SENT]
        return next((ts for ts in reversed(told) if ts), None)

    def _reply_target(self, job: JobRecord) -> Target:
        return Target(job.card_channel_id or job.channel_id, job.thread_ts or job.card_ts)

    # --- posting with reconciliation and fallbacks -------------------------------------------------------

    def _post(
        self, job: JobRecord, row: OutboxRecord, target: Target, message: Rendered, broadcast: bool = False
    ) -> Posted:
        """Post once, wherever it can go: the target, the target once joined, or a DM to the requester."""
        try:
            return self._post_once(job, row, target, message, broadcast)
        except Unusable as exc:
            if exc.error == "not_in_channel" and self._join(target.channel):
                return self._post_once(job, row, target, message, broadcast)
            reason = exc.error
        dm = self._open_dm(job.requester_id)
        text, blocks = message
        note = f":information_source: I could not post in <#{target.channel}> ({reason}), so it comes here."
        dm_blocks = [*blocks, ContextBlock(elements=[MarkdownTextObject(text=note)]).to_dict()]
        posted = self._post_once(job, row, Target(dm, None), (f"{text}\n{note}", dm_blocks), False)
        log.info("delivered by DM", extra={"outbox_id": row.id, "job_id": job.id, "reason": reason})
        return Posted(dm, posted.ts, fell_back=True, reconciled=posted.reconciled)

    def _post_once(
        self, job: JobRecord, row: OutboxRecord, target: Target, message: Rendered, broadcast: bool
    ) -> Posted:
        self._pacer.check(target.channel)
        if row.attempts > 1:
            since = self.config.reconcile_since(row.created_at)
            found = find_delivered(
                self._slack, target.channel, target.thread_ts, row.id, since, self.config.history_pages
            )
            if found is not None:
                return Posted(target.channel, found, reconciled=True)
        text, blocks = message
        kwargs: dict[str, Any] = {
            "channel": target.channel,
            "text": text,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": delivery_metadata(row.id, job.id),
        }
        if target.thread_ts is not None:
            kwargs["thread_ts"] = target.thread_ts
            if broadcast:
                kwargs["reply_broadcast"] = True
        # Last moment to find out that a slow attempt (a slow card update, a slow reconciliation) outlived the
        # claim and another notifier has the row now: then it is theirs to post.
        if not self.store.reconfirm_delivery(row.id, self.owner, self.config.lease_seconds):
            raise Lost
        response = self._pacer.call(self._poster, "chat_postMessage", target.channel, **kwargs)
        self._pacer.posted(target.channel)
        return Posted(target.channel, str(response["ts"]))

    def _join(self, channel: str) -> bool:
        try:
            self._pacer.call(self._slack, "conversations_join", channel, channel=channel)
        except (Unusable, Fatal):
            return False  # private channels cannot be joined by the bot
        return True

    def _open_dm(self, user_id: str) -> str:
        try:
            response = self._pacer.call(self._slack, "conversations_open", user_id, users=user_id)
        except Unusable as exc:
            raise Fatal(f"cannot open a DM with the requester: {exc.error}") from None
        return str(response["channel"]["id"])

    # --- outcomes -----------------------------------------------------------------------------------------

    def _sent(self, row: OutboxRecord, posted: Posted | None, report: DeliveryReport) -> None:
        """Mark the row sent where it was `posted`; None: done with nothing to post (nothing new to show)."""
        if posted is None:
            self.store.mark_sent(row.id, None, self.clock(), owner=self.owner)
            report.reconciled += 1
            return
        if not self.store.mark_sent(row.id, posted.ts, self.clock(), owner=self.owner):
            # Posted under a claim that ran out meanwhile: whoever holds the row now finds this post by its metadata.
            log.warning("sent, but the claim had passed to another notifier", extra={"outbox_id": row.id})
        if posted.reconciled:
            report.reconciled += 1
        else:
            report.sent += 1
        if posted.fell_back:
            report.fallbacks += 1

    def _retry(self, row: OutboxRecord, error: str, now: datetime, report: DeliveryReport) -> None:
        if row.attempts >= self.config.max_attempts:
            self._dead(row, f"gave up after {row.attempts} attempts: {error}", report)
            return
        delay = backoff(row.attempts, base=self.config.backoff_base_seconds, cap=self.config.backoff_max_seconds)
        self.store.mark_retry(row.id, now + timedelta(seconds=delay), error, owner=self.owner)
        report.retried += 1
        log.info("delivery will be retried", extra={"outbox_id": row.id, "error": error, "in_s": delay})

    def _dead(self, row: OutboxRecord, error: str, report: DeliveryReport) -> None:
        self.store.mark_dead(row.id, error, owner=self.owner)
        report.dead += 1
        report.errors.append(f"outbox {row.id} (job {row.job_id}): {error}")
        log.error("delivery failed for good", extra={"outbox_id": row.id, "job_id": row.job_id, "error": error})

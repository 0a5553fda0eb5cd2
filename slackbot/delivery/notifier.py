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
  LossChart                    key chart:<n>, chart:final — upload the loss curve to the thread (delivery/uploads.py)
Text is rendered at delivery time from the payload and the job's CURRENT row, so a late card update can never
show an old state.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

from slackbot.blocks.adopted import adopted_reply
from slackbot.blocks.card import OPENPIPE_API_BASE, status_card
from slackbot.blocks.events import feed_reply
from slackbot.blocks.replies import control_reply, expired_reply, rejected_message, transition_reply
from slackbot.delivery import uploads
from slackbot.delivery.charts import loss_chart
from slackbot.delivery.pacing import ChannelSlots, Pacer
from slackbot.delivery.slack_post import (
    METADATA_EVENT,
    Busy,
    Fatal,
    RateLimited,
    Transient,
    Unusable,
    call,
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
from slackbot.jobs import feed_store
from slackbot.jobs import outbox as outbox_q
from slackbot.jobs.records import JobRecord, OutboxRecord
from slackbot.jobs.schema import OutboxState
from slackbot.jobs.store import JobStore
from slackbot.retry import backoff

__all__ = ["METADATA_EVENT", "DeliveryReport", "Notifier", "NotifierConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifierConfig:
    broadcast_failures: bool = True
    post_interval_seconds: float = 1.0  # per channel
    batch_size: int = 50
    lease_seconds: float = 120.0
    max_attempts: int = 8
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    # Reconciliation reads the messages posted since the row was written (less this margin, for the writer's and
    # Slack's clocks to differ), up to this many pages of 200: only a thread flooded with more than that many
    # messages since the row was written is not searched to its end.
    reconcile_margin_seconds: float = 600.0
    history_pages: int = 50
    order_recheck_seconds: float = 5.0  # how soon a row waiting for an earlier row of its job looks again
    openpipe_api_base: str = OPENPIPE_API_BASE  # OPENPIPE_BASE_URL, for the card's curl example
    # Each backend's base URL by name (credentials removed), for its cards' example request.
    api_bases: Mapping[str, str] = field(default_factory=dict)
    upload_interval_seconds: float = uploads.UPLOAD_INTERVAL_SECONDS  # the workspace's pace of chart uploads


@dataclass
class DeliveryReport:
    sent: int = 0
    reconciled: int = 0  # found already posted by an earlier attempt
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


class _Lost(Exception):
    """The row's claim passed to another notifier: this one must not post it nor record an outcome."""


@dataclass(frozen=True)
class _Target:
    channel: str
    thread_ts: str | None


@dataclass(frozen=True)
class _Posted:
    channel: str
    ts: str
    fell_back: bool = False
    reconciled: bool = False  # an earlier attempt had posted it already


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
        # The workspace's upload budget: one slot (the upload lane's), shared the same way by every replica.
        self._uploads = Pacer(clock, self.config.upload_interval_seconds, ChannelSlots(store.engine))
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
                case Rejected():
                    text, blocks = rejected_message(job, event)
                    self._post_and_mark(job, row, _Target(job.channel_id, job.thread_ts), text, blocks, report)
                case Adopted():
                    self._adopted(job, row, event, report)
                case Expired():
                    self._pacer.check(self._reply_target(job).channel)
                    self._update_card(job)
                    text, blocks = expired_reply(job, event)
                    self._post_and_mark(job, row, self._reply_target(job), text, blocks, report)
                case CancelRequested() | ModelDeleted():  # the card's Cancel or Delete: who, and the card redrawn
                    target = self._reply_target(job)
                    self._pacer.check(target.channel)
                    self._update_card(job, note=event)
                    text, blocks = control_reply(job, event)
                    self._post_and_mark(job, row, target, text, blocks, report)
                case Notice():  # a fixed text of ours, e.g. the tracker's "model list too large"
                    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": event.text}}]
                    self._post_and_mark(job, row, self._reply_target(job), event.text, blocks, report)
                case FeedEvents():
                    text, blocks = feed_reply(job, event)
                    self._post_and_mark(job, row, self._reply_target(job), text, blocks, report)
                case LossChart():
                    self._chart(job, row, event, report)
                case CardRefresh():  # newer details: the card redrawn, nothing posted
                    if job.card_ts is not None and job.card_channel_id is not None:
                        self._update_card(job)
                    self._sent(row, _Posted(job.card_channel_id or job.channel_id, job.card_ts or ""), report)
        except Busy as busy:
            outbox_q.release(self.store.engine, row.id, self.owner, busy.until)
            report.deferred += 1
        except _Lost:
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
            self._sent(row, _Posted(job.card_channel_id, job.card_ts, reconciled=True), report)
            return
        text, blocks = status_card(job, self.clock(), self._api_base(job))
        told = self._told_refusal(job) if isinstance(event, PostCard) and event.adopted else None
        if told is not None and self._edit(job.channel_id, told, text, blocks):
            # The "was not started" message becomes the card: its wrong words and its "Edit and retry" button (which
            # would start the model a second time) are gone, and its thread is the job's thread from now on.
            self.store.record_card(job.id, job.channel_id, told)
            self._sent(row, _Posted(job.channel_id, told), report)
            return
        posted = self._post(job, row, _Target(job.channel_id, job.thread_ts), text, blocks)
        # Recorded before mark_sent: if we die in between, the row is reconciled and recorded again.
        self.store.record_card(job.id, posted.channel, posted.ts, posted.ts if posted.fell_back else None)
        self._sent(row, posted, report)

    def _transition(self, job: JobRecord, row: OutboxRecord, event: Transition, report: DeliveryReport) -> None:
        target = self._reply_target(job)
        self._pacer.check(target.channel)  # before the card update, so a waiting row costs no API call
        self._update_card(job)
        last = event.to_lifecycle.is_terminal  # nothing more will be posted: the requester is mentioned
        text, blocks = transition_reply(job, event, self.clock(), last, api_base=self._api_base(job) or "")
        failed = event.to_lifecycle is Lifecycle.FAILED
        broadcast = failed and self.config.broadcast_failures and target.thread_ts is not None
        self._post_and_mark(job, row, target, text, blocks, report, broadcast=broadcast)
        self.on_transition(job)

    def _post_and_mark(
        self,
        job: JobRecord,
        row: OutboxRecord,
        target: _Target,
        text: str,
        blocks: list[dict[str, Any]],
        report: DeliveryReport,
        broadcast: bool = False,
    ) -> None:
        self._sent(row, self._post(job, row, target, text, blocks, broadcast), report)

    def _adopted(self, job: JobRecord, row: OutboxRecord, event: Adopted, report: DeliveryReport) -> None:
        """Say the model was started after all, in the card's thread; nothing to correct if no refusal was told."""
        if self._told_refusal(job) is None:
            self.store.mark_sent(row.id, None, self.clock(), owner=self.owner)
            report.reconciled += 1  # done, with nothing to post
            return
        target = self._reply_target(job)
        self._pacer.check(target.channel)
        self._update_card(job)
        text, blocks = adopted_reply(job, event)
        self._post_and_mark(job, row, target, text, blocks, report)

    def _chart(self, job: JobRecord, row: OutboxRecord, event: LossChart, report: DeliveryReport) -> None:
        """Upload the job's loss curve as it is now, unless a chart in Slack already shows every step of it."""
        engine = self.store.engine
        points, charted = feed_store.chart_data(engine, job.id)
        last = max((p[0] for p in points), default=None)
        if last is None or (charted is not None and last <= charted):
            self.store.mark_sent(row.id, None, self.clock(), owner=self.owner)
            report.reconciled += 1  # done, with nothing new to show
            return
        target = self._reply_target(job)
        self._pacer.check(target.channel)  # the file's share is a message in the channel
        self._uploads.check(feed_store.UPLOAD_LANE)
        name = uploads.filename(job.id, row.id)
        if row.attempts > 1:
            since = row.created_at - timedelta(seconds=self.config.reconcile_margin_seconds)
            try:
                found = uploads.find_uploaded(
                    self._slack, target.channel, target.thread_ts, name, since, self.config.history_pages
                )
            except RateLimited as limited:
                raise Busy(self._pacer.rate_limited(target.channel, limited.retry_after)) from None
            if found is not None:
                feed_store.mark_charted(engine, job.id, event.through_step)
                self._sent(row, _Posted(target.channel, found, reconciled=True), report)
                return
        chart = loss_chart(job.slug, points, final=event.final)
        if not self.store.reconfirm_delivery(row.id, self.owner, self.config.lease_seconds):
            raise _Lost
        try:
            file_id = uploads.upload_chart(self._poster, target.channel, target.thread_ts, chart, name)
        except RateLimited as limited:
            # files.* are rated per workspace: every replica's uploads wait, the channel's replies do not.
            raise Busy(self._uploads.rate_limited(feed_store.UPLOAD_LANE, limited.retry_after)) from None
        self._uploads.posted(feed_store.UPLOAD_LANE)
        self._pacer.posted(target.channel)
        feed_store.mark_charted(engine, job.id, chart.last_step)
        self._sent(row, _Posted(target.channel, file_id), report)

    def _told_refusal(self, job: JobRecord) -> str | None:
        """The ts of the last refusal of the job that was posted, if any."""
        rows = self.store.outbox_for_job(job.id)
        told = [r.sent_ts for r in rows if r.kind is OutboxKind.REJECTED and r.state is OutboxState.SENT]
        return next((ts for ts in reversed(told) if ts), None)

    def _edit(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> bool:
        """chat.update one of our messages; False if it cannot be edited (gone, or in a DM it fell back to)."""
        try:
            self._call_slack(self._slack, "chat_update", channel, channel=channel, ts=ts, text=text, blocks=blocks)
        except (Unusable, Fatal) as exc:
            log.info("message not editable; posting anew", extra={"channel": channel, "error": str(exc)})
            return False
        return True

    def _reply_target(self, job: JobRecord) -> _Target:
        return _Target(job.card_channel_id or job.channel_id, job.thread_ts or job.card_ts)

    def _api_base(self, job: JobRecord) -> str | None:
        """The job's backend's base URL, for the example request (None: not known)."""
        bases = {"openpipe": self.config.openpipe_api_base, **self.config.api_bases}
        return bases.get(job.backend)

    def _update_card(self, job: JobRecord, note: CancelRequested | ModelDeleted | None = None) -> None:
        """Show the job's current state on its card. A card that is gone or not editable is left alone."""
        if job.card_ts is None or job.card_channel_id is None:
            return
        text, blocks = status_card(job, self.clock(), self._api_base(job), note=note)
        try:
            self._call_slack(
                self._slack,
                "chat_update",
                job.card_channel_id,
                channel=job.card_channel_id,
                ts=job.card_ts,
                text=text,
                blocks=blocks,
            )
        except (Unusable, Fatal) as exc:
            log.warning("card not updated", extra={"job_id": job.id, "error": str(exc)})

    # --- posting with reconciliation and fallbacks -------------------------------------------------------

    def _post(
        self,
        job: JobRecord,
        row: OutboxRecord,
        target: _Target,
        text: str,
        blocks: list[dict[str, Any]],
        broadcast: bool = False,
    ) -> _Posted:
        """Post once, wherever it can go: the target, the target once joined, or a DM to the requester."""
        try:
            return self._post_once(job, row, target, text, blocks, broadcast)
        except Unusable as exc:
            if exc.error == "not_in_channel" and self._join(target.channel):
                return self._post_once(job, row, target, text, blocks, broadcast)
            reason = exc.error
        dm = self._open_dm(job.requester_id)
        note = f":information_source: I could not post in <#{target.channel}> ({reason}), so it comes here."
        dm_blocks = [*blocks, ContextBlock(elements=[MarkdownTextObject(text=note)]).to_dict()]
        posted = self._post_once(job, row, _Target(dm, None), f"{text}\n{note}", dm_blocks, False)
        log.info("delivered by DM", extra={"outbox_id": row.id, "job_id": job.id, "reason": reason})
        return _Posted(dm, posted.ts, fell_back=True, reconciled=posted.reconciled)

    def _post_once(
        self,
        job: JobRecord,
        row: OutboxRecord,
        target: _Target,
        text: str,
        blocks: list[dict[str, Any]],
        broadcast: bool,
    ) -> _Posted:
        self._pacer.check(target.channel)
        if row.attempts > 1:
            since = row.created_at - timedelta(seconds=self.config.reconcile_margin_seconds)
            found = find_delivered(
                self._slack, target.channel, target.thread_ts, row.id, since, self.config.history_pages
            )
            if found is not None:
                return _Posted(target.channel, found, reconciled=True)
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
            raise _Lost
        response = self._call_slack(self._poster, "chat_postMessage", target.channel, **kwargs)
        self._pacer.posted(target.channel)
        return _Posted(target.channel, str(response["ts"]))

    def _join(self, channel: str) -> bool:
        try:
            self._call_slack(self._slack, "conversations_join", channel, channel=channel)
        except (Unusable, Fatal):
            return False  # private channels cannot be joined by the bot
        return True

    def _open_dm(self, user_id: str) -> str:
        try:
            response = self._call_slack(self._slack, "conversations_open", user_id, users=user_id)
        except Unusable as exc:
            raise Fatal(f"cannot open a DM with the requester: {exc.error}") from None
        return str(response["channel"]["id"])

    # --- Slack calls, pacing and failure classification --------------------------------------------------

    def _call_slack(self, client: WebClient, method: str, channel: str, /, **kwargs: Any) -> Any:
        """`slack_post.call`, with a 429 turned into a pause of that channel alone."""
        try:
            return call(client, method, channel, **kwargs)
        except RateLimited as limited:
            raise Busy(self._pacer.rate_limited(channel, limited.retry_after)) from None

    # --- outcomes -----------------------------------------------------------------------------------------

    def _sent(self, row: OutboxRecord, posted: _Posted, report: DeliveryReport) -> None:
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

"""The loss-chart lane: a job's `LossChart` row uploads its loss curve into the job's thread.

A chart is drawn when it goes, from the points the feed keeps then (`feed_store.chart_data`), and not uploaded
if a chart already shown has every step of it. Chart rows sit on the upload lane (`feed_store.UPLOAD_LANE`),
whose slot is the workspace's upload budget, shared by every replica: files.* are rated per workspace, so a 429
there pauses every replica's uploads and not the channel's replies. The file's share is a message in the
channel, so the channel's pace is kept too. File shares carry no message metadata: a row claimed again after an
attempt that may have reached Slack first looks for its file by name (uploads.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from slack_sdk import WebClient

from slackbot.delivery import uploads
from slackbot.delivery.charts import loss_chart
from slackbot.delivery.config import NotifierConfig
from slackbot.delivery.pacing import ChannelSlots, Pacer
from slackbot.delivery.slack_post import Busy, Lost, Posted, RateLimited, Target
from slackbot.domain.events import LossChart
from slackbot.jobs import feed_store
from slackbot.jobs.records import JobRecord, OutboxRecord
from slackbot.jobs.store import JobStore


class ChartLane:
    def __init__(
        self,
        store: JobStore,
        owner: str,
        config: NotifierConfig,
        clock: Callable[[], datetime],
        slack: WebClient,
        poster: WebClient,
        pacer: Pacer,
    ) -> None:
        self.store = store
        self.owner = owner
        self.config = config
        # `slack` reads; `poster` uploads, never retried blindly (an upload may have gone through); `pacer` is the
        # channels' pace, shared with the notifier's replies.
        self._slack = slack
        self._poster = poster
        self._pacer = pacer
        # The workspace's upload budget: one slot (the upload lane's), shared through the database.
        self._uploads = Pacer(clock, config.upload_interval_seconds, ChannelSlots(store.engine))

    def deliver(self, job: JobRecord, row: OutboxRecord, event: LossChart, target: Target) -> Posted | None:
        """Upload the job's loss curve as it is now into `target`; None if a chart in Slack already shows every
        step of it. Raises Busy (paced, rate limited), Lost (the claim passed on) or what `slack_post.call` does."""
        engine = self.store.engine
        points, charted = feed_store.chart_data(engine, job.id)
        last = max((p[0] for p in points), default=None)
        if last is None or (charted is not None and last <= charted):
            return None
        self._pacer.check(target.channel)  # the file's share is a message in the channel
        self._uploads.check(feed_store.UPLOAD_LANE)
        name = uploads.filename(job.id, row.id)
        if row.attempts > 1:
            since = self.config.reconcile_since(row.created_at)
            try:
                found = uploads.find_uploaded(
                    self._slack, target.channel, target.thread_ts, name, since, self.config.history_pages
                )
            except RateLimited as limited:
                raise Busy(self._pacer.rate_limited(target.channel, limited.retry_after)) from None
            if found is not None:
                feed_store.mark_charted(engine, job.id, event.through_step)
                return Posted(target.channel, found, reconciled=True)
        chart = loss_chart(job.slug, points, final=event.final)
        if not self.store.reconfirm_delivery(row.id, self.owner, self.config.lease_seconds):
            raise Lost
        try:
            file_id = uploads.upload_chart(self._poster, target.channel, target.thread_ts, chart, name)
        except RateLimited as limited:
            # files.* are rated per workspace: every replica's uploads wait, the channel's replies do not.
            raise Busy(self._uploads.rate_limited(feed_store.UPLOAD_LANE, limited.retry_after)) from None
        self._uploads.posted(feed_store.UPLOAD_LANE)
        self._pacer.posted(target.channel)
        feed_store.mark_charted(engine, job.id, chart.last_step)
        return Posted(target.channel, file_id)

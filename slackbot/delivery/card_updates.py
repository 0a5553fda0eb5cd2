"""Redrawing a job's status card with chat.update, always from the job's CURRENT row (a late redraw can never
show an old state): before a thread reply that changes what it shows, for a `CardRefresh` row (newer details,
nothing posted), and when the refusal told becomes the card of a model adopted after all.

A card that is gone or cannot be edited is left alone (logged): the reply still goes. chat.update is idempotent,
so it may be retried on a dropped connection; a 429 pauses the card's channel (the pacer's `call`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from slack_sdk import WebClient

from slackbot.blocks.card import Rendered, status_card
from slackbot.delivery.pacing import Pacer
from slackbot.delivery.slack_post import Fatal, Posted, Unusable
from slackbot.domain.events import CancelRequested, ModelDeleted
from slackbot.jobs.records import JobRecord

log = logging.getLogger(__name__)


class CardUpdates:
    def __init__(
        self,
        slack: WebClient,
        pacer: Pacer,
        clock: Callable[[], datetime],
        api_bases: Mapping[str, str],
        notes: Callable[[int], CancelRequested | ModelDeleted | None],
    ) -> None:
        self._slack = slack
        # A job's last Cancel or Delete (JobQueries.control_note), shown on every redraw from then on.
        self._notes = notes
        self._pacer = pacer
        self._clock = clock
        self._api_bases = api_bases

    def api_base(self, job: JobRecord) -> str | None:
        """The job's backend's base URL, for the example request (None: not known)."""
        return self._api_bases.get(job.backend)

    def update(self, job: JobRecord) -> None:
        """Show the job's current state on its card. A card that is gone or not editable is left alone."""
        if job.card_ts is None or job.card_channel_id is None:
            return
        text, blocks = status_card(job, self._clock(), self.api_base(job), note=self._notes(job.id))
        try:
            self._pacer.call(
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

    def refresh(self, job: JobRecord) -> Posted:
        """A `CardRefresh` row: the card redrawn with the job's details as they are now, nothing posted."""
        if job.card_ts is not None and job.card_channel_id is not None:
            self.update(job)
        return Posted(job.card_channel_id or job.channel_id, job.card_ts or "")

    def edit(self, channel: str, ts: str, message: Rendered) -> bool:
        """chat.update one of our messages; False if it cannot be edited (gone, or in a DM it fell back to)."""
        text, blocks = message
        try:
            self._pacer.call(self._slack, "chat_update", channel, channel=channel, ts=ts, text=text, blocks=blocks)
        except (Unusable, Fatal) as exc:
            log.info("message not editable; posting anew", extra={"channel": channel, "error": str(exc)})
            return False
        return True

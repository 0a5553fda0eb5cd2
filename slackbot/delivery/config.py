"""The notifier's settings (NotifierConfig), read by the notifier and the lanes it hands rows to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slackbot.blocks.card import OPENPIPE_API_BASE
from slackbot.delivery import uploads


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

    def reconcile_since(self, written_at: datetime) -> datetime:
        """From when to look for an earlier attempt's post of a row written at `written_at`."""
        return written_at - timedelta(seconds=self.reconcile_margin_seconds)

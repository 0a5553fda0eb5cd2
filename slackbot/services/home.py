"""The App Home tab of one user: their recent fine-tunes and the workspace's running ones they may see.

What shows is decided here (visibility as in `/finetune list`: a job of a private channel or a DM only to its
requester; buttons only where the backend can and the user may); the view is built by blocks/home.py. Each
job's line links to its card by permalink, asked of Slack once per card and remembered (a permalink never
changes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.backends.declaration import Capabilities
from slackbot.blocks.home import HomeRow, View, home_view
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import JobStore
from slackbot.permissions import Decision
from slackbot.services import Visibility

log = logging.getLogger("slackbot.services")

MINE_SHOWN = 10
RUNNING_SHOWN = 10
# Running jobs read for one tab: enough that jobs hidden from this user rarely leave it short of RUNNING_SHOWN.
RUNNING_READ = 100
PERMALINKS_KEPT = 5000


def recent_of(store: JobStore, team: str, user: str, limit: int = MINE_SHOWN) -> list[JobRecord]:
    """The user's own latest jobs in this workspace, refused ones included (they show why)."""
    return store.recent_of_user(team, user, limit)


def running_in(store: JobStore, team: str, limit: int = RUNNING_READ) -> list[JobRecord]:
    """The workspace's jobs still followed and not refused, newest first."""
    return store.followed_in_team(team, limit)


@dataclass
class Permalinks:
    """Cards' permalinks from Slack (chat.getPermalink), remembered; None when Slack gives none."""

    slack: WebClient
    _known: dict[tuple[str, str], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, channel: str, ts: str) -> str | None:
        with self._lock:
            known = self._known.get((channel, ts))
        if known is not None:
            return known
        try:
            link = self.slack.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
        except SlackApiError as exc:
            log.info("no permalink", extra={"channel": channel, "error": exc.response.get("error")})
            return None
        except Exception as exc:
            log.info("no permalink", extra={"channel": channel, "error": type(exc).__name__})
            return None
        if not isinstance(link, str) or not link.startswith("https://"):
            return None
        with self._lock:
            if len(self._known) >= PERMALINKS_KEPT:
                self._known.clear()
            self._known[(channel, ts)] = link
        return link


@dataclass
class Home:
    store: JobStore
    visibility: Visibility
    capabilities: Callable[[JobRecord], Capabilities]
    permission: Callable[[str, str | None], Decision]
    permalink: Callable[[str, str], str | None]
    services: Callable[[], list[str]]  # display names of the backends on
    clock: Callable[[], datetime]

    def view(self, team: str, user: str) -> View:
        mine = recent_of(self.store, team, user)
        running: list[JobRecord] = []
        for job in running_in(self.store, team):
            # The user's own are in their list already; others' only where the user may see them.
            if job.requester_id != user and self.visibility.job_visible(job, user, ""):
                running.append(job)
                if len(running) == RUNNING_SHOWN:
                    break
        return home_view(
            [self._row(job, user) for job in mine],
            [self._row(job, user) for job in running],
            services=self.services(),
            now=self.clock(),
        )

    def _row(self, job: JobRecord, user: str) -> HomeRow:
        caps = self.capabilities(job)
        going = not job.is_terminal and not job.lifecycle.is_bot_side and job.tracking
        may_try = (
            job.lifecycle is Lifecycle.SUCCEEDED
            and caps.chat_completions
            and self.permission(user, job.channel_id).allowed
        )
        link = self.permalink(job.card_channel_id, job.card_ts) if job.card_channel_id and job.card_ts else None
        return HomeRow(job=job, link=link, try_it=may_try, cancel=going and caps.cancel and job.requester_id == user)

    def publish(self, slack: WebClient, team: str, user: str) -> None:
        """Render the user's tab and publish it (views.publish replaces it whole)."""
        slack.views_publish(user_id=user, view=self.view(team, user))

"""Use cases the listeners call, written against the store, the backend and channel visibility.

Each takes what it needs as arguments and returns what to say: none knows Bolt, a payload or the runtime, so each
is tested without Slack. `status` and `track` answer `/finetune`; `submission` validates and records a submitted
form before the ack and starts it after (over `slackbot.jobs.submit`); `retry` reopens a refused job's form.
"""

from __future__ import annotations

from typing import Protocol

from slackbot.jobs.records import JobRecord


class Visibility(Protocol):
    """Who may see a job (see slackbot/visibility.py)."""

    def job_visible(self, job: JobRecord, user_id: str, channel_id: str) -> bool: ...

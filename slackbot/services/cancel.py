"""Cancel from the card: who may, whether the backend can, the service's cancel, and the thread told once.

Runs after the ack (the listener hands it to the after-ack pool). Everything the clicker must hear is returned as
one sentence for an ephemeral message; what the thread hears is an outbox row with a unique key, so double clicks
and redeliveries tell it once. `Controls` also serves `services.delete`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from slackbot.backends.base import Backend, BackendError, CancelsJobs
from slackbot.backends.declaration import Capabilities
from slackbot.backends.registry import declaration
from slackbot.blocks.card import status_label
from slackbot.domain.events import CancelRequested
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import JobStore
from slackbot.permissions import may_control
from slackbot.text import mrkdwn, user_mention

log = logging.getLogger("slackbot.services")


@dataclass
class Controls:
    """What the card's controls need, bound to the running bot (tests build one over a real store)."""

    store: JobStore
    backends: Mapping[str, Backend]
    capabilities: Callable[[JobRecord], Capabilities]
    admins: Collection[str]
    clock: Callable[[], datetime]
    deliver: Callable[[int], object]  # post the job's queued rows now (the notifier's deliver_job)


def service_name(job: JobRecord) -> str:
    found = declaration(job.backend)
    return found.display_name if found is not None else mrkdwn(job.backend, 40, one_line=True)


def service_key(job: JobRecord) -> str:
    """What the service knows the job by: its id for backends that follow by id, else the slug sent."""
    found = declaration(job.backend)
    if found is not None and found.follows_by_id and job.model_id:
        return job.model_id
    return job.slug


def find_job(controls: Controls, team: str | None, user: str | None, ref: str | None, verb: str) -> JobRecord | str:
    """The job a control names (its value is the job id), if this user may `verb` it; else what to tell them."""
    if not ref or not ref.isdigit() or len(ref) > 18:
        return "That button does not name a fine-tune of this bot; it may come from an older version."
    job = controls.store.get(int(ref))
    if job is None or job.team_id != team or not user:
        return f"I have no job #{int(ref)} in this workspace any more (finished jobs are deleted after a while)."
    slug = f"*{mrkdwn(job.slug, 100, one_line=True)}*"
    decision = may_control(verb, slug, job.requester_id, user, controls.admins)
    if not decision.allowed:
        return decision.reason
    return job


def cancel_job(controls: Controls, team: str | None, user: str | None, ref: str | None) -> str | None:
    """Ask the job's service to cancel it; None when done (the thread says who and what it cost), else what to
    tell the clicker."""
    found = find_job(controls, team, user, ref, "cancel")
    if isinstance(found, str):
        return found
    job, by = found, user or ""
    slug = f"*{mrkdwn(job.slug, 100, one_line=True)}*"
    service = service_name(job)
    backend = controls.backends.get(job.backend)
    if not controls.capabilities(job).cancel or not isinstance(backend, CancelsJobs):
        return f"{service} fine-tunes cannot be cancelled from Slack here."
    if job.is_terminal or job.lifecycle.is_bot_side:
        return f"{slug} is not running ({status_label(job)}): there is nothing to cancel."
    earlier = _cancel_told(controls.store, job.id)
    if earlier is not None:
        return f"{user_mention(earlier.by)} already asked {service} to cancel {slug}."
    try:
        state = backend.cancel(service_key(job))
    except BackendError as exc:
        log.warning("cancel refused", extra={"job_id": job.id, "error": exc.describe()})
        return f"{service} did not cancel {slug}: {mrkdwn(exc.describe(), 500)}. Nothing changed; try again later."
    if not controls.store.record_cancel(job.id, by, state, controls.clock()):
        return None  # another click (or the job ending) got there first; that one is told
    log.info("cancel requested", extra={"job_id": job.id, "by": by})
    controls.deliver(job.id)
    return None


def _cancel_told(store: JobStore, job_id: int) -> CancelRequested | None:
    for row in store.outbox_for_job(job_id):
        if row.dedupe_key == "cancel":
            event = row.event
            return event if isinstance(event, CancelRequested) else None
    return None

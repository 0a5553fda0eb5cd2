"""`/finetune track <slug>`: follow, in this channel, a model created elsewhere (e.g. OpenPipe's web UI, or a
Together job started with its SDK: named by its job id or its suffix)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from slackbot.backends.base import Backend, BackendError, NotFoundError
from slackbot.backends.form import default_option
from slackbot.backends.registry import declaration, form_for
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord
from slackbot.jobs.store import DuplicateJob, JobStore
from slackbot.services import Visibility
from slackbot.services.status import ERROR_SHOWN
from slackbot.text import channel_mention, code, quote

log = logging.getLogger("slackbot.services")


@dataclass(frozen=True)
class Tracked:
    """Either a job now followed (its card still to deliver) or what to tell the user instead."""

    job_id: int | None = None
    say: str | None = None


def track(
    store: JobStore,
    backends: Sequence[Backend],
    visibility: Visibility,
    team: str,
    user: str,
    channel: str,
    slug: str,
    now: datetime,
) -> Tracked:
    """With several backends on, `backend:slug` names the backend; a bare slug is looked up in each, in order,
    and the first that has it is followed."""
    named, _, rest = slug.partition(":")
    chosen = [b for b in backends if b.name == named] if rest else []
    if chosen:
        slug = rest
    else:
        chosen = list(backends)
    existing = store.by_slug(team, slug)
    if existing is not None and existing.lifecycle is not Lifecycle.REJECTED:
        return Tracked(say=already_followed(visibility, existing, user, channel))
    for backend in chosen:
        try:
            state = backend.get(slug)
        except NotFoundError:
            continue
        except BackendError as exc:
            return Tracked(say=f"Could not look up {code(slug)}:\n{quote(exc.describe(), ERROR_SHOWN)}")
        break
    else:
        where = " or ".join(_display(b.name) for b in chosen)
        return Tracked(say=f"There is no model {code(slug)} in this {where} project.")
    # The job is kept under the name users know it by (Together: its suffix, even when tracked by its job id).
    name = state.name or state.slug
    if name != slug and (known := store.by_slug(team, name)) is not None and known.lifecycle is not Lifecycle.REJECTED:
        return Tracked(say=already_followed(visibility, known, user, channel))
    form = form_for(backend.name)
    try:
        job = store.track_existing(
            team_id=team,
            channel_id=channel,
            user_id=user,
            backend=backend.name,
            project=backend.project,
            state=state.model_copy(update={"slug": name}),
            now=now,
            option=default_option(form) if form is not None else None,
        )
    except DuplicateJob as dup:
        return Tracked(say=already_followed(visibility, dup.existing, user, channel))
    log.info("tracking existing model", extra={"team": team, "job_id": job.id, "slug": slug})
    return Tracked(job_id=job.id)


def _display(backend: str) -> str:
    found = declaration(backend)
    return found.display_name if found else backend


def already_followed(visibility: Visibility, job: JobRecord, user: str, channel: str) -> str:
    # A slug is followed once per workspace, so that much is said; where, only to those who may see the job.
    if visibility.job_visible(job, user, channel):
        return f"{code(job.slug)} is already followed in {channel_mention(job.channel_id)}."
    return f"{code(job.slug)} is already followed in a private channel or DM."

"""Delete from the card's menu: a finished job's model deleted at its service, the card and thread told once.

Runs after the ack, like `services.cancel` (whose `Controls` it uses). The job becomes `gone` in the same
transaction that queues the reply saying who deleted it and when, so a second click finds it gone.
"""

from __future__ import annotations

import logging

from slackbot.backends.base import BackendError
from slackbot.domain.lifecycle import Lifecycle
from slackbot.services.cancel import Controls, find_job, service_key, service_name
from slackbot.text import mrkdwn

log = logging.getLogger("slackbot.services")


def delete_model(controls: Controls, team: str | None, user: str | None, ref: str | None) -> str | None:
    """Delete the job's model at its service; None when done (the card and thread say so), else what to tell
    the clicker."""
    found = find_job(controls, team, user, ref, "delete")
    if isinstance(found, str):
        return found
    job, by = found, user or ""
    slug = f"*{mrkdwn(job.slug, 100, one_line=True)}*"
    service = service_name(job)
    backend = controls.backends.get(job.backend)
    if not controls.capabilities(job).delete or backend is None:
        return f"{service} models cannot be deleted from Slack here."
    if job.lifecycle is Lifecycle.GONE:
        return f"{slug} is already deleted."
    if not job.is_terminal or job.lifecycle is Lifecycle.REJECTED:
        if job.lifecycle is Lifecycle.REJECTED:
            return f"{slug} was never started: there is no model to delete."
        return f"{slug} is still going: a model can be deleted once its fine-tune has ended."
    try:
        existed = backend.delete(service_key(job))
    except BackendError as exc:
        log.warning("delete refused", extra={"job_id": job.id, "error": exc.describe()})
        return f"{service} did not delete {slug}: {mrkdwn(exc.describe(), 500)}. Nothing changed; try again later."
    if not controls.store.mark_deleted(job.id, by, controls.clock(), existed=existed):
        return f"{slug} is already deleted."
    log.info("model deleted", extra={"job_id": job.id, "by": by, "existed": existed})
    controls.deliver(job.id)
    return None

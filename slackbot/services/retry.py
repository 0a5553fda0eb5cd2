""" "Edit and retry": reopen a refused job's form, filled in as it was sent, with the service's reasons on the fields.

Returns the modal to open, or what to tell the user instead; opening the modal is the listener's part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slackbot.backends.registry import form_for
from slackbot.domain.events import OutboxKind, Rejected
from slackbot.forms import FormDeclaration, FormState, ModalMetadata
from slackbot.forms.refusal import refusal_errors
from slackbot.jobs.store import JobStore
from slackbot.permissions import Decision

GONE = "That fine-tune request no longer exists; start again with /finetune."


@dataclass(frozen=True)
class RetryForm:
    """The form to open: for the refused job's channel and thread, filled in, the refusal under its fields."""

    metadata: ModalMetadata
    state: FormState
    errors: dict[str, str] | None


def retry_form(
    store: JobStore,
    permission: Callable[[str, str], Decision],
    fallback: FormDeclaration,
    team: str | None,
    user: str | None,
    job_ref: str | None,
    several_backends: bool,
) -> RetryForm | str:
    """`job_ref` is the button's value (the job id). With one backend on, the form names none (as before
    backends); with several, the job's own."""
    job = store.get(int(job_ref)) if job_ref is not None and job_ref.isdigit() else None
    # Jobs of another workspace are invisible, exactly like jobs that do not exist.
    if job is None or job.team_id != team or not user:
        return GONE
    decision = permission(user, job.channel_id)
    if not decision.allowed:
        return decision.reason
    metadata = ModalMetadata(
        team_id=job.team_id,
        user_id=user,
        channel_id=job.channel_id,
        thread_ts=job.thread_ts,
        origin="retry",
        retry_of=job.id,
        backend=job.backend if several_backends else None,
    )
    state: FormState = {k: v for k, v in (job.form_state or {}).items() if isinstance(v, str | bool)}
    return RetryForm(metadata, state, _refusal(store, fallback, job.id, job.backend, job.error_message))


def _refusal(
    store: JobStore, fallback: FormDeclaration, job_id: int, backend: str, message: str | None
) -> dict[str, str] | None:
    """The service's reason for refusing the job, each part under the field it is about (see forms/refusal.py)."""
    if not message:
        return None
    rejections = [row.event for row in store.outbox_for_job(job_id) if row.kind is OutboxKind.REJECTED]
    last = rejections[-1] if rejections else None
    return refusal_errors(
        form_for(backend) or fallback, message, list(last.issues) if isinstance(last, Rejected) else []
    )

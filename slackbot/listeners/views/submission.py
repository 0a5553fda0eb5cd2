"""view_submission: parse the modal, ack inside Slack's 3 s (field errors, or the modal closes), then start the job.

The decisions are `slackbot.services.submission`'s: `accept` (validate, then record the job) runs before the ack,
`start` after it; that order is what makes an accepted form never lost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import Ack, App
from slack_sdk import WebClient

from slackbot import ids
from slackbot.forms import FormState, MetadataError, ModalMetadata, form_state_from_view
from slackbot.jobs.records import JobRecord
from slackbot.jobs.submit import SubmitRequest
from slackbot.listeners.context import dig, ephemeral, form_of, team_of, user_of
from slackbot.services.submission import Accepted, Refused, Submissions, Verdict

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

DAMAGED = "This form could not be read back (it may be from an older version). Close it and run /finetune again."


class SubmissionServices(Protocol):
    """What the submission needs (`services.submission.Submissions` over the runtime; a test passes a fake)."""

    def accept(
        self, team: str, user: str, metadata: ModalMetadata, state: FormState, submission_key: str | None
    ) -> Verdict:
        """Before the ack: errors for the modal, or the job recorded (and an after-ack slot reserved)."""
        ...

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None: ...

    def start(self, job: JobRecord, request: SubmitRequest) -> str | None:
        """After the ack: create the job; what to tell the requester, if anything."""
        ...


def on_submission(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, services: SubmissionServices
) -> None:
    team, user = team_of(body), user_of(body)
    try:
        metadata = ModalMetadata.decode(view.get("private_metadata"))
    except MetadataError:
        ack(response_action="errors", errors={ids.BLOCK_DATASET: DAMAGED})
        return
    if team != metadata.team_id or not user:
        ack(response_action="errors", errors={ids.BLOCK_DATASET: DAMAGED})
        return
    state_values = view.get("state", {}).get("values") if isinstance(view.get("state"), dict) else None
    state = form_state_from_view(state_values, view.get("blocks"))
    verdict = services.accept(team, user, metadata, state, dig(view, "id"))
    if isinstance(verdict, Refused):
        ack(response_action="errors", errors=verdict.errors)
        return
    ack()  # the modal closes now; an accepted job starts after Slack got its answer
    if isinstance(verdict, Accepted):
        services.run_after_ack(_start, services, client, verdict)


def _start(services: SubmissionServices, client: WebClient, accepted: Accepted) -> None:
    say = services.start(accepted.job, accepted.request)
    if say is not None:
        ephemeral(client, accepted.request.channel_id, accepted.request.user_id, say)


def submissions(runtime: Runtime) -> Submissions:
    """The submission service over the running bot."""
    return Submissions(
        store=runtime.store,
        submitter=runtime.submitter,
        form_of=functools.partial(form_of, runtime),
        catalog_for=runtime.catalog_for,
        lookups=runtime.lookups,
        permission=runtime.permissions.check,
        pool=runtime,
    )


def register(app: App, runtime: Runtime) -> None:
    services = submissions(runtime)

    @app.view(ids.VIEW_FINETUNE)
    def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        on_submission(ack, body, view, client, services)

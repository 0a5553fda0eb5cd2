"""view_submission: parse the modal, ack inside Slack's 3 s (field errors, or the modal closes), then start the job.

The decisions are `slackbot.services.submission`'s: `accept` (validate, then record the job) runs before the ack,
`start` after it; that order is what makes an accepted form never lost. For a backend that estimates prices the
form is only checked: the ack pushes the price confirmation (`blocks.price`), the estimate fills it in after the
ack, and the confirmation's own submission (`views.price_confirm`) records and starts the job.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot import ids
from slackbot.backends.base import PriceQuote
from slackbot.backends.registry import declaration
from slackbot.blocks import price
from slackbot.forms import FormState, MetadataError, ModalMetadata, form_state_from_view
from slackbot.jobs.submit import SubmitRequest
from slackbot.listeners.context import dig, ephemeral, submissions, team_of, user_of
from slackbot.services.submission import BUSY, Accepted, Refused, Verdict

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.listeners")

DAMAGED = "This form could not be read back (it may be from an older version). Close it and run /finetune again."
TOO_LONG = (
    "This form holds too much text to carry to the price confirmation: shorten the longest value you typed and "
    "submit again."
)
# A view pushed in an ack exists once Slack has read the answer; an update that comes sooner is tried again.
PUSHED_VIEW_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


class SubmissionServices(Protocol):
    """What the submission needs (`services.submission.Submissions` over the runtime; a test passes a fake)."""

    def accept(
        self, team: str, user: str, metadata: ModalMetadata, state: FormState, submission_key: str | None
    ) -> Verdict:
        """Before the ack: errors for the modal, or the job recorded (and an after-ack slot reserved)."""
        ...

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None: ...

    def start(self, accepted: Accepted) -> str | None:
        """After the ack: create the job; what to tell the requester, if anything."""
        ...

    def quotes_price(self, metadata: ModalMetadata) -> bool:
        """Whether the form's backend confirms a price before the job is created."""
        ...

    def check(self, team: str, user: str, metadata: ModalMetadata, state: FormState) -> Refused | SubmitRequest:
        """Before the ack: errors for the modal, or the request it would start (nothing recorded)."""
        ...

    def reserve(self) -> bool: ...

    def unreserve(self) -> None: ...

    def estimate(self, request: SubmitRequest) -> PriceQuote | str:
        """After the ack: the service's estimate, or why there is none."""
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
    if services.quotes_price(metadata):
        _confirm_price(ack, team, user, metadata, state, dig(view, "id") or "", client, services)
        return
    verdict = services.accept(team, user, metadata, state, dig(view, "id"))
    if isinstance(verdict, Refused):
        ack(response_action="errors", errors=verdict.errors)
        return
    ack()  # the modal closes now; an accepted job starts after Slack got its answer
    if isinstance(verdict, Accepted):
        services.run_after_ack(start_accepted, services, client, verdict)


def _confirm_price(
    ack: Ack,
    team: str,
    user: str,
    metadata: ModalMetadata,
    state: FormState,
    view_id: str,
    client: WebClient,
    services: SubmissionServices,
) -> None:
    """The form is valid: push the confirmation now, fill in the estimate after the ack. Nothing is recorded."""
    checked = services.check(team, user, metadata, state)
    if isinstance(checked, Refused):
        ack(response_action="errors", errors=checked.errors)
        return
    carried = price.carry(metadata, state)
    if carried is None:
        ack(response_action="errors", errors={ids.BLOCK_SLUG: TOO_LONG})
        return
    if not services.reserve():
        ack(response_action="errors", errors={ids.BLOCK_SLUG: BUSY})
        return
    # The app never learns the id of a view pushed in an ack: it finds it again by this (unique) external id.
    external_id = f"{ids.VIEW_PRICE_CONFIRM}:{view_id}:{uuid.uuid4().hex[:12]}"
    service = service_name(checked.spec.backend)
    try:
        ack(response_action="push", view=price.estimating_view(external_id, carried, service, checked.spec.slug))
    except BaseException:
        services.unreserve()
        raise
    services.run_after_ack(_estimate, services, client, external_id, carried, checked)


def service_name(backend: str) -> str:
    found = declaration(backend)
    return found.display_name if found is not None else backend


def _estimate(
    services: SubmissionServices, client: WebClient, external_id: str, carried: str, request: SubmitRequest
) -> None:
    quote = services.estimate(request)
    service, slug = service_name(request.spec.backend), request.spec.slug
    if isinstance(quote, PriceQuote):
        view = price.quote_view(external_id, carried, service, slug, quote)
    else:
        view = price.estimate_failed_view(external_id, carried, service, slug, quote)
    update_pushed(client, external_id, view)


def update_pushed(client: WebClient, external_id: str, view: dict[str, Any]) -> bool:
    """`views.update` of a view pushed in an ack, by its external id; False if it is gone (the user went back)."""
    for pause in (0.0, *PUSHED_VIEW_WAITS):
        time.sleep(pause)
        try:
            client.views_update(external_id=external_id, view=view)
            return True
        except SlackApiError as exc:
            if exc.response.get("error") != "not_found":
                log.warning("price confirmation not updated", extra={"error": exc.response.get("error")})
                return False
    log.info("price confirmation closed before the estimate arrived")
    return False


def start_accepted(services: SubmissionServices, client: WebClient, accepted: Accepted) -> None:
    """After the ack: start the recorded job; tell the requester what they must know."""
    say = services.start(accepted)
    if say is not None:
        ephemeral(client, accepted.request.channel_id, accepted.request.user_id, say)


def register(app: App, runtime: Runtime) -> None:
    services = submissions(runtime)

    @app.view(ids.VIEW_FINETUNE)
    def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        on_submission(ack, body, view, client, services)

"""view_submission of the price confirmation: record and start the job exactly as the form's submit does.

The form travels in the confirmation's `private_metadata`; `accept` validates it again (the slug may have been taken
meanwhile) and writes the job row before the ack, keyed by the confirmation's view id, so a redelivery creates
nothing twice. Accepted: the whole stack closes (`clear`) and the job starts after the ack. Refused: the
confirmation says why, and the user goes back to the form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from slackbot import ids
from slackbot.blocks import price
from slackbot.forms import MetadataError
from slackbot.listeners.context import dig, submissions, team_of, user_of
from slackbot.listeners.views.submission import DAMAGED, SubmissionServices, start_accepted
from slackbot.services.submission import Accepted, Refused

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


def on_price_confirm(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, services: SubmissionServices
) -> None:
    team, user = team_of(body), user_of(body)
    carried = view.get("private_metadata")
    try:
        metadata, state = price.read_carried(carried)
    except MetadataError:
        ack(response_action="update", view=price.not_started_view("", {"form": DAMAGED}))
        return
    if team != metadata.team_id or not user or not isinstance(carried, str):
        ack(response_action="update", view=price.not_started_view("", {"form": DAMAGED}))
        return
    verdict = services.accept(team, user, metadata, state, dig(view, "id"))
    if isinstance(verdict, Refused):
        ack(response_action="update", view=price.not_started_view(carried, verdict.errors))
        return
    ack(response_action="clear")  # the confirmation and the form close together
    if isinstance(verdict, Accepted):
        services.run_after_ack(start_accepted, services, client, verdict)


def register(app: App, runtime: Runtime) -> None:
    services = submissions(runtime)

    @app.view(ids.VIEW_PRICE_CONFIRM)
    def confirm(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        on_price_confirm(ack, body, view, client, services)

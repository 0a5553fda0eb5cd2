"""Events API: `app_home_opened` (the Home tab), and the Home tab's own buttons."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot import ids
from slackbot.delivery.home import HomeRefresh
from slackbot.forms import ModalMetadata
from slackbot.listeners.context import open_modal
from slackbot.listeners.events.app_home import on_app_home_opened, on_new_finetune
from slackbot.permissions import Decision
from slackbot.services.home import Home, Permalinks
from slackbot.visibility import ChannelVisibility

if TYPE_CHECKING:
    from slackbot.runtime import Runtime


class RuntimeHome:
    """`HomeServices` over the running bot; its refresher is the notifier's hook after each transition."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.home = Home(
            store=runtime.store,
            visibility=ChannelVisibility(runtime.slack, clock=lambda: runtime.clock().timestamp()),
            capabilities=runtime.capabilities,
            permission=runtime.permissions.check,
            permalink=Permalinks(runtime.slack),
            services=lambda: [name for name, _ in runtime.offers()],
            clock=runtime.clock,
        )
        self.refresh = HomeRefresh(lambda team, user: self.home.publish(runtime.slack, team, user), runtime.clock)
        runtime.notifier.on_transition = self.refresh.job_changed
        runtime.on_stop.append(self.refresh.close)

    def opened(self, team: str, user: str) -> None:
        self.refresh.opened(team, user)

    def direct_channel(self, client: WebClient, user: str) -> str | None:
        try:
            channel = client.conversations_open(users=user).get("channel")
        except SlackApiError:
            return None
        found = channel.get("id") if isinstance(channel, dict) else None
        return found if isinstance(found, str) else None

    def permission(self, user: str, channel: str) -> Decision:
        return self.runtime.permissions.check(user, channel)

    def open_form(self, client: WebClient, trigger_id: str, metadata: ModalMetadata) -> bool:
        return open_modal(self.runtime, client, trigger_id, metadata)


def register(app: App, runtime: Runtime) -> RuntimeHome:
    services = RuntimeHome(runtime)

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        on_app_home_opened(event, body, services)

    @app.action(ids.ACTION_HOME_NEW_FINETUNE)
    def new_finetune(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        on_new_finetune(ack, body, client, services)

    return services

"""`SlackDriver`: plays Slack's side of the conversation with the bot, sending its real signed HTTP requests.

Payload shapes follow what Slack sends (and slack-bolt's sample payloads). The driver works hand in hand
with a `LocalSlack`: it issues trigger_ids there, reads the views the bot opened there, records what the
user typed into them, and applies a view_submission's `response_action` as Slack would.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from slackbot.sandbox.clock import Clock
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.slack_payloads import (
    action_item,
    element_state,
    find_action,
    find_element,
    submission_state,
)
from slackbot.sandbox.slack_views import STATEFUL_ELEMENTS

FORM = "application/x-www-form-urlencoded"
VERIFICATION_TOKEN = "local-verification-token"  # noqa: S105  (the deprecated, non-secret legacy token)


class WallClock:
    """Epoch seconds: Bolt rejects request timestamps more than 5 minutes from its own time.time()."""

    def now(self) -> float:
        return time.time()


class SlackDriver:
    def __init__(
        self,
        app_url: str,
        signing_secret: str,
        slack: LocalSlack,
        *,
        team_id: str | None = None,
        clock: Clock | None = None,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.app_url = app_url
        self.slack = slack
        self.team_id = team_id or slack.team_id
        self.clock: Clock = clock or WallClock()
        self._verifier = SignatureVerifier(signing_secret)
        self._http = http or httpx.Client(timeout=timeout)
        self._responses = 0
        self._events = 0
        self._handed_out: set[str] = set()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SlackDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------------------

    def signed_post(
        self,
        body: bytes | str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        omit_headers: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST `body` to the app, signed as Slack signs it (or forged, for tests of the verification)."""
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        ts = str(timestamp if timestamp is not None else int(self.clock.now()))
        sent = {"Content-Type": content_type, **(headers or {})}
        if not omit_headers:
            sent["X-Slack-Request-Timestamp"] = ts
            sent["X-Slack-Signature"] = signature or str(self._verifier.generate_signature(timestamp=ts, body=text))
        return self._post(text, content_type, sent)

    def _post(self, text: str, content_type: str, headers: dict[str, str]) -> httpx.Response:
        """Send a signed request: an HTTP POST to the app (another transport overrides this)."""
        return self._http.post(self.app_url, content=text.encode("utf-8"), headers=headers)

    def post_form(self, fields: dict[str, str]) -> httpx.Response:
        return self.signed_post(urlencode(fields), FORM)

    def post_payload(self, payload: dict[str, Any]) -> httpx.Response:
        return self.post_form({"payload": json.dumps(payload)})

    # -- shared pieces -------------------------------------------------------------------------------

    def _action_ts(self) -> str:
        return f"{self.clock.now():.6f}"

    def _user(self, user_id: str) -> dict[str, Any]:
        name = str(self.slack.workspace.users.get(user_id, {}).get("name", user_id.lower()))
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team(self) -> dict[str, str]:
        return {"id": self.team_id, "domain": "local"}

    def _envelope(self, kind: str, user_id: str) -> dict[str, Any]:
        return {
            "type": kind,
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.slack.app_id,
            "token": VERIFICATION_TOKEN,
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def response_url(self) -> str:
        self._responses += 1
        return self.slack.url.replace("/api/", f"/respond/{self._responses}")

    def view(self, view_id: str) -> dict[str, Any]:
        view = self.slack.views.get(view_id)
        if view is None:
            raise KeyError(f"no open view {view_id!r} in LocalSlack")
        return view

    def latest_view(self) -> dict[str, Any] | None:
        """The most recently opened (or pushed) view that is still open."""
        views = self.slack.views
        return views[list(views)[-1]] if views else None

    def wait_for_view(self, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for the next view the bot opens or pushes (one not returned here before).

        Bolt may run listeners after ack(), so the view can appear after the request has been answered.
        """
        deadline = time.monotonic() + timeout
        while True:
            fresh = [v for v in self.slack.views.values() if v["id"] not in self._handed_out]
            if fresh:
                self._handed_out.add(fresh[-1]["id"])
                return fresh[-1]
            if time.monotonic() >= deadline:
                raise TimeoutError("the app opened no new view")
            time.sleep(0.01)

    # -- entry points ----------------------------------------------------------------------------------

    def slash_command(
        self,
        command: str = "/finetune",
        text: str = "",
        *,
        user_id: str = "U0ALICE",
        channel_id: str = "C0GENERAL",
        channel_name: str = "general",
    ) -> httpx.Response:
        user = self._user(user_id)
        return self.post_form(
            {
                "token": VERIFICATION_TOKEN,
                "team_id": self.team_id,
                "team_domain": "local",
                "channel_id": channel_id,
                "channel_name": channel_name,
                "user_id": user_id,
                "user_name": user["name"],
                "command": command,
                "text": text,
                "api_app_id": self.slack.app_id,
                "is_enterprise_install": "false",
                "response_url": self.response_url(),
                "trigger_id": self.slack.issue_trigger_id(user_id=user_id),
            }
        )

    def event(
        self,
        event: dict[str, Any],
        *,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        event_id: str | None = None,
    ) -> httpx.Response:
        """An Events API delivery (e.g. app_home_opened); `retry_num` marks it as Slack's redelivery."""
        self._events += 1
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "api_app_id": self.slack.app_id,
            "event": {"event_ts": self._action_ts(), **event},
            "type": "event_callback",
            "event_id": event_id or f"Ev0LOCAL{self._events:06d}",
            "event_time": int(self.clock.now()),
            "authorizations": [{"team_id": self.team_id, "user_id": self.slack.bot_user_id, "is_bot": True}],
        }
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return self.signed_post(json.dumps(envelope), "application/json", headers=headers)

    def app_home_opened(self, user_id: str = "U0ALICE", *, tab: str = "home") -> httpx.Response:
        """The user opens the app's Home tab (Slack sends the view published before, if any)."""
        event: dict[str, Any] = {"type": "app_home_opened", "user": user_id, "channel": f"D0{user_id}", "tab": tab}
        home = self.slack.home(user_id)
        if home is not None:
            event["view"] = home
        return self.event(event)

    def home_action(self, action_id: str, value: str | None = None, *, user_id: str = "U0ALICE") -> httpx.Response:
        """A user clicks a button on their Home tab (the one with `value`, when several share the action_id)."""
        home = self.slack.home(user_id)
        if home is None:
            raise KeyError(f"no Home tab published for {user_id}")
        found = [
            (str(block.get("block_id", "")), element)
            for block in home["blocks"]
            for element in [block.get("accessory"), *(block.get("elements") or [])]
            if isinstance(element, dict)
            and element.get("action_id") == action_id
            and (value is None or element.get("value") == value)
        ]
        if not found:
            raise KeyError(f"no {action_id!r} button with value {value!r} on {user_id}'s Home tab")
        block_id, element = found[0]
        payload = self._envelope("block_actions", user_id)
        payload.update(
            container={"type": "view", "view_id": home["id"]},
            trigger_id=self.slack.issue_trigger_id(user_id=user_id),
            view=home,
            actions=[action_item(element, block_id, None, self._action_ts())],
        )
        return self.post_payload(payload)

    def global_shortcut(self, callback_id: str, *, user_id: str = "U0ALICE") -> httpx.Response:
        payload = self._envelope("shortcut", user_id)
        payload.update(
            callback_id=callback_id,
            trigger_id=self.slack.issue_trigger_id(user_id=user_id),
            action_ts=self._action_ts(),
        )
        return self.post_payload(payload)

    def message_shortcut(
        self,
        callback_id: str,
        *,
        message_ts: str,
        thread_ts: str | None = None,
        channel_id: str = "C0GENERAL",
        user_id: str = "U0ALICE",
        text: str | None = None,
        message_user: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> httpx.Response:
        """The shortcut used on a message; a message stored in LocalSlack is sent as Slack shows it. `files`: the
        file objects the message carries (as `files.info` shapes them)."""
        try:
            message = self.slack.shaped_message(channel_id, message_ts)
        except KeyError:
            message = {"type": "message", "user": message_user or user_id, "ts": message_ts, "text": "..."}
        if text is not None:
            message["text"] = text
        if message_user is not None:
            message["user"] = message_user
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        if files is not None:
            message["files"] = files
        payload = self._envelope("message_action", user_id)
        payload.update(
            callback_id=callback_id,
            trigger_id=self.slack.issue_trigger_id(user_id=user_id),
            action_ts=self._action_ts(),
            message_ts=message_ts,
            message=message,
            channel={"id": channel_id, "name": self._channel_name(channel_id)},
            response_url=self.response_url(),
        )
        return self.post_payload(payload)

    def _channel_name(self, channel_id: str) -> str:
        channel = self.slack.workspace.channels.get(channel_id)
        return channel.name if channel else channel_id.lower()

    def block_suggestion(
        self, view_id: str, action_id: str, block_id: str, value: str, user_id: str = "U0ALICE"
    ) -> httpx.Response:
        view = self.view(view_id)
        payload = self._envelope("block_suggestion", user_id)
        payload.update(
            container={"type": "view", "view_id": view_id},
            action_id=action_id,
            block_id=block_id,
            value=value,
            view=view,
        )
        return self.post_payload(payload)

    def block_action(
        self,
        view_id: str,
        block_id: str,
        action_id: str,
        *,
        value: Any = None,
        selected_option: Any = None,
        user_id: str = "U0ALICE",
    ) -> httpx.Response:
        """A user clicks / picks an element inside an open modal (its new value lands in view.state too)."""
        view = self.view(view_id)
        element = find_element(view["blocks"], block_id, action_id)
        choice = selected_option if selected_option is not None else value
        if element.get("type") in STATEFUL_ELEMENTS:
            self.slack.type_into(view_id, {block_id: {action_id: element_state(element, choice)}})
            view = self.view(view_id)
        payload = self._envelope("block_actions", user_id)
        payload.update(
            container={"type": "view", "view_id": view_id},
            trigger_id=self.slack.issue_trigger_id(user_id=user_id, view_id=view_id),
            view=view,
            actions=[action_item(element, block_id, choice, self._action_ts())],
        )
        return self.post_payload(payload)

    def message_block_action(
        self,
        channel_id: str,
        message_ts: str,
        action_id: str,
        value: Any = None,
        user_id: str = "U0ALICE",
    ) -> httpx.Response:
        """A user clicks a button (or picks from a menu) in a message the bot posted."""
        record = next((m for m in self.slack.messages(channel_id) if m["ts"] == message_ts), None)
        if record is None:
            raise KeyError(f"no message {message_ts} in {channel_id}")
        block_id, element = find_action(record["blocks"], action_id)
        message = self.slack.shaped_message(channel_id, message_ts)
        payload = self._envelope("block_actions", user_id)
        payload.update(
            container={
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            },
            trigger_id=self.slack.issue_trigger_id(user_id=user_id),
            channel={"id": channel_id, "name": self._channel_name(channel_id)},
            message=message,
            state={"values": {}},
            response_url=self.response_url(),
            actions=[action_item(element, block_id, value, self._action_ts())],
        )
        return self.post_payload(payload)

    def view_submission(
        self,
        view_id: str,
        values: dict[str, Any] | None = None,
        user_id: str = "U0ALICE",
        *,
        raw_state: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Submit an open modal. `values` maps block_id to a simple value; blocks not given keep what was
        typed or their initial value. `raw_state` replaces `view.state.values` entirely (for fuzzing)."""
        view = self.view(view_id)
        typed = self.slack.typed_state(view_id)
        if raw_state is not None:
            state = raw_state
        else:
            state = submission_state(view["blocks"], typed, values or {})
            # What was entered stays in the modal if the app answers with errors (or updates it).
            self.slack.type_into(view_id, state)
        view["state"] = {"values": state}
        payload = self._envelope("view_submission", user_id)
        payload.update(trigger_id=self.slack.issue_trigger_id(user_id=user_id, view_id=view_id))
        payload.update(view=view, response_urls=[])
        response = self.post_payload(payload)
        self._apply_submission_answer(view, response)
        return response

    def view_closed(self, view_id: str, user_id: str = "U0ALICE") -> httpx.Response:
        view = self.view(view_id)
        payload = self._envelope("view_closed", user_id)
        payload.update(view=view, is_cleared=False)
        response = self.post_payload(payload)
        self.slack.close_view(view_id, whole_stack=True)
        return response

    def _apply_submission_answer(self, view: dict[str, Any], response: httpx.Response) -> None:
        # Slack acts on the app's answer: close, replace, stack, or keep the modal open showing errors.
        if response.status_code != 200:
            return
        try:
            answer = response.json() if response.content.strip() else {}
        except ValueError:
            answer = {}
        self.slack.apply_submission_answer(str(view["id"]), answer if isinstance(answer, dict) else {})

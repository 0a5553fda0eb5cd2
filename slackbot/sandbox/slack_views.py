"""Modals in the local Slack: trigger_ids, view stacks, hashes and the validation Slack applies to views."""

from __future__ import annotations

import copy
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from slackbot.sandbox.clock import Clock
from slackbot.sandbox.slack_common import Args, SlackError, invalid_arguments, text_arg

TRIGGER_TTL_SECONDS = 3.0
MAX_STACK = 3
MAX_VIEW_BLOCKS = 100
MAX_LABEL_CHARS = 24
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255
MAX_VIEW_BYTES = 250_000
MAX_CHOICE_OPTIONS = {"checkboxes": 10, "radio_buttons": 10, "static_select": 100, "multi_static_select": 100}

# Elements whose value Slack keeps in view.state, and the key it keeps it under.
STATEFUL_ELEMENTS = {
    "plain_text_input": "value",
    "number_input": "value",
    "email_text_input": "value",
    "url_text_input": "value",
    "static_select": "selected_option",
    "external_select": "selected_option",
    "radio_buttons": "selected_option",
    "multi_static_select": "selected_options",
    "multi_external_select": "selected_options",
    "checkboxes": "selected_options",
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "rich_text_input": "rich_text_value",
}


def _interactive(block: dict[str, Any]) -> list[dict[str, Any]]:
    kind = block.get("type")
    if kind == "input":
        candidates = [block.get("element")]
    elif kind == "actions":
        candidates = list(block.get("elements") or [])
    elif kind == "section":
        candidates = [block.get("accessory")]
    else:
        candidates = []
    return [e for e in candidates if isinstance(e, dict) and e.get("type") not in (None, "image")]


def stateful_elements(blocks: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(block_id, element) for every element of a view whose value Slack tracks in view.state."""
    return [
        (str(block.get("block_id", "")), element)
        for block in blocks
        for element in _interactive(block)
        if element.get("type") in STATEFUL_ELEMENTS
    ]


def _label(view: dict[str, Any], key: str) -> str | None:
    value = view.get(key)
    if isinstance(value, dict):
        return str(value.get("text", ""))
    return None


def validate_view(view: Any) -> None:
    """Refuse what Slack refuses, with Slack's error names (slack_sdk's models miss several of these)."""
    if not isinstance(view, dict):
        raise invalid_arguments("must provide an object", "/view")
    if view.get("type") not in ("modal", "home"):
        raise invalid_arguments("must be one of modal, home", "/view/type")
    if len(json.dumps(view)) >= MAX_VIEW_BYTES:
        raise SlackError("view_too_large")
    for key in ("title", "submit", "close"):
        label = _label(view, key)
        if label is not None and len(label) > MAX_LABEL_CHARS:
            raise invalid_arguments(f"must be less than {MAX_LABEL_CHARS + 1} characters", f"/view/{key}/text")
    if view["type"] == "modal" and _label(view, "title") is None:
        raise invalid_arguments("missing required field: title", "/view/title")
    if len(str(view.get("private_metadata") or "")) > MAX_PRIVATE_METADATA:
        raise invalid_arguments(f"must be less than {MAX_PRIVATE_METADATA + 1} characters", "/view/private_metadata")
    if len(str(view.get("callback_id") or "")) > MAX_CALLBACK_ID:
        raise invalid_arguments(f"must be less than {MAX_CALLBACK_ID + 1} characters", "/view/callback_id")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
        raise invalid_arguments("must provide an array of blocks", "/view/blocks")
    if len(blocks) > MAX_VIEW_BLOCKS:
        raise invalid_arguments(f"no more than {MAX_VIEW_BLOCKS} items allowed", "/view/blocks")
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        block_id = block.get("block_id")
        if block_id:
            if block_id in seen:
                raise invalid_arguments(f"duplicate block_id: {block_id}", f"/view/blocks/{index}/block_id")
            seen.add(block_id)
        if block["type"] == "input" and view["type"] == "modal" and _label(view, "submit") is None:
            raise invalid_arguments("a view with input blocks must have a submit button", f"/view/blocks/{index}")
    for index, block in enumerate(blocks):
        for element in _interactive(block):
            limit = MAX_CHOICE_OPTIONS.get(str(element.get("type")))
            options = element.get("options") or element.get("option_groups") or []
            if limit is not None and len(options) > limit:
                raise invalid_arguments(f"no more than {limit} items allowed", f"/view/blocks/{index}/options")


def _assign_ids(blocks: list[dict[str, Any]]) -> None:
    # Slack fills in missing block_ids and action_ids with random ones; state.values is keyed by them.
    for block in blocks:
        block.setdefault("block_id", secrets.token_urlsafe(4))
        for element in _interactive(block):
            element.setdefault("action_id", secrets.token_urlsafe(4))


@dataclass
class _Trigger:
    issued_at: float
    user_id: str | None
    view_id: str | None
    used: bool = False


@dataclass
class Modals:
    team_id: str
    app_id: str
    bot_id: str
    clock: Clock
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Each user's App Home tab, as last published (views.publish), by user id.
    homes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Typed but not yet submitted input, per view: what the user sees in the open modal.
    typed: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    _triggers: dict[str, _Trigger] = field(default_factory=dict)
    _count: int = 0

    def issue_trigger(self, *, user_id: str | None = None, view_id: str | None = None) -> str:
        self._count += 1
        trigger = f"{self._count}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        self._triggers[trigger] = _Trigger(issued_at=self.clock.now(), user_id=user_id, view_id=view_id)
        return trigger

    def _exchange(self, args: Args) -> _Trigger:
        trigger_id = text_arg(args, "trigger_id")
        trigger = self._triggers.get(trigger_id or "")
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if self.clock.now() - trigger.issued_at > TRIGGER_TTL_SECONDS:
            raise SlackError("expired_trigger_id")
        return trigger

    def _stamped(
        self, view: dict[str, Any], view_id: str, root: str, previous: str | None, *, modal: bool
    ) -> dict[str, Any]:
        """A copy of `view` as Slack keeps it: block ids assigned, its ids, a fresh `hash`, an empty state."""
        stored = copy.deepcopy(view)
        _assign_ids(stored.get("blocks") or [])
        stored.update(id=view_id, team_id=self.team_id, app_id=self.app_id)
        if modal:  # a Home tab does not name the team the app is installed on
            stored["app_installed_team_id"] = self.team_id
        stored.update(
            bot_id=self.bot_id,
            root_view_id=root,
            previous_view_id=previous,
            hash=f"{self.clock.now():.6f}.{secrets.token_hex(4)}",
            state={"values": {}},
        )
        for key in ("private_metadata", "callback_id", "external_id"):
            stored.setdefault(key, "")
        return stored

    def _store(self, view: dict[str, Any], view_id: str, root: str, previous: str | None) -> dict[str, Any]:
        stored = self._stamped(view, view_id, root, previous, modal=True)
        stored.setdefault("clear_on_close", False)
        stored.setdefault("notify_on_close", False)
        old = self.views.get(view_id)
        if old is not None:
            stored["state"] = {"values": self._surviving_state(old, stored)}
        self.views[view_id] = stored
        return copy.deepcopy(stored)

    def _surviving_state(self, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        # Typed input survives an update only where block_id, action_id and element type are unchanged.
        typed = self.typed.get(str(old["id"]), {})
        kept: dict[str, Any] = {}
        for block_id, element in stateful_elements(new.get("blocks", [])):
            action_id = str(element.get("action_id", ""))
            value = typed.get(block_id, {}).get(action_id)
            if value is not None and value.get("type") == element.get("type"):
                kept.setdefault(block_id, {})[action_id] = value
        self.typed[str(old["id"])] = kept
        return copy.deepcopy(kept)

    def _new_id(self) -> str:
        self._count += 1
        return f"V0LOCAL{self._count:05d}"

    def open(self, args: Args) -> dict[str, Any]:
        trigger = self._exchange(args)
        view = args.get("view")
        validate_view(view)
        assert isinstance(view, dict)
        trigger.used = True
        view_id = self._new_id()
        return {"view": self._store(view, view_id, root=view_id, previous=None)}

    def push(self, args: Args) -> dict[str, Any]:
        trigger = self._exchange(args)
        view = args.get("view")
        validate_view(view)
        assert isinstance(view, dict)
        below = self.views.get(trigger.view_id or "")
        root = str(below["root_view_id"]) if below else None
        depth = sum(1 for v in self.views.values() if root and v["root_view_id"] == root)
        if depth >= MAX_STACK:
            raise SlackError("push_limit_reached")
        trigger.used = True
        view_id = self._new_id()
        previous = str(below["id"]) if below else None
        return {"view": self._store(view, view_id, root=root or view_id, previous=previous)}

    def update(self, args: Args) -> dict[str, Any]:
        view_id = text_arg(args, "view_id")
        external_id = text_arg(args, "external_id")
        current = self.views.get(view_id or "")
        if current is None and external_id:
            current = next((v for v in self.views.values() if v.get("external_id") == external_id), None)
        if current is None:
            raise SlackError("not_found")
        expected = text_arg(args, "hash")
        if expected is not None and expected != current["hash"]:
            raise SlackError("hash_conflict")
        view = args.get("view")
        validate_view(view)
        assert isinstance(view, dict)
        return {
            "view": self._store(
                view,
                str(current["id"]),
                root=str(current["root_view_id"]),
                previous=current["previous_view_id"],
            )
        }

    def publish(self, args: Args) -> dict[str, Any]:
        """views.publish: a user's Home tab (a `home` view), replaced whole; a stale `hash` is refused."""
        user_id = text_arg(args, "user_id")
        if not user_id:
            raise invalid_arguments("missing required field: user_id", "/user_id")
        view = args.get("view")
        validate_view(view)
        assert isinstance(view, dict)
        if view.get("type") != "home":
            raise invalid_arguments("must be home", "/view/type")
        current = self.homes.get(user_id)
        expected = text_arg(args, "hash")
        if expected is not None and current is not None and expected != current["hash"]:
            raise SlackError("hash_conflict")
        view_id = str(current["id"]) if current is not None else self._new_id()
        stored = self._stamped(view, view_id, view_id, None, modal=False)
        self.homes[user_id] = stored
        return {"view": copy.deepcopy(stored)}

    def type_into(self, view_id: str, values: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Record what a user typed or picked, as `view.state.values` entries; returns the whole state."""
        view = self.views.get(view_id)
        if view is None:
            raise KeyError(view_id)
        typed = self.typed.setdefault(view_id, {})
        for block_id, actions in values.items():
            typed.setdefault(block_id, {}).update(copy.deepcopy(actions))
        view["state"] = {"values": copy.deepcopy(typed)}
        return copy.deepcopy(typed)

    def close(self, view_id: str, *, whole_stack: bool = False) -> None:
        """Close a modal (just the top view, or everything stacked with it, as `clear` does)."""
        view = self.views.get(view_id)
        if view is None:
            return
        root = view["root_view_id"]
        doomed = [v for v, stored in self.views.items() if stored["root_view_id"] == root] if whole_stack else [view_id]
        for other in doomed:
            self.views.pop(other, None)
            self.typed.pop(other, None)

    def answer_submission(self, view_id: str, answer: dict[str, Any]) -> None:
        """Apply a view_submission's response the way Slack does."""
        action = answer.get("response_action")
        if action is None:
            self.close(view_id)
        elif action == "clear":
            self.close(view_id, whole_stack=True)
        elif action == "update":
            self.update({"view_id": view_id, "view": answer.get("view")})
        elif action == "push":
            trigger = self.issue_trigger(view_id=view_id)
            self.push({"trigger_id": trigger, "view": answer.get("view")})
        # "errors" keeps the modal open with the messages under the named blocks.

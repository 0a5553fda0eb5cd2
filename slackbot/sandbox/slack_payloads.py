"""Turn simple Python values into the `view.state.values` entries and `actions[]` items Slack sends.

Slack reports each stateful element under `state.values[block_id][action_id]` with its type and a
type-specific key (`value`, `selected_option`, `selected_options`, `selected_user`, ...). Elements nobody
touched still appear, with their initial value or null / empty list.
"""

from __future__ import annotations

import copy
from typing import Any

from slackbot.sandbox.slack_views import STATEFUL_ELEMENTS, stateful_elements

_INITIAL_KEYS = {
    "value": "initial_value",
    "selected_option": "initial_option",
    "selected_options": "initial_options",
    "selected_user": "initial_user",
    "selected_users": "initial_users",
    "selected_conversation": "initial_conversation",
    "selected_conversations": "initial_conversations",
    "selected_channel": "initial_channel",
    "selected_channels": "initial_channels",
    "selected_date": "initial_date",
    "selected_time": "initial_time",
    "selected_date_time": "initial_date_time",
    "rich_text_value": "initial_value",
}
_LISTS = {"selected_options", "selected_users", "selected_conversations", "selected_channels"}


def _options(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option(element: dict[str, Any], choice: Any) -> dict[str, Any]:
    if isinstance(choice, dict):
        return copy.deepcopy(choice)
    value = str(choice)
    if element["type"] in ("external_select", "multi_external_select"):
        # The app served these options itself; Slack echoes back text and value.
        return {"text": {"type": "plain_text", "text": value, "emoji": True}, "value": value}
    for option in _options(element):
        if option.get("value") == value:
            return copy.deepcopy(option)
    known = [o.get("value") for o in _options(element)]
    raise ValueError(f"{element.get('action_id')!r} has no option {value!r} (options: {known})")


def _rich_text(text: str) -> dict[str, Any]:
    return {
        "type": "rich_text",
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
    }


def element_state(element: dict[str, Any], value: Any) -> dict[str, Any]:
    """The state entry for one element holding `value` (a plain value, option value(s) or option dicts)."""
    kind = str(element["type"])
    key = STATEFUL_ELEMENTS[kind]
    entry: dict[str, Any] = {"type": kind}
    if key == "value":
        entry[key] = None if value is None else str(value)
    elif key == "selected_option":
        entry[key] = None if value is None else _option(element, value)
    elif key == "selected_options":
        entry[key] = [_option(element, v) for v in (value or [])]
    elif key in _LISTS:
        entry[key] = [str(v) for v in (value or [])]
    elif key == "rich_text_value":
        entry[key] = None if value is None else (value if isinstance(value, dict) else _rich_text(str(value)))
    elif key == "selected_date_time":
        entry[key] = None if value is None else int(value)
    else:
        entry[key] = None if value is None else str(value)
    return entry


def initial_state(element: dict[str, Any]) -> dict[str, Any]:
    kind = str(element["type"])
    key = STATEFUL_ELEMENTS[kind]
    initial = element.get(_INITIAL_KEYS[key])
    entry: dict[str, Any] = {"type": kind}
    if key in _LISTS:
        entry[key] = copy.deepcopy(initial) if initial is not None else []
    else:
        entry[key] = copy.deepcopy(initial)
    return entry


def find_element(blocks: list[dict[str, Any]], block_id: str, action_id: str | None = None) -> dict[str, Any]:
    """The interactive element in `block_id` (and with `action_id`, when the block holds several)."""
    for block in blocks:
        if str(block.get("block_id", "")) != block_id:
            continue
        candidates = [block.get("element"), block.get("accessory"), *(block.get("elements") or [])]
        for element in candidates:
            if isinstance(element, dict) and action_id in (None, element.get("action_id", object())):
                return element
    raise KeyError(f"no interactive element {action_id or ''!s} in block {block_id!r}")


def find_action(blocks: list[dict[str, Any]], action_id: str) -> tuple[str, dict[str, Any]]:
    """(block_id, element) of the element with `action_id` anywhere in the blocks."""
    for block in blocks:
        candidates = [block.get("element"), block.get("accessory"), *(block.get("elements") or [])]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id", "")), element
    raise KeyError(f"no element with action_id {action_id!r}")


def submission_state(
    blocks: list[dict[str, Any]], typed: dict[str, dict[str, Any]], values: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """`view.state.values` at submission: initial values, overlaid by what was typed, then by `values`."""
    state: dict[str, dict[str, Any]] = {}
    for block_id, element in stateful_elements(blocks):
        action_id = str(element.get("action_id", ""))
        state.setdefault(block_id, {})[action_id] = initial_state(element)
    for block_id, actions in typed.items():
        for action_id, entry in actions.items():
            if block_id in state and action_id in state[block_id]:
                state[block_id][action_id] = copy.deepcopy(entry)
    for block_id, value in values.items():
        element = find_element(blocks, block_id)
        state.setdefault(block_id, {})[str(element["action_id"])] = element_state(element, value)
    return state


def action_item(element: dict[str, Any], block_id: str, value: Any, action_ts: str) -> dict[str, Any]:
    """One entry of a block_actions payload's `actions` list."""
    kind = str(element.get("type"))
    item: dict[str, Any] = {"type": kind, "block_id": block_id, "action_id": element["action_id"]}
    if kind == "button":
        item["text"] = copy.deepcopy(element.get("text"))
        item["value"] = str(value) if value is not None else element.get("value")
        if "style" in element:
            item["style"] = element["style"]
    elif kind == "overflow":
        item["selected_option"] = _option(element, value)
    elif kind in STATEFUL_ELEMENTS:
        item.update({k: v for k, v in element_state(element, value).items() if k != "type"})
        if "placeholder" in element:
            item["placeholder"] = copy.deepcopy(element["placeholder"])
    else:
        item["value"] = None if value is None else str(value)
    item["action_ts"] = action_ts
    return item

"""The checks of a line's conversation: its messages (roles, order, content), tool calls and tools."""

from __future__ import annotations

from typing import Any, Final

from slackbot.backends.datasets import DatasetRules
from slackbot.datasets.report import ErrorKind, Problem
from slackbot.datasets.words import a_type, quote, type_name

_PART_TYPES: Final = frozenset({"text", "image_url", "input_audio", "refusal"})


def check_messages(messages: Any, rules: DatasetRules, name: str, *, ends_with_assistant: bool) -> Problem | None:
    """The first problem of a conversation (the list the line calls `name`), or None."""
    if not isinstance(messages, list):
        return ErrorKind.MESSAGES, f"{name} is {a_type(messages)}, not a list of messages"
    if not messages:
        return ErrorKind.MESSAGES, f"{name} is empty"
    previous: dict[str, Any] | None = None
    for index, message in enumerate(messages, start=1):
        where = f"message {index}"
        if not isinstance(message, dict):
            return ErrorKind.MESSAGES, f"{where} is {a_type(message)}, not an object"
        if "role" not in message:
            return ErrorKind.ROLE, f"{where} has no role"
        role = message["role"]
        if role not in rules.roles:
            expected = ", ".join(rules.roles[:-1]) + " or " + rules.roles[-1]
            return ErrorKind.ROLE, f"{where} has role {quote(role)} (expected {expected})"
        problem = check_message(message, where, rules)
        if problem:
            return problem
        if rules.alternating:
            problem = _turn(previous, message, where, index)
            if problem:
                return problem
        previous = message
    if ends_with_assistant and messages[-1]["role"] != "assistant":
        last = messages[-1]["role"]
        return ErrorKind.ORDER, f"the last message is from the {last}, not the assistant (SFT trains on that answer)"
    return None


def _turn(previous: dict[str, Any] | None, message: dict[str, Any], where: str, index: int) -> Problem | None:
    """Together's order: system or user first, then user and assistant take turns; tool answers follow the
    assistant message that called the tools, and the assistant speaks again after them."""
    role = message["role"]
    before = previous["role"] if previous is not None else None
    allowed: tuple[str | None, ...]
    if role == "system":
        allowed = (None,)
    elif role == "user":
        allowed = (None, "system", "assistant")
    elif role == "assistant":
        allowed = ("user", "tool")
    else:  # tool
        allowed = ("assistant", "tool")
        if before == "assistant" and previous is not None and not previous.get("tool_calls"):
            return ErrorKind.ORDER, f"{where} (tool) follows an assistant message that called no tool"
    if before in allowed:
        return None
    if before is None:
        return ErrorKind.ORDER, f"{where} is from the {role}: a conversation starts with a system or user message"
    return ErrorKind.ORDER, f"{where} ({role}) follows a {before} message (user and assistant take turns)"


def check_message(message: dict[str, Any], where: str, rules: DatasetRules) -> Problem | None:
    """The first problem of one message with a known role (its keys, tool calls, weight and content), or None."""
    role = message["role"]
    if rules.message_keys is not None:
        allowed = rules.message_keys.get(role, frozenset())
        extra = [key for key in message if key not in allowed]
        if extra:
            return ErrorKind.UNKNOWN_KEY, (
                f"{where} ({role}) has key {quote(extra[0])}, which {rules.service} does not take"
            )
    calls = message.get("tool_calls")
    if calls is not None:
        if role != "assistant":
            return ErrorKind.TOOLS, f"{where} ({role}) has tool_calls (only the assistant calls tools)"
        problem = _tool_calls(calls, where)
        if problem:
            return problem
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        return ErrorKind.TOOLS, f"{where} (tool) has no tool_call_id (the id of the call it answers)"
    if "weight" in message and (isinstance(message["weight"], bool) or message["weight"] not in (0, 1)):
        return ErrorKind.CONTENT, f"{where} has weight {quote(message['weight'])} (expected 0 or 1)"
    return _content(message, where)


def _content(message: dict[str, Any], where: str) -> Problem | None:
    role = message["role"]
    content = message.get("content")
    if content is None:
        # An assistant message may be only a call; everyone else says something.
        if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
            return None
        if role == "function" and "content" in message:
            return None
        missing = "null content" if "content" in message else "no content"
        return ErrorKind.CONTENT, f"{where} ({role}) has {missing}"
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return ErrorKind.CONTENT, f"{where} ({role}) has content of type {type_name(content)} (expected text)"
    if not content:
        return ErrorKind.CONTENT, f"{where} ({role}) has an empty content list"
    for number, part in enumerate(content, start=1):
        if not isinstance(part, dict) or part.get("type") not in _PART_TYPES:
            kind = part.get("type") if isinstance(part, dict) else type_name(part)
            return ErrorKind.CONTENT, f"{where} ({role}): content part {number} is of type {quote(kind)}"
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            return ErrorKind.CONTENT, f"{where} ({role}): content part {number} has no text"
    return None


def _tool_calls(calls: Any, where: str) -> Problem | None:
    if not isinstance(calls, list):
        return ErrorKind.TOOLS, f"{where}: tool_calls is {a_type(calls)}, not a list"
    for number, call in enumerate(calls, start=1):
        if not isinstance(call, dict):
            return ErrorKind.TOOLS, f"{where}: tool call {number} is {a_type(call)}, not an object"
        function = call.get("function")
        if not isinstance(call.get("id"), str) or call.get("type") != "function" or not isinstance(function, dict):
            return ErrorKind.TOOLS, f'{where}: tool call {number} needs "id", "type": "function" and "function"'
        if not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
            return ErrorKind.TOOLS, f"{where}: tool call {number} needs a function name and arguments (text)"
    return None


def check_tools(entry: dict[str, Any], rules: DatasetRules) -> Problem | None:
    """The first problem of the line's "tools" (the functions the conversation may call), if it has them."""
    if "tools" not in entry:
        return None
    tools = entry["tools"]
    if not isinstance(tools, list):
        return ErrorKind.TOOLS, f'"tools" is {a_type(tools)}, not a list'
    for number, tool in enumerate(tools, start=1):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            return ErrorKind.TOOLS, f'tool {number} needs "type": "function" and a "function" object'
        function = tool["function"]
        if not isinstance(function.get("name"), str) or not function["name"]:
            return ErrorKind.TOOLS, f"tool {number} has no function name"
        if "parameters" in function and not isinstance(function["parameters"], dict):
            return (
                ErrorKind.TOOLS,
                f"tool {number}: parameters is {a_type(function['parameters'])}, not an object",
            )
    return None

"""OpenPipe's dataset format, from its v1 OpenAPI document (`POST /datasets/{datasetId}/entries`).

An entry is a chat line: `messages` (roles system, user, assistant, developer, tool, function), with optional
`tools`, `tool_choice`, `response_format`, `split` (TRAIN or TEST), `metadata` and `rejected_message` (the answer
not to give, for preference tuning: the conversation's last assistant message is the preferred one). Every object
is `additionalProperties: false`, so an unknown key is refused. Entries go up in batches of at most 100
(`maxItems`). The spec states no limit on lines, bytes or tokens.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from slackbot.backends.base import Method
from slackbot.backends.datasets import DatasetRules, LineFormat

ENTRY_KEYS: Final = frozenset(
    {"messages", "rejected_message", "tool_choice", "tools", "response_format", "split", "metadata"}
)
MESSAGE_KEYS: Final = {
    "system": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset(
        {"role", "audio", "content", "function_call", "tool_calls", "name", "refusal", "annotations"}
    ),
    "developer": frozenset({"role", "content", "name"}),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "name", "content"}),
}
ENTRIES_PER_REQUEST: Final = 100  # the entries array's maxItems


@functools.cache
def _entry_schema() -> dict[str, Any]:
    # The spec the package ships (the local OpenPipe answers from the same copy): the exact contract.
    from slackbot.sandbox.openpipe_schema import body_schema, spec

    schema: dict[str, Any] = body_schema(spec(), "/datasets/{datasetId}/entries")["properties"]["entries"]["items"]
    return schema


def spec_problem(entry: dict[str, Any]) -> str | None:
    """The first way `entry` breaks the spec's entry schema (after the friendlier checks passed), or None."""
    from slackbot.sandbox.openpipe_schema import check

    problems = check(_entry_schema(), entry, "entry")
    if not problems:
        return None
    return f"does not match OpenPipe's entry format ({problems[0]})"


OPENPIPE_DATASET_RULES: Final = DatasetRules(
    service="OpenPipe",
    formats={Method.SFT: (LineFormat.CHAT,), Method.DPO: (LineFormat.REJECTED_MESSAGE,)},
    roles=("system", "user", "assistant", "developer", "tool", "function"),
    message_keys=MESSAGE_KEYS,
    line_keys=ENTRY_KEYS,
    upload_batch_lines=ENTRIES_PER_REQUEST,
    extra_check=spec_problem,
)

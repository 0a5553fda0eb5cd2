"""What a backend declares about the dataset files it takes: `DatasetRules` (see `BackendDeclaration.dataset_rules`).

The validator (`slackbot/datasets/validate.py`) reads only these rules, so a backend's file format is one value in
its own folder (`backends/<name>/datasets.py`), next to the source each rule comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from slackbot.backends.base import Method

# The bot's own bound on one line, whatever the service takes: a line is held in memory whole while it is checked.
DEFAULT_MAX_LINE_BYTES: Final = 8 * 1024 * 1024


class LineFormat(StrEnum):
    """The shapes of one JSONL line the services document."""

    CHAT = "chat"  # {"messages": [...], "tools"?: [...]}
    INSTRUCTION = "instruction"  # {"prompt": str, "completion": str}
    TEXT = "text"  # {"text": str}
    # A chat line plus `rejected_message`, the assistant answer not to give (OpenPipe's preference entries).
    REJECTED_MESSAGE = "rejected_message"
    # {"input": {"messages": [...]}, "preferred_output": [one assistant message], "non_preferred_output": [...]}
    # (Together's, and OpenAI's, preference lines).
    PREFERENCE_PAIR = "preference_pair"


# The keys that identify each format on a line (a line carrying two formats' keys is ambiguous).
FORMAT_KEYS: Final[Mapping[LineFormat, tuple[str, ...]]] = {
    LineFormat.CHAT: ("messages",),
    LineFormat.INSTRUCTION: ("prompt", "completion"),
    LineFormat.TEXT: ("text",),
    LineFormat.REJECTED_MESSAGE: ("messages", "rejected_message"),
    LineFormat.PREFERENCE_PAIR: ("input", "preferred_output", "non_preferred_output"),
}

# A check a backend adds after the neutral ones: the reason a parsed line is refused, or None.
LineCheck = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class DatasetRules:
    """One backend's dataset format and limits. `None` for a limit: the service states none."""

    service: str  # how messages name the service ("OpenPipe")
    formats: Mapping[Method, tuple[LineFormat, ...]]  # the line formats each method takes
    roles: tuple[str, ...]  # message roles, in the order the messages list them
    # Keys a message of each role may carry (None: the service ignores keys it does not know).
    message_keys: Mapping[str, frozenset[str]] | None = None
    # Keys a line may carry beyond its format's own (None: the service ignores keys it does not know).
    line_keys: frozenset[str] | None = None
    # Conversations start with system or user, then user and assistant take turns (tool answers follow the
    # assistant message that called them).
    alternating: bool = False
    sft_ends_with_assistant: bool = True  # an SFT conversation's last message is the answer trained on
    min_lines: int = 1
    max_lines: int | None = None
    max_file_bytes: int | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    upload_batch_lines: int | None = None  # entries per upload request, when the service uploads by entries
    extra_check: LineCheck | None = field(default=None, compare=False)  # e.g. the service's published schema

    def methods(self) -> tuple[Method, ...]:
        return tuple(m for m in Method if self.formats.get(m))

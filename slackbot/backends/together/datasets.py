"""Together's dataset format for JSONL files (docs.together.ai "Data preparation" and "Preference fine-tuning";
the SDK `together==3.1.1`, `together/lib/utils/files.py` and `constants.py`).

SFT lines are one of: conversational (`messages`, with `tools` beside them), instruction (`prompt` and
`completion`) or generic text (`text`); a line with keys of two formats is refused. Conversations start with a
system or user message, then user and assistant take turns (roles system, user, assistant, tool); a message's
optional `weight` is 0 or 1. DPO lines are `input` (`{"messages": [...]}`), `preferred_output` and
`non_preferred_output`, each exactly one assistant message. Other keys are ignored by the service. A file needs
at least one sample (`MIN_SAMPLES`) and may be up to 50.1 GB (`MAX_FILE_SIZE_GB`); no line, token or line-count
limit is stated for JSONL (token limits are per model: `GET /fine-tunes/models/limits`).
"""

from __future__ import annotations

from typing import Final

from slackbot.backends.base import Method
from slackbot.backends.datasets import DatasetRules, LineFormat

MAX_FILE_BYTES: Final = int(50.1 * 2**30)

TOGETHER_DATASET_RULES: Final = DatasetRules(
    service="Together",
    formats={
        Method.SFT: (LineFormat.CHAT, LineFormat.INSTRUCTION, LineFormat.TEXT),
        Method.DPO: (LineFormat.PREFERENCE_PAIR,),
    },
    roles=("system", "user", "assistant", "tool"),
    alternating=True,
    min_lines=1,
    max_file_bytes=MAX_FILE_BYTES,
)

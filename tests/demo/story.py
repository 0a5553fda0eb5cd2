"""`slackbot demo` run through the CLI, its output cut into the parts it prints (one heading each)."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import Any

from slackbot.cli import main

HEADING = re.compile(r"^── (\d) · ")
# What Slack's own markup looks like: none of it may reach the terminal.
RAW_MARKUP = re.compile(r"<@U\w+>|<!date|:[a-z_]+:|\*[A-Z][^*\n]*\*|```")


@dataclass
class Story:
    out: str

    def part(self, number: int) -> list[str]:
        """The lines under heading `number`."""
        lines: list[str] = []
        inside = False
        for line in self.out.splitlines():
            found = HEADING.match(line)
            if found:
                inside = int(found[1]) == number
            elif inside:
                lines.append(line)
        assert lines, f"no part {number} in:\n{self.out}"
        return lines

    def replies(self) -> list[str]:
        """The thread's messages as printed (each one's first line), without the card's redraws."""
        return [line.strip().removeprefix("↳ ") for line in self.part(4) if line.strip().startswith("↳ ")]

    def card_redraws(self) -> list[str]:
        return [line.strip().removeprefix("card ↻ ") for line in self.part(4) if line.strip().startswith("card ↻ ")]

    def request(self, method_and_path: str) -> Any:
        """The JSON body printed under `method_and_path`."""
        lines = self.part(2)
        start = next(i for i, line in enumerate(lines) if line.strip() == method_and_path)
        end = next(i for i in range(start + 1, len(lines)) if lines[i] == "    }")
        return json.loads("\n".join(lines[start + 1 : end + 1]))


def play(*argv: str) -> Story:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["demo", *argv]) == 0
    out = buffer.getvalue()
    assert not RAW_MARKUP.search(out), RAW_MARKUP.search(out)
    return Story(out)


def count(lines: list[str], text: str) -> int:
    return sum(text in line for line in lines)

"""Slack's rich text as a person reads it in the app, for a terminal: mrkdwn, Block Kit messages and modals.

Mentions become @name (the local Slack knows the names), dates their fallback text, emoji codes the emoji, bold
and code marks are dropped, and a field's "*Label*\\nvalue" reads "Label: value".
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import Any

from slackbot.text import clip_plain

WIDTH = 110  # long lines (a curl example, a row of form fields) are clipped or wrapped to this

# The emoji the bot's cards, replies and modals use (slackbot/blocks): anything else stays as its code.
EMOJI = {
    "arrows_counterclockwise": "🔄",
    "chart_with_downwards_trend": "📉",
    "double_vertical_bar": "⏸️",
    "grey_question": "❔",
    "heavy_multiplication_x": "✖️",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "information_source": "\N{INFORMATION SOURCE}\N{VARIATION SELECTOR-16}",
    "no_entry": "⛔",
    "octagonal_sign": "🛑",
    "outbox_tray": "📤",
    "warning": "⚠️",
    "wastebasket": "🗑️",
    "weight_lifter": "🏋️",
    "white_check_mark": "✅",
    "x": "❌",
    "zzz": "💤",
}


TYPED = frozenset({"plain_text_input", "number_input", "email_text_input", "url_text_input"})
MANY = 2  # lines of a select's options shown; the rest are counted


class Reader:
    """Reads Slack's text as the app shows it; `names` are the workspace's user names by id."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = names

    def text(self, mrkdwn: str) -> str:
        """One mrkdwn string as plain text; a code block becomes its own indented, clipped lines."""
        parts = mrkdwn.split("```")
        out: list[str] = []
        for number, part in enumerate(parts):
            if number % 2:  # inside a code block
                code = [clip_plain("    " + line, WIDTH) for line in part.strip("\n").splitlines()]
                out.append("\n" + "\n".join(code) + "\n")
            else:
                out.append(self._inline(part))
        return re.sub(r"\n{2,}", "\n", "".join(out)).strip("\n")

    def _inline(self, text: str) -> str:
        text = re.sub(r"<@(\w+)>", lambda m: "@" + self.names.get(m[1], m[1]), text)
        text = re.sub(r"<#(\w+)\|([^>]*)>", r"#\2", text)
        text = re.sub(r"<#(\w+)>", r"#\1", text)
        text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]*)>", r"\1", text)
        text = re.sub(r"<!(here|channel|everyone)>", r"@\1", text)
        text = re.sub(r"<[^|>]+\|([^>]+)>", r"\1", text)
        text = re.sub(r"<([^>]+)>", r"\1", text)
        text = re.sub(r":([a-z0-9_+-]+):", lambda m: EMOJI.get(m[1], m[0]), text)
        text = re.sub(r"\*([^*\n]+)\*", r"\1", text)
        text = re.sub(r"(?<!\w)_([^_\n]+)_(?!\w)", r"\1", text)
        text = re.sub(r"(?<!\w)~([^~\n]+)~(?!\w)", r"\1", text)
        text = re.sub(r"`([^`\n]*)`", r"\1", text)
        return html.unescape(text)

    def field(self, mrkdwn: str) -> list[str]:
        """A section field, "*Label*\\nvalue" (the card's), as "Label: value" with the value's lines aligned."""
        found = re.fullmatch(r"\*([^*\n]+)\*\n(.*)", mrkdwn, flags=re.DOTALL)
        if found is None:
            return self.text(mrkdwn).splitlines()
        label = self.text(found[1]) + ": "
        first, *rest = self.text(found[2]).splitlines() or [""]
        return [label + first, *(" " * len(label) + line for line in rest)]

    def section(self, mrkdwn: str) -> list[str]:
        """A section's text; one that starts with a bold label ("*Progress* 40%") reads "Progress: 40%"."""
        return self.text(re.sub(r"^\*([^*\n:]+)\* (?!·)", r"\1: ", mrkdwn)).splitlines()

    def blocks(self, blocks: list[dict[str, Any]]) -> list[str]:
        """A message's (or a modal's display) blocks, one or more lines each; inputs are `form`'s."""
        lines: list[str] = []
        for block in blocks:
            kind = block.get("type")
            if kind == "header":
                lines.append(block["text"]["text"])
            elif kind == "section":
                if isinstance(block.get("text"), dict):
                    lines.extend(self._part_lines(block["text"], self.section))
                for part in block.get("fields") or []:
                    lines.extend(self._part_lines(part, self.field))
            elif kind == "context":
                shown = [self._part_lines(e, self.section) for e in block.get("elements") or [] if "text" in e]
                lines.append(" · ".join(" ".join(part) for part in shown))
            elif kind == "actions":
                lines.append("  ".join(control(e) for e in block.get("elements") or []))
            elif kind == "divider":
                lines.append("─" * 12)
            elif kind == "image":
                lines.append(f"[image: {block.get('alt_text', '')}]")
        return lines

    def _part_lines(self, part: dict[str, Any], mrkdwn: Callable[[str], list[str]]) -> list[str]:
        if part.get("type") == "plain_text":
            return str(part["text"]).splitlines()
        return mrkdwn(str(part["text"]))

    def form(self, view: dict[str, Any]) -> list[str]:
        """A modal as its user sees it: the title, each input with its choices, fields of free text run together
        per group (the form's dividers), the buttons."""
        lines = [f"┌ {view['title']['text']}"]
        typed: list[str] = []  # the labels of a run of free-text inputs, shown on one wrapped line

        def flush() -> None:
            lines.extend("│ " + line for line in runs(typed, " · ", WIDTH - 2))
            typed.clear()

        for block in view["blocks"]:
            if block.get("type") != "input":
                flush()
                lines.extend("│ " + line for line in self.blocks([block]))
                continue
            label, element = block["label"]["text"], block["element"]
            if element["type"] in TYPED:
                typed.append(label)
                continue
            flush()
            head = f"{label}: "
            shown = runs(choice(element), " | ", WIDTH - 2 - len(head))
            if len(shown) > MANY:
                rest = sum(part.count(" | ") + 1 for part in shown[MANY:])
                shown = [*shown[:MANY], f"… and {rest} more"]
            lines.extend("│ " + (head if n == 0 else " " * len(head)) + line for n, line in enumerate(shown))
        flush()
        buttons = [view[key]["text"] for key in ("close", "submit") if view.get(key)]
        lines.append("└ " + "  ".join(f"[{b}]" for b in buttons))
        return lines


def runs(items: list[str], joint: str, width: int) -> list[str]:
    """`items` joined on as few lines of `width` as they fit on, never splitting one."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(joint) + len(item) <= width:
            lines[-1] += joint + item
        else:
            lines.append(item)
    return lines


def choice(element: dict[str, Any]) -> list[str]:
    """What a non-text input shows: a select's options (✓ on the one chosen already), boxes, a file picker."""
    kind = element["type"]
    picked = [o["value"] for o in element.get("initial_options") or []]
    if element.get("initial_option"):
        picked.append(element["initial_option"]["value"])
    if kind == "checkboxes":
        return [("☑ " if o["value"] in picked else "☐ ") + o["text"]["text"] for o in element["options"]]
    if kind == "file_input":
        return ["upload a " + " or ".join(f".{t}" for t in element.get("filetypes") or ["any"]) + " file"]
    if "options" in element:
        return [o["text"]["text"] + (" ✓" if o["value"] in picked else "") for o in element["options"]]
    placeholder = element.get("placeholder", {}).get("text", "")
    return [f"[{placeholder} ▾]" if placeholder else "[…]"]


def control(element: dict[str, Any]) -> str:
    """A button as [Text]; an overflow menu as [⋯ its options]."""
    if element.get("type") == "overflow":
        return "[⋯ " + ", ".join(o["text"]["text"] for o in element.get("options") or []) + "]"
    return f"[{element.get('text', {}).get('text', '')}]"

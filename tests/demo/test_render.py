"""Slack's text as the demo prints it: what a person sees in the app, never the markup."""

from __future__ import annotations

from typing import Any

import pytest

from slackbot.cli import _parser
from slackbot.demo import BACKENDS
from slackbot.demo.render import WIDTH, Reader

READ = Reader({"U0ALICE": "alice"})


@pytest.mark.parametrize(
    ("mrkdwn", "shown"),
    [
        (":white_check_mark: <@U0ALICE> *Completed* · 7m", "✅ @alice Completed · 7m"),
        ("<@U0BOB> and <#C0GENERAL|general>", "@U0BOB and #general"),  # a name the workspace does not know
        (
            "<!date^1795942053^{date_short_pretty} at {time}|2026-11-29 08:47 UTC> (0s ago)",
            "2026-11-29 08:47 UTC (0s ago)",
        ),
        ("see <https://example.com/x|the docs> or <https://example.com>", "see the docs or https://example.com"),
        ("Call it as `openpipe:x` &lt;here&gt; &amp; _now_", "Call it as openpipe:x <here> & now"),
        (":not_an_emoji_we_know: stays", ":not_an_emoji_we_know: stays"),
        ("snake_case_name stays", "snake_case_name stays"),
    ],
)
def test_mrkdwn_reads_as_the_app_shows_it(mrkdwn: str, shown: str) -> None:
    assert READ.text(mrkdwn) == shown


def test_a_code_block_is_its_own_clipped_line() -> None:
    lines = READ.text("Call it as `m`:\n```curl " + "x" * 200 + "```").splitlines()
    assert lines[0] == "Call it as m:"
    assert lines[1].startswith("    curl xxx") and len(lines[1]) == WIDTH and lines[1].endswith("…")


def test_a_cards_fields_read_label_colon_value() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Fine-tune x"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Status*\n:hourglass_flowing_sand: Queued"},
                {"type": "mrkdwn", "text": "*Settings*\nSFT: on\nDPO: off"},
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Progress* `▓░` 40% · about 3 min left"}},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Cancel"}},
                {"type": "overflow", "options": [{"text": {"type": "plain_text", "text": "Delete model"}}]},
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Job #1 · x"}]},
    ]
    assert READ.blocks(blocks) == [
        "Fine-tune x",
        "Status: ⏳ Queued",
        "Settings: SFT: on",
        "          DPO: off",
        "Progress: ▓░ 40% · about 3 min left",
        "[Cancel]  [⋯ Delete model]",
        "Job #1 · x",
    ]


def _input(block_id: str, label: str, element: dict[str, Any]) -> dict[str, Any]:
    return {"type": "input", "block_id": block_id, "label": {"type": "plain_text", "text": label}, "element": element}


def _options(*names: str) -> list[dict[str, Any]]:
    return [{"text": {"type": "plain_text", "text": n}, "value": n} for n in names]


def test_a_form_shows_its_choices_and_runs_free_text_fields_together() -> None:
    many = [f"org/model-{n:02d}-with-a-long-name" for n in range(12)]
    view = {
        "title": {"type": "plain_text", "text": "Start a fine-tune"},
        "submit": {"type": "plain_text", "text": "Start training"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _input(
                "kind",
                "Kind",
                {"type": "static_select", "options": _options("a", "b"), "initial_option": _options("b")[0]},
            ),
            _input("base", "Base model", {"type": "static_select", "options": _options(*many)}),
            _input("sft", "SFT", {"type": "checkboxes", "options": _options("on"), "initial_options": _options("on")}),
            {"type": "divider"},
            _input("e", "Epochs", {"type": "plain_text_input"}),
            _input("t", "Temperature", {"type": "number_input", "is_decimal_allowed": True}),
            _input("f", "File", {"type": "file_input", "filetypes": ["jsonl"]}),
        ],
    }
    lines = READ.form(view)
    assert lines[0] == "┌ Start a fine-tune" and lines[-1] == "└ [Cancel]  [Start training]"
    assert lines[1] == "│ Kind: a | b ✓"
    base = [line for line in lines if line.startswith("│ Base model: ") or line.startswith("│             ")]
    assert len(base) == 3 and base[-1] == "│             … and 6 more"
    assert all(len(line) <= WIDTH for line in lines)
    assert lines[-5:-1] == ["│ SFT: ☑ on", "│ ────────────", "│ Epochs · Temperature", "│ File: upload a .jsonl file"]


def test_the_cli_offers_each_story(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    assert parser.parse_args(["demo"]).backend == BACKENDS[0] == "together"
    for backend in BACKENDS:
        assert parser.parse_args(["demo", "--backend", backend, "--fail"]).backend == backend
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--backend", "nonesuch"])
    offered = ", ".join(f"'{b}'" for b in BACKENDS)
    assert f"invalid choice: 'nonesuch' (choose from {offered})" in capsys.readouterr().err

from __future__ import annotations

from slackbot.blocks.help import help_message, usage_message


def test_help_lists_every_sub_command_and_the_shortcut() -> None:
    text, blocks = help_message()
    shown = text + str(blocks)
    for usage in ("/finetune help", "/finetune status &lt;slug&gt;", "/finetune list", "/finetune track &lt;slug&gt;"):
        assert usage in shown
    assert "Fine-tune from this thread" in str(blocks)
    assert len(blocks) <= 50 and text


def test_usage_names_the_unknown_word_and_the_valid_ones() -> None:
    line = usage_message("frobnicate `rm -rf`   " + "x" * 500)
    assert line.startswith("I don't know `/finetune frobnicate 'rm -rf' x")
    assert "`/finetune help`" in line and "`/finetune status &lt;slug&gt;`" in line
    assert len(line) < 300 and "\n" not in line

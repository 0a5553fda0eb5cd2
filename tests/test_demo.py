"""`slackbot demo` tells the whole story offline: modal, validation, POST /models, card, every status."""

from __future__ import annotations

import pytest

from slackbot.cli import main


@pytest.mark.parametrize("fail", [False, True])
def test_demo_tells_the_whole_story(fail: bool, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--fail"] if fail else ["demo"]) == 0
    out = capsys.readouterr().out
    assert "/finetune" in out and "POST /api/v1/models" in out
    assert "lowercase" in out  # the validation error shown under the slug field
    assert "Queued" in out and "Provisioning" in out
    if fail:
        assert "Training loss diverged" in out and "Deployed" not in out
    else:
        assert "Training started" in out and "openpipe:support-llama-8b" in out

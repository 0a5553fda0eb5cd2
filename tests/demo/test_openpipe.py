"""`slackbot demo --backend openpipe`: OpenPipe's story as it was (modal, a slug refused, POST /models, a reply per
status), read from the printed output."""

from __future__ import annotations

import pytest

from tests.demo.story import Story, count, play

STATUS_REPLIES = ["⏳ Queued — waiting for a GPU", "🏋️ Provisioning — the trainer is starting"]
REASON = "Training loss diverged (NaN) at step 812"


@pytest.fixture(scope="module")
def story() -> Story:
    return play("--backend", "openpipe")


@pytest.fixture(scope="module")
def failed() -> Story:
    return play("--backend", "openpipe", "--fail")


@pytest.mark.parametrize("fail", [False, True])
def test_the_whole_story(fail: bool, story: Story, failed: Story) -> None:
    shown = failed if fail else story
    assert "OpenPipe-compatible service" in shown.out.splitlines()[0]
    assert "#general — @alice types:  /finetune" in shown.part(1)
    assert count(shown.part(1), "Dataset picker, typing “support”: Support tickets 2026-Q3 · 12,480 entries") == 1
    part = shown.part(2)
    error = part.index("  ▸ the form stays open; under “Model slug” it says:")
    assert part[error + 1].startswith("      The slug may contain only lowercase letters, digits and -")
    assert count(part, "The slug may contain") == 1
    body = shown.request("POST /api/v1/models")
    assert body["slug"] == "support-llama-8b" and body["defaultTemperature"] == 0.3
    assert body["trainingConfig"]["baseModel"] == "meta-llama/Meta-Llama-3.1-8B-Instruct"
    assert body["trainingConfig"]["sft_hyperparameters"] == {"num_epochs": 3.0}
    card = shown.part(3)
    assert "  │ Status: ⏳ Accepted — waiting to be queued" in card and "  │ Requested by: @alice" in card
    replies = shown.replies()
    for status in STATUS_REPLIES:
        assert sum(r.startswith(status) for r in replies) == 1, (status, replies)
    final = shown.part(5)
    if fail:
        assert sum(r.startswith("❌ @alice Training failed") for r in replies) == 1, replies
        assert count(shown.part(4), f"Error: {REASON}") == 1
        assert "  │ Status: ❌ Failed" in final and f"  │ ❌ Error: {REASON}" in final
        assert "Deployed" not in shown.out
    else:
        assert sum(r.startswith("🏋️ Training started") for r in replies) == 1, replies
        assert sum(r.startswith("✅ @alice Deployed — the model is ready to call") for r in replies) == 1
        assert count(shown.part(4), "Call it as openpipe:support-llama-8b:") == 1
        assert "  │ Status: ✅ Deployed" in final and "  │ Call it as openpipe:support-llama-8b:" in final

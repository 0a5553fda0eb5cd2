"""`slackbot demo` (Together, the default): every part a newcomer must see, read from the printed output."""

from __future__ import annotations

import re

import pytest

from slackbot.sandbox.together_api import SUPPORTED_MODELS
from tests.demo.story import Story, count, play

MODEL = SUPPORTED_MODELS[0]
CALL_AS = f"sandbox/{MODEL.split('/')[-1]}-support-lora"  # the local Together's name for the trained model
STATUS_REPLIES = [
    "⏳ Queued — waiting for a GPU",
    "🏋️ Training started",
    "🏋️ Training done — compressing the model",
    "🏋️ Uploading the model",
    "✅ @alice Completed — the model is ready to call",
]
EVENTS = ["Checkpoint saved at step 5 of 15", "Checkpoint saved at step 10 of 15", "Checkpoint saved at step 15 of 15"]
EVENTS += ["Epoch completed"]  # not "Training completed" nor "Job completed": the status replies tell those
REASON = "Training loss diverged (NaN) at step 7"


@pytest.fixture(scope="module")
def story() -> Story:
    return play()


@pytest.fixture(scope="module")
def failed() -> Story:
    return play("--fail")


def test_the_default_is_together(story: Story) -> None:
    assert story.out.splitlines()[0].startswith("slackbot demo — a fine-tune on Together AI")
    assert story.part(1)[1:3] == ["  ┌ Start a fine-tune", "  │ Dataset: [Search datasets ▾]"]  # no Service choice


def test_the_form_is_togethers_with_its_files_and_line_counts(story: Story) -> None:
    form = story.part(1)
    assert form[0] == "#general — @alice types:  /finetune"
    assert "  ┌ Start a fine-tune" in form and "  └ [Cancel]  [Start training]" in form
    assert "  │ Training type: LoRA (adapter) ✓ | Full (all weights)" in form
    assert count(form, f"│ Base model: {MODEL}") == 1
    assert count(form, "│ Supervised fine-tuning (SFT): ☑ Train with SFT") == 1
    assert count(form, "│ Preference tuning (DPO): ☐ Train with DPO instead") == 1
    assert count(form, "Epochs · Learning rate (absolute, not a multiplier) · Batch size") == 1
    picker = form[form.index("  ▸ the Dataset picker lists the Together files to train on:") + 1 :]
    assert [line.strip() for line in picker[:3]] == [
        "support-tickets-2026-q3.jsonl · 1,240 entries",
        "sql-generation-v2.jsonl · 530 entries",
        "product-faq-dpo-pairs.jsonl · 310 entries",
    ]


def test_a_field_error_then_the_price_then_the_request(story: Story) -> None:
    part = story.part(2)
    error = part.index("  ▸ the form stays open; under “Epochs” it says:")
    assert part[error + 1] == f"      Epochs must be a whole number from 1 to 20 for {MODEL}."
    assert count(part, "Epochs must be") == 1
    confirm = part[part.index("    ┌ Confirm the price") :]
    assert confirm[1:6] == [
        "    │ Fine-tune support-lora on Together",
        "    │ Estimated price: $0.04",
        "    │ Tokens: 86,490",
        "    │ Epochs: 3",
        "    │ Your account's limit: $100.00",
    ]
    assert "    └ [Back]  [Start training]" in confirm
    # The request comes after the price was confirmed, and is exactly what the form said.
    assert part.index("  POST /v1/fine-tunes") > part.index("    └ [Back]  [Start training]")
    body = story.request("POST /v1/fine-tunes")
    assert body.pop("training_file").startswith("file-")
    assert body == {
        "model": MODEL,
        "n_epochs": 3,
        "suffix": "support-lora",
        "training_method": {"method": "sft", "train_on_inputs": "auto"},
        "training_type": {"type": "Lora", "lora_r": 32, "lora_alpha": 64},
    }


def test_the_card_reads_plainly(story: Story) -> None:
    card = [line.removeprefix("  │ ") for line in story.part(3) if line.startswith("  │ ")]
    assert card[:5] == [
        "Fine-tune support-lora",
        "Status: ⏳ Pending — accepted",
        "Provider: Together (LoRA)",
        f"Base model: {MODEL}",
        "Dataset: support-tickets-2026-q3.jsonl (1,240 entries)",
    ]
    assert "Requested by: @alice" in card and "[Cancel]" in card and card[-1] == "Job #1 · support-lora"
    assert any(re.fullmatch(r"Started: \d{4}-\d\d-\d\d \d\d:\d\d UTC \(0s ago\)", line) for line in card), card


def test_the_thread_tells_each_status_once_the_events_and_the_chart(story: Story) -> None:
    replies = story.replies()
    told = [next(r for r in replies if r.startswith(status)) for status in STATUS_REPLIES]
    assert [replies.index(r) for r in told] == sorted(replies.index(r) for r in told)  # in the order they came
    for status in STATUS_REPLIES:
        assert sum(r.startswith(status) for r in replies) == 1, (status, replies)
    thread = story.part(4)
    for event in EVENTS:
        assert count(thread, event) == 1, (event, thread)
    assert count(thread, "Training completed") == count(thread, "Job completed") == 0, thread
    [chart] = [r for r in replies if r.startswith("📈")]
    assert re.fullmatch(
        r"📈 a chart, “support-lora — loss curve \((step 15|final)\)”: "
        r"a 960\N{MULTIPLICATION SIGN}540 PNG of 15 points \(loss-curve-job1-\d+\.png\)",
        chart,
    ), chart
    # Completion names the model to call, under the reply that mentions alice.
    done = thread.index(next(line for line in thread if "✅ @alice Completed" in line))
    assert thread[done + 1].strip() == f"Call it as {CALL_AS}:"
    assert thread[done + 2].strip().startswith("curl http://127.0.0.1:")
    # The card follows along: its status each time it changes, the progress while training.
    redraws = story.card_redraws()
    assert any(r.startswith("Status: 🏋️ Training · ") and "Progress: about 5 min left" in r for r in redraws)
    assert redraws[-1] == "Status: ✅ Completed · Cost: $0.04"


def test_the_final_card_has_the_price_and_the_model(story: Story) -> None:
    card = [line.removeprefix("  │ ") for line in story.part(5) if line.startswith("  │ ")]
    assert card[1] == "Status: ✅ Completed"
    assert "Cost: $0.04" in card  # what the confirmation estimated
    assert f"Call it as {CALL_AS}:" in card and "[Try it]  [⋯ Delete model]" in card
    assert any(line.startswith("Started:") and line.endswith("(7m 00s total)") for line in card), card


def test_a_failed_job_tells_togethers_reason(failed: Story) -> None:
    replies = failed.replies()
    assert sum(r.startswith("❌ @alice Training failed") for r in replies) == 1, replies
    assert not [r for r in replies if "Completed" in r or "Uploading" in r]
    thread = failed.part(4)
    assert count(thread, f"Error: {REASON}") == 1  # under the failure reply
    assert count(thread, f"Error — {REASON}") == 1  # and in the service's own events, in plain words
    assert count(thread, "job_error") == 0
    [chart] = [r for r in replies if r.startswith("📈")]
    assert "a 960\N{MULTIPLICATION SIGN}540 PNG of 7 points" in chart  # the steps trained before it failed
    card = [line.removeprefix("  │ ") for line in failed.part(5) if line.startswith("  │ ")]
    assert card[1] == "Status: ❌ Failed" and f"❌ Error: {REASON}" in card
    assert "[Try it]" not in " ".join(card)

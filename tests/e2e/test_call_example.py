"""How to call a deployed model: the card and the DEPLOYED reply say the same thing, against OPENPIPE_BASE_URL."""

from __future__ import annotations

import json

from pydantic import SecretStr

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from tests.e2e.harness import OPENPIPE_KEY, Harness


def _section_texts(message: dict[str, object]) -> list[str]:
    blocks = message.get("blocks")
    assert isinstance(blocks, list)
    return [b["text"]["text"] for b in blocks if b.get("type") == "section" and isinstance(b.get("text"), dict)]


def test_deployed_card_and_reply_show_the_same_example_on_the_configured_base_url(harness: Harness) -> None:
    h = harness
    dataset = h.openpipe.add_dataset("Elsewhere", entries=3)
    other = OpenPipeBackend(SecretStr(OPENPIPE_KEY), h.openpipe.url)
    spec = openpipe_spec(dataset_id=dataset, slug="ready-model", provider=Provider.OPENPIPE, base_model="Qwen/Qwen3-8B")
    other.create(spec)
    other.close()
    assert "Looking up" in h.command("track ready-model")
    card = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
    h.openpipe.set_status("ready-model", "DEPLOYED")
    h.run_for(20, step=5)
    reply = h.wait(lambda: [r for r in h.slack.thread("C0GENERAL", card["ts"]) if "Deployed" in r["text"]])[0]
    card = next(m for m in h.slack.messages("C0GENERAL") if m["ts"] == card["ts"])

    configured = h.settings.openpipe_base_url.rstrip("/")
    assert configured.startswith("http://127.0.0.1:")
    on_card = [t for t in _section_texts(card) if "Call it as" in t]
    in_reply = [t for t in _section_texts(reply) if "Call it as" in t]
    assert len(on_card) == 1 and len(in_reply) == 1
    example = on_card[0][on_card[0].index("Call it as") :]
    assert f"curl {configured}/chat/completions" in example and "`openpipe:ready-model`" in example
    assert in_reply[0].endswith(example)  # the reply's lines end with the very same text as the card's
    assert "api.openpipe.ai" not in json.dumps([card["blocks"], reply["blocks"]])

"""Two backends on at once, over signed HTTP: OpenPipe (the local stand-in) and the test-only "toy" backend
(tests/stand_ins/toy.py). The modal asks for the backend first, jobs are stored with theirs and followed by it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slackbot import ids
from slackbot.backends.openpipe.catalog import OPENPIPE_BASE_MODELS
from slackbot.backends.openpipe.fields import OPENPIPE_FORM, Provider
from slackbot.backends.registry import registered
from slackbot.blocks.modal import finetune_modal
from slackbot.forms import ModalMetadata, default_option
from tests.e2e.harness import Harness
from tests.stand_ins.toy import TOY, ToyBackend

GOLDEN = Path(__file__).parent / "data" / "one_backend_modal.json"


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Harness, ToyBackend]]:
    toy = ToyBackend()
    with registered(TOY):
        h = Harness(tmp_path, backends=[toy])
        try:
            yield h, toy
        finally:
            h.close()


def _pick_backend(h: Harness, view: dict[str, Any], name: str, display: str) -> dict[str, Any]:
    old = view["hash"]
    option = {"text": {"type": "plain_text", "text": display}, "value": name}
    answer = h.driver.block_action(view["id"], ids.BLOCK_BACKEND, ids.ACTION_BACKEND, selected_option=option)
    assert answer.status_code == 200, answer.text
    updated: dict[str, Any] = h.wait(lambda: (v := h.driver.view(view["id"]))["hash"] != old and v)
    return updated


def _block_ids(view: dict[str, Any]) -> list[str]:
    return [b.get("block_id", "") for b in view["blocks"]]


def test_with_one_backend_the_modal_is_the_one_made_before_backends_were_declared(tmp_path: Path) -> None:
    # The golden file was written by the code before this change (commit e6a686b) from the same inputs.
    golden = json.loads(GOLDEN.read_text("utf-8"))
    meta = ModalMetadata(team_id="T0", user_id="U0ALICE", channel_id="C0GENERAL")
    now = {
        "blank": finetune_modal(
            meta,
            None,
            form=OPENPIPE_FORM,
            option=default_option(OPENPIPE_FORM),
            base_models=["Qwen/Qwen3-8B", "meta-llama/Llama-3.2-3B-Instruct"],
            backends=[("openpipe", "OpenPipe")],
        ),
        "typed": finetune_modal(
            meta.model_copy(update={"origin": "retry", "retry_of": 7}),
            {"slug": "kept-slug", "sft_epochs": "3"},
            form=OPENPIPE_FORM,
            option="openai",
            base_models=["gpt-4.1-mini-2025-04-14"],
            errors={"slug": "taken"},
            backends=[("openpipe", "OpenPipe")],
        ),
    }
    assert json.dumps(now, indent=1, sort_keys=True) == json.dumps(golden, indent=1, sort_keys=True)
    # And the modal a one-backend bot opens over HTTP: no backend choice, no backend in its metadata.
    h = Harness(tmp_path)
    try:
        view = h.open_modal()
        assert ids.BLOCK_BACKEND not in _block_ids(view)
        assert "backend" not in json.loads(view["private_metadata"])
        # Slack names blocks that have no block_id itself; the base-model list here is the catalog's.
        # Plus the dataset file input OpenPipe's upload capability adds (issue 15), which the golden predates.
        blocks = [b for b in view["blocks"] if b.get("block_id") != ids.BLOCK_DATASET_FILE]
        pairs = zip(blocks, golden["blank"]["blocks"], strict=True)
        assert all(b["type"] == g["type"] and b["block_id"] == g.get("block_id", b["block_id"]) for b, g in pairs)
    finally:
        h.close()


def test_a_user_picks_toy_and_its_job_is_stored_tracked_and_told_in_toys_words(
    two: tuple[Harness, ToyBackend],
) -> None:
    h, toy = two
    view = h.open_modal()
    assert _block_ids(view)[0] == ids.BLOCK_BACKEND
    assert view["blocks"][0]["element"]["initial_option"]["value"] == "openpipe"  # no job yet: the default
    view = _pick_backend(h, view, "toy", "Toy")
    assert json.loads(view["private_metadata"])["backend"] == "toy"
    assert "rounds" in _block_ids(view) and ids.BLOCK_PROVIDER not in _block_ids(view)
    dataset = next(o for o in h.dataset_option(view) if o["text"]["text"].startswith("Toy bricks"))
    answer = h.driver.view_submission(
        view["id"],
        {
            ids.BLOCK_DATASET: dataset,
            ids.block_base_model("toy"): "toy-base-2",
            ids.BLOCK_SLUG: "toy-one",
            "rounds": "3",
        },
    )
    assert answer.status_code == 200 and not answer.content, answer.text
    h.wait(lambda: "create:toy-one" in toy.calls)
    job = h.runtime.store.by_slug(h.slack.team_id, "toy-one")
    assert job is not None and job.backend == "toy" and job.project == "toy:local"
    assert job.spec.value("rounds") == 3.0 and job.spec.base_model == "toy-base-2"
    assert not [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"]
    card = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
    assert "Waiting in the toy box" in json.dumps(card["blocks"])

    # Followed by toy's list, not OpenPipe's: OpenPipe's models are never read for it.
    openpipe_reads = len([r for r in h.openpipe.requests if r.path.startswith("/models")])
    toy.set_status("toy-one", "baking")
    h.run_for(10, step=5)
    toy.set_status("toy-one", "baked")
    h.run_for(10, step=5)
    assert "list" in toy.calls
    assert len([r for r in h.openpipe.requests if r.path.startswith("/models")]) == openpipe_reads
    job = h.runtime.store.by_slug(h.slack.team_id, "toy-one")
    assert job is not None and job.status == "baked" and not job.tracking
    thread = [m["text"] for m in h.slack.thread("C0GENERAL", card["ts"])]
    assert any("Baking started" in t for t in thread) and any("Baked — the toy model is ready" in t for t in thread)
    card_now = next(m for m in h.bot_messages("C0GENERAL") if m["ts"] == card["ts"])
    assert "Baked" in json.dumps(card_now["blocks"])

    # The capabilities helper the coming buttons use: toy cannot delete, OpenPipe can.
    assert not h.runtime.capabilities(job).delete and h.runtime.capabilities(job).cancel
    assert h.runtime.capabilities("openpipe").delete and not h.runtime.capabilities("openpipe").cancel
    help_blocks = json.dumps(h.driver.slash_command("/finetune", "help").json())
    assert "Toy: cancel a running fine-tune" in help_blocks and "Toy: delete" not in help_blocks

    # The next modal defaults to the user's last backend (their latest job's).
    again = h.open_modal()
    assert again["blocks"][0]["element"]["initial_option"]["value"] == "toy"
    assert json.loads(again["private_metadata"])["backend"] == "toy"


def test_openpipe_still_works_beside_toy_and_typed_values_survive_the_switch(
    two: tuple[Harness, ToyBackend],
) -> None:
    h, toy = two
    h.openpipe.add_dataset("Beside toy", entries=12)
    view = h.open_modal()
    view = _pick_backend(h, view, "toy", "Toy")
    h.slack.type_into(view["id"], {ids.BLOCK_SLUG: {ids.ACTION_SLUG: {"type": "plain_text_input", "value": "beside"}}})
    view = _pick_backend(h, view, "openpipe", "OpenPipe")
    assert ids.BLOCK_PROVIDER in _block_ids(view) and "rounds" not in _block_ids(view)
    slug_block = next(b for b in view["blocks"] if b.get("block_id") == ids.BLOCK_SLUG)
    assert slug_block["element"].get("initial_value") == "beside"  # a field both forms have keeps its value
    dataset = next(o for o in h.dataset_option(view) if o["text"]["text"].startswith("Beside toy"))
    base = OPENPIPE_BASE_MODELS[0]
    answer = h.driver.view_submission(
        view["id"],
        {ids.BLOCK_DATASET: dataset, ids.block_base_model(Provider.OPENPIPE): base, ids.BLOCK_SLUG: "beside"},
    )
    assert answer.status_code == 200 and not answer.content, answer.text
    posts = h.wait(lambda: [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"])
    assert posts[0].json["slug"] == "beside" and not [c for c in toy.calls if c.startswith("create")]
    job = h.runtime.store.by_slug(h.slack.team_id, "beside")
    assert job is not None and job.backend == "openpipe"
    h.run_for(600, step=5)
    job = h.runtime.store.by_slug(h.slack.team_id, "beside")
    assert job is not None and job.status == "DEPLOYED"
    assert "list" not in toy.calls  # toy has no job: its list is never read


def test_the_dataset_picker_speaks_of_the_chosen_backend(two: tuple[Harness, ToyBackend]) -> None:
    h, toy = two
    toy.datasets = []
    view = _pick_backend(h, h.open_modal(), "toy", "Toy")
    [option] = h.dataset_option(view)
    assert option["text"]["text"] == "⚠ This Toy project has no datasets yet."
    view = _pick_backend(h, view, "openpipe", "OpenPipe")
    assert all("Toy" not in o["text"]["text"] for o in h.dataset_option(view))

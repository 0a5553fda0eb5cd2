"""Property-based fuzzing of what Slack (or someone pretending to be Slack, with a valid signature) may send:
never a 5xx, never a model created from invalid input, always a clear answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slackbot import ids
from tests.e2e.harness import Harness

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300) | st.just("x" * 5000)
json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
json_value = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)
# State values shaped roughly like Slack's, but with wrong types, missing keys and hostile strings.
element = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["plain_text_input", "static_select", "external_select", "checkboxes", "number_input"])
        | text,
        "value": json_value,
        "selected_option": json_value,
        "selected_options": json_value,
    },
)
block_ids = (
    st.sampled_from(
        [
            ids.BLOCK_DATASET,
            ids.BLOCK_PROVIDER,
            ids.BLOCK_SLUG,
            ids.BLOCK_SFT_EPOCHS,
            ids.BLOCK_TEMPERATURE,
            "base_model__openpipe",
        ]
    )
    | text
)
state_values = (
    st.dictionaries(block_ids, st.dictionaries(text, element | json_value, max_size=3), max_size=8) | json_value
)


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(Path(tmp_path_factory.mktemp("fuzz")))
    h.openpipe.add_dataset("Fuzz dataset", entries=5)
    try:
        yield h
    finally:
        h.close()


def _no_model_created(h: Harness) -> None:
    assert [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"] == []


@FUZZ
@given(command_text=text)
def test_slash_command_text(bot: Harness, command_text: str) -> None:
    if command_text.strip():
        # In the ack, or (list, status) through the response_url right after it.
        assert bot.command(command_text).strip(), "a sub-command always gets an answer"
    else:
        assert bot.driver.slash_command("/finetune", command_text).status_code == 200
    _no_model_created(bot)


@FUZZ
@given(query=text)
def test_options_query(bot: Harness, query: str) -> None:
    view = _view(bot)
    response = bot.driver.block_suggestion(view["id"], ids.ACTION_DATASET, ids.BLOCK_DATASET, query)
    assert response.status_code == 200
    options = response.json()["options"]
    assert 1 <= len(options) <= 100
    assert all(len(o["text"]["text"]) <= 75 for o in options)


@FUZZ
@given(raw_state=state_values, metadata=st.none() | text)
def test_view_submission_garbage(bot: Harness, raw_state: Any, metadata: str | None) -> None:
    view = _view(bot)
    if metadata is None:
        response = bot.driver.view_submission(view["id"], raw_state=raw_state)
    else:  # a tampered private_metadata (the signature is valid: a bug or an attacker with the secret)
        payload = bot.driver._envelope("view_submission", "U0ALICE")
        payload.update(
            trigger_id=bot.slack.issue_trigger_id(user_id="U0ALICE"),
            view={**view, "private_metadata": metadata, "state": {"values": raw_state}},
        )
        response = bot.driver.post_payload(payload)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert answer["errors"] and all(isinstance(m, str) and m for m in answer["errors"].values())
    _no_model_created(bot)


@FUZZ
@given(raw_state=state_values, action=st.sampled_from(list(ids.DISPATCH_ACTIONS)))
def test_block_actions_garbage(bot: Harness, raw_state: Any, action: str) -> None:
    view = _view(bot)
    payload = bot.driver._envelope("block_actions", "U0ALICE")
    payload.update(
        container={"type": "view", "view_id": view["id"]},
        trigger_id=bot.slack.issue_trigger_id(user_id="U0ALICE"),
        view={**view, "state": {"values": raw_state}},
        actions=[{"action_id": action, "block_id": "x", "type": "static_select", "action_ts": "1.2"}],
    )
    assert bot.driver.post_payload(payload).status_code == 200
    _no_model_created(bot)


_views: dict[int, dict[str, Any]] = {}


def _view(h: Harness) -> dict[str, Any]:
    """One open modal per module (opening one per example would only test views.open)."""
    key = id(h)
    if key not in _views:
        _views[key] = h.open_modal()
    return h.driver.view(_views[key]["id"])

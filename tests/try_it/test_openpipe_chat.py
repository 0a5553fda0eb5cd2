"""OpenPipe's side of Try it: `ServesChat` on the backend, against the local OpenPipe, with every request and
answer checked against the OpenAPI document and the `openpipe==5.0.0` SDK's types."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from slackbot.backends.base import ChatMessage, NotFoundError, ServesChat, TransportError
from slackbot.backends.openpipe import OPENPIPE, OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from tests.openpipe import sdk
from tests.openpipe.conftest import HTTP, KEY, Contract, spec_path

STEP = 60.0


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(json.loads(spec_path().read_text("utf-8")))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_764_000_000.0)


@pytest.fixture
def api(clock: ManualClock) -> Iterator[LocalOpenPipe]:
    with LocalOpenPipe(KEY, clock=clock, step_seconds=STEP) as server:
        yield server


@pytest.fixture
def backend(api: LocalOpenPipe) -> Iterator[OpenPipeBackend]:
    b = OpenPipeBackend(SecretStr(KEY), api.url, timeout=5.0, max_attempts=1)
    yield b
    b.close()


def _train(api: LocalOpenPipe, backend: OpenPipeBackend, slug: str) -> None:
    dataset = backend.list_datasets()[0].id
    backend.create(openpipe_spec(dataset_id=dataset, slug=slug, provider=Provider.OPENPIPE, base_model="Qwen/Qwen3-8B"))


def test_the_backend_serves_what_it_declares(backend: OpenPipeBackend) -> None:
    assert isinstance(backend, ServesChat)
    assert "chat_completions" not in OPENPIPE.unimplemented(backend)


def test_a_deployed_model_answers_and_every_byte_conforms(
    api: LocalOpenPipe, backend: OpenPipeBackend, clock: ManualClock, contract: Contract
) -> None:
    _train(api, backend, "support-bot")
    state = backend.get("support-bot")
    assert backend.chat_model(state) is None, "a model still training cannot be called"
    clock.advance(STEP * 5)
    state = backend.get("support-bot")
    model = backend.chat_model(state)
    assert model == "openpipe:support-bot"

    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Where is <my> order?"),
    ]
    reply = backend.chat(model, messages, timeout_seconds=5.0)
    assert reply.text == "[support-bot] You said: Where is <my> order?"
    assert reply.model == model and reply.finish_reason == "stop"

    (sent,) = [r for r in api.requests if r.path == "/chat/completions"]
    contract.validate_request("POST", "/chat/completions", sent.json)
    sdk.check_chat_request(sent.json)
    assert sent.json["messages"] == [m.model_dump() for m in messages]
    assert 0 < sent.json["max_tokens"] <= 4096
    # The stand-in's answer, read raw: valid under the document and the SDK.
    raw = HTTP.post(f"{api.url}/chat/completions", json=sent.json, headers={"Authorization": f"Bearer {KEY}"}).json()
    contract.validate_response("POST", "/chat/completions", 200, raw)
    sdk.check_response("POST", "/chat/completions", raw)


def test_a_model_not_deployed_is_not_servable(api: LocalOpenPipe, backend: OpenPipeBackend, contract: Contract) -> None:
    _train(api, backend, "half-baked")
    with pytest.raises(NotFoundError, match="not deployed"):
        backend.chat("openpipe:half-baked", [ChatMessage(role="user", content="hi")], timeout_seconds=5.0)
    with pytest.raises(NotFoundError):
        backend.chat("openpipe:no-such-model", [ChatMessage(role="user", content="hi")], timeout_seconds=5.0)
    raw = HTTP.post(
        f"{api.url}/chat/completions",
        json={"model": "openpipe:half-baked", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert raw.status_code == 404
    contract.validate_response("POST", "/chat/completions", 404, raw.json())


def test_a_slow_model_is_given_up_on_at_the_deadline_and_not_asked_twice(
    api: LocalOpenPipe, backend: OpenPipeBackend, clock: ManualClock
) -> None:
    _train(api, backend, "slow-model")
    clock.advance(STEP * 5)
    api.chat_delay_seconds = 3.0
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"did not answer within 0\.3 s"):
        backend.chat("openpipe:slow-model", [ChatMessage(role="user", content="hi")], timeout_seconds=0.3)
    assert time.monotonic() - started < 2.0
    assert len([r for r in api.requests if r.path == "/chat/completions"]) == 1


def test_the_key_never_shows_in_a_chat_error(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    api.inject("POST /chat/completions", "status", status=500, message=f"upstream said {KEY}")
    with pytest.raises(Exception) as err:
        backend.chat("openpipe:x", [ChatMessage(role="user", content="hi")], timeout_seconds=5.0)
    assert KEY not in str(err.value) and "***" in str(err.value)

"""The real `together==3.1.1` SDK pointed at the local Together through TOGETHER_BASE_URL, doing the calls the
bot makes: the stand-in must serve the SDK as the service does, and what the SDK sends must fit the spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import together
from together import Together

from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.together_api import SUPPORTED_MODELS, LocalTogether
from tests.together.conftest import KEY, Contract

MODEL = SUPPORTED_MODELS[0]


@pytest.fixture
def sdk(api: LocalTogether, monkeypatch: pytest.MonkeyPatch) -> Iterator[Together]:
    monkeypatch.setenv("TOGETHER_BASE_URL", api.url)  # the SDK reads it itself, with the bot's meaning
    monkeypatch.setenv("TOGETHER_API_KEY", KEY)
    client = Together(max_retries=2)
    yield client
    client.close()


def test_the_sdk_runs_a_whole_job_against_the_stand_in(
    api: LocalTogether, sdk: Together, clock: ManualClock, contract: Contract, tmp_path: Path
) -> None:
    dataset = tmp_path / "tickets.jsonl"
    dataset.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n' * 5
    )
    uploaded = sdk.files.upload(dataset, purpose="fine-tune", check=False)
    assert uploaded.filename == "tickets.jsonl" and api.file_data(uploaded.id) == dataset.read_bytes()
    assert sdk.files.upload(dataset, purpose="fine-tune", check=False).id == uploaded.id  # the 409 path
    assert uploaded.id in {f.id for f in sdk.files.list().data}
    assert sdk.fine_tuning.model_limits(model_name=MODEL).lora_training.max_rank == 64
    estimate = sdk.fine_tuning.estimate_price(training_file=uploaded.id, model=MODEL, n_epochs=2)
    assert estimate.estimation_available is True and estimate.allowed_to_proceed is True
    job = sdk.fine_tuning.create(training_file=uploaded.id, model=MODEL, lora=True, n_epochs=2, suffix="sdk")
    assert job.status == "pending"
    dpo = sdk.fine_tuning.create(
        training_file=uploaded.id, model=MODEL, lora=False, training_method="dpo", dpo_beta=0.2
    )
    clock.advance(60 * 8)
    done = sdk.fine_tuning.retrieve(job.id)
    assert done.status == "completed" and done.x_model_output_name and done.x_model_output_name.endswith("-sdk")
    assert {j.id for j in sdk.fine_tuning.list().data} == {job.id, dpo.id}
    events = sdk.fine_tuning.list_events(job.id).data
    assert events[0].type == "job_pending" and events[-1].type == "job_complete"
    metrics = sdk.fine_tuning.list_metrics(job.id, global_step_from=2).metrics or []
    assert metrics and metrics[0]["train/global_step"] == 2
    assert sdk.fine_tuning.delete(dpo.id).message
    # What the SDK sent fits the spec too (its cosine scheduler args excepted: see conftest).
    creates = [r.json for r in api.requests if (r.method, r.path) == ("POST", "/fine-tunes")]
    assert len(creates) == 2
    for body in creates:
        contract.validate_request("POST", "/fine-tunes", body)
    assert creates[0]["training_type"]["type"] == "Lora" and creates[1]["training_type"]["type"] == "Full"
    for r in api.requests:
        if r.path == "/fine-tunes/estimate-price":
            contract.validate_request("POST", "/fine-tunes/estimate-price", r.json)


def test_the_sdk_cancels(sdk: Together, clock: ManualClock, api: LocalTogether) -> None:
    training_file = next(f.id for f in sdk.files.list().data if f.purpose == "fine-tune")
    job = sdk.fine_tuning.create(training_file=training_file, model=MODEL, lora=True)
    clock.advance(150)
    assert sdk.fine_tuning.cancel(job.id).status == "cancel_requested"
    clock.advance(60)
    assert sdk.fine_tuning.retrieve(job.id).status == "cancelled"


def test_the_sdk_sees_the_stand_ins_errors_as_the_services(api: LocalTogether, sdk: Together) -> None:
    with pytest.raises(together.NotFoundError):
        sdk.fine_tuning.retrieve("ft-missing")
    with pytest.raises(together.AuthenticationError):
        Together(api_key="tgp_wrong", base_url=api.url, max_retries=0).fine_tuning.list()
    with pytest.raises(together.BadRequestError) as refused:
        sdk.fine_tuning.estimate_price(training_file="file-missing", model=MODEL)
    assert refused.value.body == {
        "error": {
            "message": "training_file file-missing is not an uploaded fine-tune file",
            "type": "invalid_request_error",
            "param": "training_file",
            "code": None,
        }
    }
    # The SDK honours the stand-in's Retry-After and gets through on its second attempt.
    api.inject("GET /fine-tunes", "status", status=429, retry_after=0.1)
    assert sdk.fine_tuning.list().data == []
    assert [r.fault for r in api.requests if r.path == "/fine-tunes"][-2:] == ["status", None]
    api.inject("GET /fine-tunes", "status", status=429, retry_after=0.1, times=None)
    with pytest.raises(together.RateLimitError):
        sdk.with_options(max_retries=0).fine_tuning.list()

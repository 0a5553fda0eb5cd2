"""`TogetherBackend` against the local Together over loopback: the Backend protocol and every capability it
declares, with each request checked against the spec and the SDK's types."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from slackbot.backends.base import (
    Backend,
    ChatMessage,
    EventLevel,
    FineTuneSpec,
    Method,
    NotFoundError,
    ValidationError,
)
from slackbot.backends.declaration import BackendConfig
from slackbot.backends.registry import declaration
from slackbot.backends.together.backend import NANODOLLARS, TogetherBackend, from_config, is_job_id
from slackbot.backends.together.declaration import TOGETHER
from slackbot.domain.lifecycle import Lifecycle
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.together_api import SUPPORTED_MODELS, LocalTogether
from tests.together.conftest import KEY, Contract, check_sent

MODEL = SUPPORTED_MODELS[0]


@pytest.fixture
def backend(api: LocalTogether) -> Iterator[TogetherBackend]:
    made = TogetherBackend(SecretStr(KEY), api.url, timeout=2.0, max_attempts=1)
    yield made
    made.close()


def _spec(dataset: str, slug: str = "support-v1", **kw: object) -> FineTuneSpec:
    values: dict[str, object] = {
        "backend": "together",
        "dataset_id": dataset,
        "slug": slug,
        "base_model": MODEL,
        "option": "lora",
        "methods": (Method.SFT,),
    }
    values.update(kw)
    return FineTuneSpec.model_validate(values)


def _dataset(backend: TogetherBackend) -> str:
    return backend.list_datasets()[0].id


def test_it_is_declared_with_every_capability_implemented(backend: TogetherBackend) -> None:
    assert declaration("together") is TOGETHER and TOGETHER.follows_by_id
    assert TOGETHER.unimplemented(backend) == ()
    assert isinstance(backend, Backend)
    assert TOGETHER.capabilities.names() == (
        "cancel",
        "delete",
        "price_estimate",
        "metrics",
        "eta",
        "events",
        "dataset_upload",
        "chat_completions",
    )
    built = TOGETHER.build(BackendConfig(api_key=SecretStr(KEY), base_url=backend.client._base, timeout_seconds=3))
    assert isinstance(built, TogetherBackend) and built.project == backend.project
    built.close()


def test_the_project_names_the_account_without_its_key(api: LocalTogether) -> None:
    one = from_config(BackendConfig(SecretStr(KEY), api.url, 2.0))
    other = from_config(BackendConfig(SecretStr(KEY + "x"), api.url, 2.0))
    host = api.url.removeprefix("http://")
    assert one.project.startswith(f"together:{host}:") and len(one.project.rsplit(":", 1)[1]) == 8
    assert one.project != other.project and KEY not in one.project and KEY not in repr(one)
    one.close()
    other.close()


def test_datasets_are_the_fine_tune_files_with_their_line_counts(backend: TogetherBackend) -> None:
    found = {d.name: d for d in backend.list_datasets()}
    assert "eval-questions.jsonl" not in found  # purpose eval: not a training set
    assert found["support-tickets-2026-q3.jsonl"].entry_count == 1240
    assert found["sql-generation-v2.jsonl"].entry_count == 530
    assert backend.list_base_models(None) == list(SUPPORTED_MODELS)
    assert backend.known_base_models(None) == () and not backend.offers_own_models(None)


def test_create_sends_an_sft_lora_job_with_the_models_default_rank(
    api: LocalTogether, backend: TogetherBackend, contract: Contract
) -> None:
    state = backend.create(_spec(_dataset(backend), parameters={"n_epochs": 2, "learning_rate": 2e-5}))
    assert is_job_id(state.id) and state.slug == state.id and state.name == "support-v1"
    assert state.status == "pending" and state.lifecycle is Lifecycle.QUEUED
    [create] = [r for r in api.requests if (r.method, r.path) == ("POST", "/fine-tunes")]
    assert create.json["training_type"] == {"type": "Lora", "lora_r": 16, "lora_alpha": 32}  # limits' default
    assert create.json["training_method"] == {"method": "sft", "train_on_inputs": "auto"}
    assert create.json["suffix"] == "support-v1" and create.json["n_epochs"] == 2
    # An estimate comes first: a job over the account's limit is never created.
    assert [r.path for r in api.requests if r.method == "POST"] == ["/fine-tunes/estimate-price", "/fine-tunes"]
    assert check_sent(api, contract) >= 4


def test_full_and_dpo_jobs_and_every_field_reach_the_wire(
    api: LocalTogether, backend: TogetherBackend, contract: Contract
) -> None:
    dataset = _dataset(backend)
    backend.create(_spec(dataset, "full-one", option="full", parameters={"train_on_inputs": "false"}))
    everything = {
        "dpo_beta": 0.2,
        "rpo_alpha": 0.5,
        "simpo_gamma": 0.1,
        "dpo_normalize": "true",
        "dpo_reference_free": "false",
        "lora_r": 32,
        "lora_alpha": 64,
        "lora_dropout": 0.05,
        "lora_modules": "q_proj,v_proj",
        "n_epochs": 3,
        "learning_rate": 5e-6,
        "batch_size": "max",
        "n_checkpoints": 2,
        "n_evals": 2,
        "warmup_ratio": 0.1,
        "lr_scheduler": "cosine",
        "validation_file": dataset,
        "wandb_project": "support",
    }
    backend.create(_spec(dataset, "dpo-one", methods=(Method.DPO,), parameters=everything))
    full, dpo = [r.json for r in api.requests if (r.method, r.path) == ("POST", "/fine-tunes")]
    assert full["training_type"] == {"type": "Full"}
    assert full["training_method"] == {"method": "sft", "train_on_inputs": False}
    assert dpo["training_method"] == {
        "method": "dpo",
        "dpo_beta": 0.2,
        "rpo_alpha": 0.5,
        "simpo_gamma": 0.1,
        "dpo_normalize_logratios_by_length": True,
        "dpo_reference_free": False,
    }
    assert dpo["training_type"] == {
        "type": "Lora",
        "lora_r": 32,
        "lora_alpha": 64,
        "lora_dropout": 0.05,
        "lora_trainable_modules": "q_proj,v_proj",
    }
    assert dpo["lr_scheduler"]["lr_scheduler_type"] == "cosine" and dpo["validation_file"] == dataset
    assert dpo["wandb_project_name"] == "support" and dpo["batch_size"] == "max" and dpo["n_evals"] == 2
    check_sent(api, contract)


def test_a_refusal_names_its_field_and_a_price_over_the_limit_creates_nothing(
    api: LocalTogether, backend: TogetherBackend
) -> None:
    dataset = _dataset(backend)
    with pytest.raises(ValidationError) as refused:
        backend.create(_spec(dataset, option="full", base_model=SUPPORTED_MODELS[1]))
    assert refused.value.issues == (f"training_type: Full training is not available for {SUPPORTED_MODELS[1]}",)
    api.budget = 0.0
    with pytest.raises(ValidationError, match="over your account's limit"):
        backend.create(_spec(dataset))
    assert not [r for r in api.requests if (r.method, r.path) == ("POST", "/fine-tunes")]
    quote = backend.estimate_price(_spec(dataset))
    assert not quote.allowed and quote.limit_usd == 0.0 and "over your Together account's limit" in (quote.reason or "")
    api.budget = 100.0
    quote = backend.estimate_price(_spec(dataset, parameters={"n_epochs": 2}))
    assert quote.allowed and quote.total_usd and quote.total_usd > 0 and quote.tokens and quote.epochs == 2.0


def test_one_list_read_answers_every_job_and_ids_missing_from_it_are_read_alone(
    api: LocalTogether, backend: TogetherBackend, clock: ManualClock
) -> None:
    dataset = _dataset(backend)
    jobs = [backend.create(_spec(dataset, f"job-{n}")) for n in range(3)]
    clock.advance(150)
    before = len(api.requests)
    missing = "ft-00000000-0000-4000-8000-000000000000"
    states = backend.refresh([j.id for j in jobs] + [missing])
    reads = [(r.method, r.path) for r in api.requests[before:]]
    assert reads == [("GET", "/fine-tunes"), ("GET", f"/fine-tunes/{missing}")]
    assert {j.id for j in jobs} <= states.keys() and missing not in states
    assert all(states[j.id].status == "running" for j in jobs)
    # A key listed as enough is answered by the list alone.
    before = len(api.requests)
    backend.refresh([missing], listed_enough=[missing])
    assert [r.path for r in api.requests[before:]] == ["/fine-tunes"]


def test_a_create_whose_outcome_is_unknown_is_found_by_its_suffix(
    api: LocalTogether, backend: TogetherBackend, clock: ManualClock
) -> None:
    dataset = _dataset(backend)
    first = backend.create(_spec(dataset, "same-name"))
    clock.advance(10)
    second = backend.create(_spec(dataset, "same-name"))
    states = backend.refresh(["same-name", "never-sent"])
    assert states["same-name"].id == second.id != first.id  # the newest with that suffix
    assert states["same-name"].slug == "same-name" and "never-sent" not in states
    assert backend.get("same-name").id == second.id and backend.get(first.id).id == first.id
    with pytest.raises(NotFoundError, match="no fine-tune job with the id or suffix 'nothing-here'"):
        backend.get("nothing-here")


def test_details_price_eta_progress_and_the_model_to_call(
    api: LocalTogether, backend: TogetherBackend, clock: ManualClock
) -> None:
    job = backend.create(_spec(_dataset(backend)))
    raw = api.job(job.id)
    assert job.details.price_usd == pytest.approx(raw["total_price"] / NANODOLLARS)
    assert job.details.tokens == raw["token_count"] and job.details.eta_seconds is None
    clock.advance(200)
    running = backend.get(job.id)
    assert running.lifecycle is Lifecycle.RUNNING
    assert running.details.eta_seconds == api.job(job.id)["progress"]["seconds_remaining"] > 0
    assert running.details.steps_total == 15 and running.details.steps_done == 5
    assert running.details.progress == pytest.approx(5 / 15)
    clock.advance(600)
    done = backend.refresh([job.id])[job.id]
    assert done.lifecycle is Lifecycle.SUCCEEDED and done.details.progress == 1.0 and done.details.eta_seconds is None
    assert done.details.output_model == raw["model_output_name"] == backend.chat_model(done)
    assert backend.chat_model(running) is None


def test_a_failed_job_carries_its_reason(api: LocalTogether, backend: TogetherBackend, clock: ManualClock) -> None:
    job = backend.create(_spec(_dataset(backend)))
    clock.advance(150)
    api.fail_job(job.id, "CUDA out of memory at step 3")
    state = backend.refresh([job.id])[job.id]
    assert state.lifecycle is Lifecycle.FAILED and state.error_message == "CUDA out of memory at step 3"


def test_events_have_stable_keys_and_say_what_is_notable(backend: TogetherBackend, clock: ManualClock) -> None:
    job = backend.create(_spec(_dataset(backend)))
    clock.advance(200)
    first = backend.events(job.id)
    clock.advance(60)
    later = backend.events(job.id)
    assert [e.key for e in later[: len(first)]] == [e.key for e in first] and len(later) > len(first)
    assert len({e.key for e in later}) == len(later)
    kinds = {e.kind: e for e in later}
    assert kinds["checkpoint_save"].notable and not kinds["job_pending"].notable
    assert all(e.level is EventLevel.INFO for e in later)
    assert backend.events("support-v1") == later  # a suffix reaches the same job
    clock.advance(600)  # the job ends: what its status replies tell is not told again as an event
    ended = {e.kind: e for e in backend.events(job.id)}
    assert not ended["training_complete"].notable and not ended["job_complete"].notable
    assert ended["epoch_complete"].notable


def test_metrics_by_step_and_only_the_new_ones(backend: TogetherBackend, clock: ManualClock) -> None:
    job = backend.create(_spec(_dataset(backend)))
    clock.advance(200)
    points = backend.metrics(job.id)
    assert [p.step for p in points] == list(range(1, len(points) + 1)) and points
    assert all(p.train_loss is not None and p.train_loss > 0 for p in points)
    clock.advance(120)
    newer = backend.metrics(job.id, after_step=points[-1].step)
    assert newer and newer[0].step == points[-1].step + 1


def test_cancel_and_delete(api: LocalTogether, backend: TogetherBackend, clock: ManualClock) -> None:
    job = backend.create(_spec(_dataset(backend)))
    clock.advance(150)
    assert backend.cancel(job.id).lifecycle is Lifecycle.CANCELLING
    assert backend.cancel(job.id).lifecycle is Lifecycle.CANCELLING  # twice is harmless
    clock.advance(60)
    assert backend.get(job.id).lifecycle is Lifecycle.CANCELLED
    assert backend.delete(job.id) is True and backend.delete(job.id) is False
    assert [r.path for r in api.requests if r.method == "DELETE"] == [f"/fine-tunes/{job.id}"] * 2


def test_chat_with_a_finished_model(
    api: LocalTogether, backend: TogetherBackend, clock: ManualClock, contract: Contract
) -> None:
    job = backend.create(_spec(_dataset(backend), "chatty"))
    with pytest.raises(NotFoundError, match="Unable to access model"):
        backend.chat(str(job.details.output_model), [ChatMessage(role="user", content="hi")], timeout_seconds=2)
    clock.advance(1000)
    model = backend.chat_model(backend.get(job.id))
    assert model is not None
    reply = backend.chat(
        model,
        [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="hello")],
        timeout_seconds=2,
    )
    assert reply.model == model and reply.text == "[chatty] you said: hello" and reply.finish_reason == "stop"
    assert api.chats[-1]["messages"][-1] == {"role": "user", "content": "hello"}
    check_sent(api, contract)


def test_the_local_chat_answers_in_the_sdks_shape(
    api: LocalTogether, backend: TogetherBackend, clock: ManualClock, contract: Contract
) -> None:
    from tests.together import sdk
    from tests.together.conftest import HTTP

    job = backend.create(_spec(_dataset(backend), "shape"))
    clock.advance(1000)
    body = {"model": api.job(job.id)["model_output_name"], "messages": [{"role": "user", "content": "x"}]}
    auth = {"Authorization": f"Bearer {KEY}"}
    answer = HTTP.post(api.url + "/v1/chat/completions", json=body, headers=auth)
    assert answer.status_code == 200
    sdk.check_response("POST", "/chat/completions", answer.json())
    refused = HTTP.post(api.url + "/v1/chat/completions", json={**body, "model": "nope"}, headers=auth)
    assert refused.status_code == 404
    contract.validate_error(refused.json())

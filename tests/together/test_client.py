"""The Together client against the local Together over real HTTP: reads, creates, the upload flow, the price
refusal, cancel and delete, every error mapped to the backend's typed errors, retries and the size cap."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from slackbot.backends.base import (
    AuthError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ResponseTooLarge,
    ServerError,
    TransportError,
    ValidationError,
)
from slackbot.backends.together.client import PriceRefused, TogetherClient
from slackbot.backends.together.statuses import together_lifecycle
from slackbot.backends.together.wire import CreateFineTuneRequest, LoraTrainingType, MetricsFilter
from slackbot.domain.lifecycle import Lifecycle
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.together_api import SUPPORTED_MODELS, TRAINING_STEPS, LocalTogether
from tests.together.conftest import KEY, Sleeps

MODEL = SUPPORTED_MODELS[0]


def _request(client: TogetherClient, **kw: object) -> CreateFineTuneRequest:
    training_file = client.list_files().fine_tune_files()[0].id
    lora = LoraTrainingType(lora_r=16, lora_alpha=32)
    return CreateFineTuneRequest.model_validate(
        {"training_file": training_file, "model": MODEL, "training_type": lora, **kw}
    )


def test_a_job_moves_through_its_statuses_with_growing_events_and_metrics(
    client: TogetherClient, clock: ManualClock
) -> None:
    estimate, job = client.start_job(_request(client, suffix="support"))
    assert estimate.allowed_to_proceed is True and estimate.estimated_total_price and estimate.estimated_total_price > 0
    assert job.id.startswith("ft-") and job.status == "pending"
    seen, events, metrics = [], [], []
    for _ in range(2 + TRAINING_STEPS + 3):
        current = client.get_job(job.id)
        seen.append(current.status)
        events.append(len(client.list_events(job.id).data))
        metrics.append(len(client.metrics(job.id).metrics))
        clock.advance(60)
    assert seen == ["pending", "queued", "running", "running", "running", "compressing", "uploading", "completed"]
    assert [together_lifecycle(s) for s in dict.fromkeys(seen)] == [
        Lifecycle.QUEUED,
        Lifecycle.QUEUED,
        Lifecycle.RUNNING,
        Lifecycle.RUNNING,
        Lifecycle.RUNNING,
        Lifecycle.SUCCEEDED,
    ]
    assert events == sorted(events) and events[0] >= 1 and events[-1] > events[3]
    assert metrics == sorted(metrics) and metrics[2] == 0 and metrics[-1] > metrics[3] > 0
    done = client.get_job(job.id)
    assert done.model_output_name and done.model_output_name.endswith("-support")
    assert done.total_price and done.total_price > 0
    loss = [row["train/loss"] for row in client.metrics(job.id).metrics]
    assert loss == sorted(loss, reverse=True)  # chronological, and the sandbox's loss falls
    kinds = [e.type for e in client.list_events(job.id).data]
    assert kinds[0] == "job_pending" and kinds[-1] == "job_complete" and "checkpoint_save" in kinds
    later = client.metrics(job.id, MetricsFilter(global_step_from=5, global_step_to=7)).metrics
    assert [row["train/global_step"] for row in later] == [5, 6, 7]
    assert [j.id for j in client.list_jobs().data] == [job.id]


def test_an_estimate_over_the_budget_is_refused_and_nothing_is_created(
    api: LocalTogether, client: TogetherClient
) -> None:
    api.budget = 0.0001
    with pytest.raises(PriceRefused) as refused:
        client.start_job(_request(client, n_epochs=5))
    assert isinstance(refused.value, ValidationError)
    assert "over your account's limit ($0.00)" in refused.value.message
    assert refused.value.estimate.allowed_to_proceed is False
    assert not [r for r in api.requests if (r.method, r.path) == ("POST", "/fine-tunes")]
    assert client.list_jobs().data == []


def test_cancel_then_delete(client: TogetherClient, clock: ManualClock) -> None:
    job = client.create_job(_request(client))
    clock.advance(150)
    cancelled = client.cancel_job(job.id)
    assert cancelled.status == "cancel_requested" and together_lifecycle(cancelled.status) is Lifecycle.CANCELLING
    clock.advance(60)
    assert client.get_job(job.id).status == "cancelled"
    kinds = [e.type for e in client.list_events(job.id).data]
    assert kinds[-3:] == ["cancel_requested", "job_stopped", "refund"]
    steps = len(client.metrics(job.id).metrics)
    clock.advance(600)
    assert len(client.metrics(job.id).metrics) == steps, "a cancelled job trains no further"
    with pytest.raises(ValidationError, match="cannot be cancelled"):
        client.cancel_job(job.id)
    assert client.delete_job(job.id).message
    with pytest.raises(NotFoundError):
        client.get_job(job.id)
    with pytest.raises(NotFoundError):
        client.delete_job(job.id)


def test_a_failed_job_reads_as_error_with_its_message(
    api: LocalTogether, client: TogetherClient, clock: ManualClock
) -> None:
    job = client.create_job(_request(client))
    clock.advance(150)
    api.fail_job(job.id, "CUDA out of memory")
    clock.advance(600)
    assert client.get_job(job.id).status == "error"
    last = client.list_events(job.id).data[-1]
    assert (last.type, last.level, last.message) == ("job_error", "error", "CUDA out of memory")


def test_the_upload_flow_puts_the_bytes_and_a_second_upload_finds_the_same_file(
    api: LocalTogether, client: TogetherClient, caplog: pytest.LogCaptureFixture
) -> None:
    data = b'{"messages": [{"role": "user", "content": "hello"}]}\n' * 3
    with caplog.at_level(logging.INFO, logger="slackbot.together"):
        uploaded = client.upload_file("tickets.jsonl", data)
    assert "PUT /upload/" in caplog.text and "Signature" not in caplog.text  # a presigned URL's query is a secret
    assert uploaded.processed is True and uploaded.purpose == "fine-tune" and uploaded.bytes == len(data)
    assert api.file_data(uploaded.id) == data
    assert api.puts == [(uploaded.id, False)], "the API key never goes to the storage host"
    assert uploaded.id in {f.id for f in client.list_files().fine_tune_files()}
    again = client.upload_file("tickets.jsonl", data)
    assert again.id == uploaded.id  # 409 with file_id: the existing file
    puts = [r for r in api.raw_requests if r[0] == "POST" and r[1] == "/files"]
    assert len(puts) == 2 and all(r[3].startswith("multipart/form-data") for r in puts)
    with pytest.raises(ValidationError, match="not valid JSON"):
        client.upload_file("broken.jsonl", b"{not json\n")
    with pytest.raises(ValidationError, match=r"not a \.jsonl, \.parquet or \.csv file"):
        client.upload_file("notes.txt", b"x")


def test_models_and_limits(client: TogetherClient) -> None:
    assert MODEL in client.supported_models().models
    limits = client.model_limits(MODEL)
    assert limits.model_name == MODEL and limits.lora_training and limits.lora_training.max_rank == 64
    assert limits.full_allowed and not client.model_limits(SUPPORTED_MODELS[1]).full_allowed
    with pytest.raises(NotFoundError, match="not available for fine-tuning"):
        client.model_limits("nope/nope")


def test_a_refusal_says_which_field(client: TogetherClient) -> None:
    with pytest.raises(ValidationError) as refused:
        client.create_job(_request(client, n_epochs=99))
    assert refused.value.status == 400 and refused.value.code == "invalid_request_error"
    assert refused.value.issues == ("n_epochs: n_epochs must be an integer between 1 and 20",)


def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(
    make_client: Callable[..., TogetherClient], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "tgp_wrong_key_SHOULD_NOT_LEAK"
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as refused:
        make_client(key=wrong).list_jobs()
    assert refused.value.status == 401 and wrong not in str(refused.value)
    assert wrong not in caplog.text and KEY not in caplog.text


def test_a_key_echoed_by_the_service_is_redacted(api: LocalTogether, client: TogetherClient) -> None:
    api.inject("GET /fine-tunes", "status", status=400, message=f"bad key {KEY} in request")
    with pytest.raises(ValidationError) as refused:
        client.list_jobs()
    assert KEY not in refused.value.message and "***" in refused.value.message


def test_429_waits_as_long_as_retry_after_asks(api: LocalTogether, client: TogetherClient, sleeps: Sleeps) -> None:
    api.inject("GET /fine-tunes", "status", status=429, retry_after=7, times=2)
    assert client.list_jobs().data == []
    assert len(sleeps) == 2 and all(s >= 7 for s in sleeps)


def test_a_create_is_resent_after_a_429_only(api: LocalTogether, client: TogetherClient, sleeps: Sleeps) -> None:
    api.inject("POST /fine-tunes", "status", status=429, retry_after=3)
    job = client.create_job(_request(client))
    assert len(client.list_jobs().data) == 1 and client.get_job(job.id).status == "pending"
    assert len(sleeps) == 1 and sleeps[0] >= 3
    api.inject("POST /fine-tunes", "status", status=503)
    with pytest.raises(ServerError):
        client.create_job(_request(client))
    api.inject("POST /fine-tunes", "timeout_after_commit", delay=3)
    with pytest.raises(TransportError):
        client.create_job(_request(client))
    creates = [r for r in api.requests if (r.method, r.path) == ("POST", "/fine-tunes")]
    assert len(creates) == 4, "an ambiguous failure is never re-sent blindly"


def test_429_gives_up_after_max_attempts(api: LocalTogether, make_client: Callable[..., TogetherClient]) -> None:
    api.inject("GET /fine-tunes/{id}", "status", status=429, retry_after=1, times=None)
    with pytest.raises(RateLimitedError) as limited:
        make_client(max_attempts=3).get_job("ft-x")
    assert limited.value.retry_after == 1
    assert len([r for r in api.requests if r.path == "/fine-tunes/ft-x"]) == 3


def test_5xx_then_success_is_retried_for_reads(api: LocalTogether, client: TogetherClient) -> None:
    api.inject("GET /files", "status", status=502, times=2)
    assert client.list_files().fine_tune_files()


@pytest.mark.parametrize("kind", ["malformed", "html", "missing_fields"])
def test_broken_answers_are_protocol_errors(
    api: LocalTogether, make_client: Callable[..., TogetherClient], kind: str
) -> None:
    api.inject("GET /fine-tunes", kind, status=502, times=None)
    with pytest.raises((ProtocolError, ServerError)) as broken:
        make_client(max_attempts=1).list_jobs()
    expected = ServerError if kind == "html" else ProtocolError
    assert type(broken.value) is expected


def test_a_silent_or_dripping_service_times_out(api: LocalTogether, make_client: Callable[..., TogetherClient]) -> None:
    client = make_client(timeout=0.5, max_attempts=1)
    api.inject("GET /fine-tunes", "timeout", delay=2)
    with pytest.raises(TransportError, match=r"did not answer within 0\.5 s"):
        client.list_jobs()
    api.inject("GET /files", "drip", delay=0.2)  # the seeded files: many 64-byte pieces
    with pytest.raises(TransportError, match=r"took longer than 0\.5 s"):
        client.list_files()


def test_latency_below_the_timeout_is_fine(api: LocalTogether, client: TogetherClient) -> None:
    api.inject("GET /fine-tunes", "latency", delay=0.2)
    assert client.list_jobs().data == []


def test_an_answer_over_the_size_cap_is_refused(make_client: Callable[..., TogetherClient]) -> None:
    with pytest.raises(ResponseTooLarge):
        make_client(max_body_bytes=200).list_files()


def test_unreachable(make_client: Callable[..., TogetherClient]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError, match=r"Could not reach Together \(ConnectError\)"):
        make_client(base_url=f"http://127.0.0.1:{port}", max_attempts=1).list_jobs()


def test_unusable_keys_are_refused_without_echo() -> None:
    for bad in ("", " tgp_x", "tgp\nx"):
        with pytest.raises(ValueError) as refused:
            TogetherClient(SecretStr(bad))
        assert "tgp" not in str(refused.value)


def test_a_client_passed_in_belongs_to_the_caller(api: LocalTogether) -> None:
    http = httpx.Client()
    client = TogetherClient(SecretStr(KEY), api.url, client=http)
    assert client.list_jobs().data == []
    client.close()
    assert not http.is_closed
    http.close()
    assert "tgp" not in repr(client)

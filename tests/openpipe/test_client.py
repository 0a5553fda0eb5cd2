"""The httpx client against a real local OpenPipe over loopback: error types, retries, safe creates."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from slackbot.backends.base import (
    AuthError,
    BackendError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
)
from slackbot.backends.openpipe.client import OpenPipeClient
from slackbot.backends.openpipe.wire import CreateModelRequest, OpenPipeTrainingConfig
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from tests.openpipe.conftest import KEY, Sleeps

MakeClient = Callable[..., OpenPipeClient]


def create_request(api: LocalOpenPipe, slug: str = "support-bot", dataset_id: str | None = None) -> CreateModelRequest:
    ds = dataset_id or api.add_dataset("tickets", 500)
    config = OpenPipeTrainingConfig(base_model="meta-llama/Meta-Llama-3.1-8B-Instruct")
    return CreateModelRequest(dataset_id=ds, slug=slug, training_config=config)


def count(api: LocalOpenPipe, method: str, path: str) -> int:
    return sum(1 for r in api.requests if r.method == method and r.path == path)


# --- error types -----------------------------------------------------------------------------------------


def test_wrong_key_is_auth_error(make_client: MakeClient) -> None:
    with pytest.raises(AuthError) as err:
        make_client(key="opk_wrong_key_42").list_models()
    assert err.value.status == 401 and err.value.code == "UNAUTHORIZED"
    assert not err.value.retryable


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ValidationError),
        (403, AuthError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_codes_map_to_error_types(
    api: LocalOpenPipe, make_client: MakeClient, status: int, error: type[BackendError]
) -> None:
    api.inject("GET /datasets", "status", status=status)
    with pytest.raises(error) as err:
        make_client(max_attempts=1).list_datasets()
    assert type(err.value) is error
    assert err.value.status == status and err.value.code and err.value.message == f"Injected {status}"


def test_unknown_slug_is_not_found(client: OpenPipeClient) -> None:
    with pytest.raises(NotFoundError) as err:
        client.get_model("no-such-model")
    assert err.value.status == 404 and err.value.code == "NOT_FOUND"


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_invalid_body_is_validation_error_with_issues(api: LocalOpenPipe, client: OpenPipeClient) -> None:
    good = create_request(api)
    # Bypass our own validation to see how the server's refusal comes back.
    bad = CreateModelRequest.model_construct(
        dataset_id=good.dataset_id,
        slug="x",
        training_config=good.training_config,
        default_temperature="hot",  # type: ignore[arg-type]  # deliberately invalid
    )
    with pytest.raises(ValidationError) as err:
        client.create_model(bad)
    assert err.value.status == 400 and err.value.message == "Input validation failed"
    assert any("defaultTemperature" in issue for issue in err.value.issues)
    assert "defaultTemperature" in str(err.value)


def test_taken_slug_500_is_conflict_and_not_retried(api: LocalOpenPipe, client: OpenPipeClient) -> None:
    request = create_request(api)
    client.create_model(request)
    api.requests.clear()
    with pytest.raises(ConflictError) as err:
        client.create_model(request)
    assert err.value.status == 500 and "globally unique" in err.value.message
    assert [(r.method, r.path) for r in api.requests] == [("POST", "/models")]


def test_slug_equal_to_base_model_and_unknown_dataset_are_refusals(api: LocalOpenPipe, client: OpenPipeClient) -> None:
    with pytest.raises(ValidationError, match="base model"):
        client.create_model(create_request(api, slug="Qwen/Qwen3-8B"))
    with pytest.raises(NotFoundError, match="Dataset not found"):
        client.create_model(create_request(api, dataset_id="ds-missing"))
    assert count(api, "POST", "/models") == 2


def test_rate_limit_carries_retry_after(api: LocalOpenPipe, make_client: MakeClient) -> None:
    api.inject("GET /models", "status", status=429, retry_after=7)
    with pytest.raises(RateLimitedError) as err:
        make_client(max_attempts=1).list_models()
    assert err.value.retry_after == 7 and err.value.retryable


def test_timeout_is_transport_error(api: LocalOpenPipe, make_client: MakeClient) -> None:
    api.inject("GET /models", "timeout", delay=5.0)
    with pytest.raises(TransportError):
        make_client(timeout=0.3, max_attempts=1).list_models()


def test_refused_connection_is_transport_error(make_client: MakeClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError) as err:
        make_client(base_url=f"http://127.0.0.1:{port}/api/v1", max_attempts=1).list_models()
    assert "127.0.0.1" not in str(err.value)


def test_slow_drip_is_cut_off_by_the_total_deadline(api: LocalOpenPipe, make_client: MakeClient) -> None:
    for i in range(5):
        api.add_dataset(f"padding-{i}")
    api.inject("GET /datasets", "drip", delay=0.05)
    with pytest.raises(TransportError, match="longer than"):
        make_client(timeout=0.4, max_attempts=1).list_datasets()


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("malformed", 200, ProtocolError),
        ("html", 200, ProtocolError),
        ("missing_fields", 200, ProtocolError),
        ("html", 502, ServerError),
    ],
)
def test_broken_answers(
    api: LocalOpenPipe, make_client: MakeClient, kind: str, status: int, error: type[BackendError]
) -> None:
    api.inject("GET /models", kind, status=status)
    with pytest.raises(error) as err:
        make_client(max_attempts=1).list_models()
    assert type(err.value) is error and err.value.retryable


# --- retries of reads ------------------------------------------------------------------------------------


def test_429_is_retried_after_retry_after(api: LocalOpenPipe, client: OpenPipeClient, sleeps: Sleeps) -> None:
    api.inject("GET /models", "status", status=429, retry_after=3)
    assert client.list_models().data == []
    assert count(api, "GET", "/models") == 2
    assert len(sleeps) == 1 and sleeps[0] >= 3.0


def test_retry_after_is_capped(api: LocalOpenPipe, make_client: MakeClient, sleeps: Sleeps) -> None:
    api.inject("GET /models", "status", status=429, retry_after=3600)
    make_client(max_retry_after=5.0).list_models()
    assert sleeps == [5.0]


@pytest.mark.parametrize("status", [503, 500, 502, 504])
def test_5xx_is_retried_after_retry_after(
    api: LocalOpenPipe, client: OpenPipeClient, sleeps: Sleeps, status: int
) -> None:
    api.inject("GET /models", "status", status=status, retry_after=1)
    assert client.list_models().data == []
    assert count(api, "GET", "/models") == 2
    # Default backoff jitter is at most 0.5 s, so the wait is exactly the Retry-After.
    assert sleeps == [1.0]


def test_5xx_retry_after_is_carried_and_still_a_server_error(api: LocalOpenPipe, make_client: MakeClient) -> None:
    api.inject("GET /datasets", "status", status=503, retry_after=7)
    with pytest.raises(ServerError) as err:
        make_client(max_attempts=1).list_datasets()
    assert err.value.status == 503 and err.value.retryable
    assert getattr(err.value, "retry_after", None) == 7


def test_5xx_retry_after_is_capped(api: LocalOpenPipe, make_client: MakeClient, sleeps: Sleeps) -> None:
    api.inject("GET /models/{slug}", "status", status=503, retry_after=86_400)
    with pytest.raises(NotFoundError):
        make_client(max_retry_after=5.0).get_model("anything")
    assert count(api, "GET", "/models/anything") == 2
    assert sleeps == [5.0]


def test_5xx_refusal_with_retry_after_is_not_retried(sleeps: Sleeps) -> None:
    # The sandbox's refusals carry no Retry-After; a header on one must not turn it into a retried outage.
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        body = {"message": "Model not found", "code": "INTERNAL_SERVER_ERROR"}
        return httpx.Response(503, json=body, headers={"Retry-After": "1"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = OpenPipeClient(SecretStr(KEY), "https://example.test/api/v1", client=http, sleep=sleeps)
    with pytest.raises(NotFoundError):
        client.get_model("gone")
    assert seen == ["/api/v1/models/gone"] and sleeps == []
    http.close()


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("status", {"status": 500}),
        ("status", {"status": 503}),
        ("timeout", {"delay": 5.0}),
        ("malformed", {}),
    ],
)
def test_transient_read_failures_are_retried(
    api: LocalOpenPipe, make_client: MakeClient, sleeps: Sleeps, kind: str, extra: dict[str, Any]
) -> None:
    api.inject("GET /datasets", kind, times=2, **extra)
    datasets = make_client(timeout=1.0, base_delay=0.1).list_datasets().data
    assert len(datasets) == 3
    assert count(api, "GET", "/datasets") == 3
    assert len(sleeps) == 2
    # Full jitter: each wait is somewhere in [0, base * 2**(n-1)].
    assert 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.2


def test_reads_give_up_after_max_attempts(api: LocalOpenPipe, make_client: MakeClient, sleeps: Sleeps) -> None:
    api.inject("GET /models/{slug}", "status", status=500, times=None)
    with pytest.raises(ServerError):
        make_client(max_attempts=3).get_model("anything")
    assert count(api, "GET", "/models/anything") == 3 and len(sleeps) == 2


def test_client_errors_are_not_retried(api: LocalOpenPipe, client: OpenPipeClient, sleeps: Sleeps) -> None:
    api.inject("GET /models", "status", status=400)
    with pytest.raises(ValidationError):
        client.list_models()
    assert count(api, "GET", "/models") == 1 and sleeps == []


# --- POST /models never creates two models ---------------------------------------------------------------


def test_create_timeout_after_the_server_created_it_returns_that_model(
    api: LocalOpenPipe, make_client: MakeClient
) -> None:
    request = create_request(api)
    api.inject("POST /models", "timeout_after_commit", delay=5.0)
    model = make_client(timeout=1.0).create_model(request)
    assert model.name == "support-bot" and model.openpipe.status == "PENDING"
    assert count(api, "POST", "/models") == 1
    assert count(api, "GET", "/models/support-bot") == 1
    assert [m["name"] for m in api.models()] == ["support-bot"]


@pytest.mark.parametrize(("kind", "extra"), [("timeout", {"delay": 5.0}), ("status", {"status": 502})])
def test_create_that_never_reached_the_server_is_sent_again_once(
    api: LocalOpenPipe, make_client: MakeClient, kind: str, extra: dict[str, Any]
) -> None:
    request = create_request(api)
    api.inject("POST /models", kind, **extra)
    model = make_client(timeout=1.0).create_model(request)
    assert model.name == "support-bot"
    assert count(api, "POST", "/models") == 2
    assert len(api.models()) == 1


def test_create_is_not_resent_when_the_lookup_fails(api: LocalOpenPipe, make_client: MakeClient) -> None:
    request = create_request(api)
    api.inject("POST /models", "timeout", delay=5.0)
    api.inject("GET /models/{slug}", "status", status=503, times=None)
    with pytest.raises(TransportError):
        make_client(timeout=0.3, max_attempts=3).create_model(request)
    assert count(api, "POST", "/models") == 1
    assert api.models() == []


def test_create_lookup_finding_another_datasets_model_is_a_conflict(
    api: LocalOpenPipe, make_client: MakeClient
) -> None:
    client = make_client(timeout=1.0)
    client.create_model(create_request(api, dataset_id=api.add_dataset("a")))
    api.inject("POST /models", "timeout", delay=5.0)
    with pytest.raises(ConflictError, match="another dataset"):
        client.create_model(create_request(api, dataset_id=api.add_dataset("b")))
    assert count(api, "POST", "/models") == 2  # the first create, and one attempt of the second


def test_create_conflict_on_resend_resolves_to_our_own_model(api: LocalOpenPipe, make_client: MakeClient) -> None:
    request = create_request(api)
    api.inject("POST /models", "timeout_after_commit", delay=5.0)
    api.inject("GET /models/{slug}", "status", status=404)  # the lookup races the commit and misses it
    model = make_client(timeout=1.0).create_model(request)
    assert model.name == "support-bot" and model.openpipe.dataset_id == request.dataset_id
    assert count(api, "POST", "/models") == 2 and len(api.models()) == 1


def test_create_gives_up_after_max_attempts(api: LocalOpenPipe, make_client: MakeClient, sleeps: Sleeps) -> None:
    api.inject("POST /models", "status", status=500, times=None)
    with pytest.raises(ServerError):
        make_client(max_attempts=3).create_model(create_request(api))
    assert count(api, "POST", "/models") == 3 and len(sleeps) == 2 and api.models() == []


def test_create_rate_limited_waits_and_resends(api: LocalOpenPipe, client: OpenPipeClient, sleeps: Sleeps) -> None:
    # A 429 means "not processed": re-sending after Retry-After cannot create a twin, and needs no look-up.
    api.inject("POST /models", "status", status=429, retry_after=2)
    model = client.create_model(create_request(api))
    assert model.name == "support-bot" and len(api.models()) == 1
    assert count(api, "POST", "/models") == 2 and count(api, "GET", "/models/support-bot") == 0
    assert sleeps == [2]


def test_create_503_with_retry_after_still_looks_the_slug_up_first(
    api: LocalOpenPipe, make_client: MakeClient, sleeps: Sleeps
) -> None:
    # Unlike a 429, a 5xx does not promise "not processed": Retry-After lengthens the wait, never skips the look-up.
    api.inject("POST /models", "status", status=503, retry_after=1)
    model = make_client().create_model(create_request(api))
    assert model.name == "support-bot" and len(api.models()) == 1
    assert [(r.method, r.path) for r in api.requests if r.path != "/datasets"] == [
        ("POST", "/models"),
        ("GET", "/models/support-bot"),
        ("POST", "/models"),
    ]
    assert sleeps == [1.0]


def test_create_503_retry_after_is_capped(api: LocalOpenPipe, make_client: MakeClient, sleeps: Sleeps) -> None:
    api.inject("POST /models", "status", status=503, retry_after=3600, times=None)
    with pytest.raises(ServerError):
        make_client(max_attempts=2, max_retry_after=5.0).create_model(create_request(api))
    assert count(api, "POST", "/models") == 2 and count(api, "GET", "/models/support-bot") == 2
    assert sleeps == [5.0] and api.models() == []


def test_create_rate_limited_for_long_gives_up(api: LocalOpenPipe, make_client: MakeClient, sleeps: Sleeps) -> None:
    api.inject("POST /models", "status", status=429, retry_after=1, times=None)
    with pytest.raises(RateLimitedError):
        make_client(max_attempts=3).create_model(create_request(api))
    assert count(api, "POST", "/models") == 3 and api.models() == []


# --- tolerance ---------------------------------------------------------------------------------------------


def test_unknown_status_is_read_as_is(api: LocalOpenPipe, client: OpenPipeClient) -> None:
    client.create_model(create_request(api))
    api.set_status("support-bot", "WARMING_UP")
    assert client.get_model("support-bot").openpipe.status == "WARMING_UP"
    assert client.list_models().data[0].to_state().status == "WARMING_UP"


def test_chat_completion_with_deployed_model(api: LocalOpenPipe, client: OpenPipeClient) -> None:
    from slackbot.backends.openpipe.wire import ChatCompletionRequest, ChatMessage

    client.create_model(create_request(api))
    api.set_status("support-bot", "DEPLOYED")
    answer = client.chat_completion(
        ChatCompletionRequest(model="openpipe:support-bot", messages=[ChatMessage(role="user", content="hi")])
    )
    assert answer.choices[0].message.content and answer.model == "openpipe:support-bot"


# --- secrets and logging -----------------------------------------------------------------------------------


def test_keys_never_reach_logs_errors_or_reprs(
    api: LocalOpenPipe, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    wrong = "opk_wrong_secret_987"
    errors: list[BackendError] = []
    client = make_client(timeout=1.0, max_attempts=2)
    for fault in ("timeout", "html", "malformed"):
        api.inject("GET /models", fault, delay=1.0)
        try:
            make_client(timeout=0.3, max_attempts=1).list_models()
        except BackendError as exc:
            errors.append(exc)
    for call in (lambda: make_client(key=wrong).list_models(), lambda: client.get_model("missing")):
        try:
            call()
        except BackendError as exc:
            errors.append(exc)
    client.list_models()
    assert len(errors) == 5
    texts = [caplog.text, repr(client)] + [f"{e!s} {e!r} {e.message} {e.issues}" for e in errors]
    for text in texts:
        assert KEY not in text and wrong not in text
    lines = [r.getMessage() for r in caplog.records if r.name == "slackbot.openpipe"]
    assert "openpipe GET /models -> 200" in lines[-1] and "(attempt 1)" in lines[-1]
    assert any("-> 401" in line for line in lines) and any("TransportError" in line for line in lines)


@pytest.mark.parametrize("bad", ["", " opk_padded", "opk_line\nbreak", "opk\x00"])
def test_unusable_keys_are_refused_without_echo(api: LocalOpenPipe, bad: str) -> None:
    with pytest.raises(ValueError, match="API key") as err:
        OpenPipeClient(SecretStr(bad), api.url)
    assert not bad.strip() or bad.strip() not in str(err.value)


def test_undecodable_body_is_protocol_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not gzip at all", headers={"Content-Encoding": "gzip"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = OpenPipeClient(SecretStr(KEY), "https://example.test/api/v1", client=http, max_attempts=1)
    with pytest.raises(ProtocolError, match="could not be read"):
        client.list_models()
    http.close()


def test_server_echoing_the_key_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        body = {"message": f"Key {token} is revoked", "code": "UNAUTHORIZED", "issues": [{"message": token}]}
        return httpx.Response(401, json=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = OpenPipeClient(SecretStr(KEY), "https://example.test/api/v1", client=http)
    with pytest.raises(AuthError) as err:
        client.list_datasets()
    assert err.value.message == "Key *** is revoked" and err.value.issues == ("***",)
    assert KEY not in str(err.value)
    http.close()

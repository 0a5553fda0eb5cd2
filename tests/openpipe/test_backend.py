"""`OpenPipeBackend` against the local API: the Backend protocol, request economy, project identity."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from slackbot.backends.base import Backend, ConflictError, FineTuneSpec, NotFoundError
from slackbot.backends.openpipe import OpenPipeBackend, project_id
from slackbot.backends.openpipe.catalog import BASE_MODELS
from slackbot.backends.openpipe.fields import PreferenceParams, Provider, SftParams
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from tests.openpipe.conftest import KEY


def spec(dataset_id: str, slug: str, **kw: object) -> FineTuneSpec:
    base = {"provider": Provider.OPENPIPE, "base_model": "Qwen/Qwen2.5-7B-Instruct"} | kw
    return FineTuneSpec(dataset_id=dataset_id, slug=slug, **base)


def test_is_a_backend(backend: OpenPipeBackend) -> None:
    assert isinstance(backend, Backend)
    assert backend.name == "openpipe"


def test_project_is_stable_and_reveals_no_secret(api: LocalOpenPipe) -> None:
    one = project_id(SecretStr(KEY), api.url)
    assert one == project_id(SecretStr(KEY), api.url + "/")
    assert one != project_id(SecretStr(KEY + "2"), api.url)
    assert one.startswith("openpipe:127.0.0.1:") and KEY not in one
    assert project_id(SecretStr(KEY), "https://api.openpipe.ai/api/v1").startswith("openpipe:api.openpipe.ai:")
    backend = OpenPipeBackend(SecretStr(KEY), api.url)
    assert backend.project == one and KEY not in repr(backend)
    backend.close()


def test_datasets(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    ds = api.add_dataset("fresh-data", entries=42)
    backend.create(spec(ds, "m1"))
    datasets = {d.name: d for d in backend.list_datasets()}
    assert datasets["fresh-data"].entry_count == 42 and datasets["fresh-data"].fine_tune_count == 1
    assert datasets["support-tickets-2026-q3"].entry_count == 1240


def test_base_models(api: LocalOpenPipe, backend: OpenPipeBackend, clock: ManualClock) -> None:
    assert len(backend.list_base_models(Provider.OPENPIPE)) == 22
    assert len(backend.list_base_models(Provider.OPENPIPE_REWARD)) == 8
    assert backend.list_base_models(Provider.OPENAI)[0] == "gpt-4.1-2025-04-14"
    assert len(backend.list_base_models(Provider.OPENAI)) == 5
    assert len(backend.list_base_models(Provider.GEMINI)) == 2
    ds = api.add_dataset("d")
    backend.create(spec(ds, "done"))
    clock.advance(3600)
    backend.create(spec(ds, "still-training"))
    backend.create(spec(ds, "broken"))
    api.fail_model("broken", "boom")
    names = backend.list_base_models(Provider.OPENPIPE)
    assert names[:22] == list(BASE_MODELS[Provider.OPENPIPE]) and names[22:] == ["done"]
    assert "done" not in backend.list_base_models(Provider.OPENPIPE_REWARD)


def test_create_and_follow(api: LocalOpenPipe, backend: OpenPipeBackend, clock: ManualClock) -> None:
    ds = api.add_dataset("d")
    state = backend.create(
        spec(ds, "m1", enable_preference=True, sft=SftParams(epochs=2), preference=PreferenceParams(variant="DPO"))
    )
    assert (state.slug, state.status, state.dataset_id) == ("m1", "PENDING", ds)
    assert not state.is_terminal
    sent = api.requests[-1].json["trainingConfig"]
    assert sent["preference_hyperparameters"] == {"variant": "DPO"}
    clock.advance(180)
    assert backend.get("m1").status == "TRAINING"
    clock.advance(60)
    deployed = backend.get("m1")
    assert deployed.status == "DEPLOYED" and deployed.is_terminal


def test_create_refuses_before_sending(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    with pytest.raises(ValueError, match="preference"):
        backend.create(
            spec("d", "m1", provider=Provider.GEMINI, base_model="models/gemini-1.0-pro-001", enable_preference=True)
        )
    assert api.requests == []


def test_duplicate_slug_is_a_conflict(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    ds = api.add_dataset("d")
    backend.create(spec(ds, "m1"))
    with pytest.raises(ConflictError, match="globally unique"):
        backend.create(spec(ds, "m1"))


def test_refresh_uses_one_list_call(api: LocalOpenPipe, backend: OpenPipeBackend, clock: ManualClock) -> None:
    ds = api.add_dataset("d")
    for i in range(5):
        backend.create(spec(ds, f"m{i}"))
    api.fail_model("m3", "bad data")
    clock.advance(120)
    api.requests.clear()
    states = backend.refresh([f"m{i}" for i in range(5)])
    assert [(r.method, r.path) for r in api.requests] == [("GET", "/models")]
    assert states["m0"].status == "PROVISIONING"
    assert states["m3"].status == "ERROR" and states["m3"].error_message == "bad data"
    assert backend.refresh([]) == {}


def test_refresh_looks_up_only_missing_slugs(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    ds = api.add_dataset("d")
    backend.create(spec(ds, "kept"))
    backend.create(spec(ds, "deleted"))
    assert backend.delete("deleted") is True
    api.requests.clear()
    states = backend.refresh(["kept", "deleted", "never-existed"])
    assert set(states) == {"kept"}
    assert [(r.method, r.path) for r in api.requests] == [
        ("GET", "/models"),
        ("GET", "/models/deleted"),
        ("GET", "/models/never-existed"),
    ]


def test_get_and_delete_missing(backend: OpenPipeBackend) -> None:
    with pytest.raises(NotFoundError):
        backend.get("nope")
    assert backend.delete("nope") is False


def test_refresh_retries_a_flaky_list(api: LocalOpenPipe, backend: OpenPipeBackend, sleeps: list[float]) -> None:
    ds = api.add_dataset("d")
    backend.create(spec(ds, "m1"))
    api.inject("GET /models", "status", status=502)
    assert set(backend.refresh(["m1"])) == {"m1"}
    assert len(sleeps) == 1

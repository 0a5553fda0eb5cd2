"""OpenPipe upload end to end over loopback against the local OpenPipe: a validated file becomes a dataset in
batches of at most 100 entries, every request and answer checked against the spec; an upload that fails halfway
is resumed when the service's count says a batch landed, and otherwise deleted, never left half."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from slackbot.backends.base import NotFoundError, ServerError, TransportError, ValidationError
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.datasets import OPENPIPE_DATASET_RULES
from slackbot.backends.openpipe.declaration import OPENPIPE
from slackbot.datasets.validate import valid_lines, validate
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from tests.datasets.conftest import chat, jsonl
from tests.openpipe.conftest import HTTP, KEY, Contract

RULES = OPENPIPE_DATASET_RULES


def lines(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [chat(("user", f"question {i}"), ("assistant", f"answer {i}")) for i in range(start, start + n)]


def upload(backend: OpenPipeBackend, data: bytes, name: str = "tickets") -> tuple[Any, list[tuple[int, int]]]:
    report = validate(io.BytesIO(data), RULES)
    seen: list[tuple[int, int]] = []
    dataset = backend.upload_dataset(
        name,
        valid_lines(io.BytesIO(data), RULES),
        total_bytes=report.valid_bytes,
        progress=lambda done, total: seen.append((done, total)),
    )
    return dataset, seen


def _entry_posts(api: LocalOpenPipe) -> list[Any]:
    return [r for r in api.requests if r.method == "POST" and r.path.endswith("/entries")]


def test_openpipe_implements_what_it_declares(backend: OpenPipeBackend) -> None:
    assert "dataset_upload" not in OPENPIPE.unimplemented(backend)


def test_a_file_becomes_a_dataset_in_batches(api: LocalOpenPipe, backend: OpenPipeBackend, contract: Contract) -> None:
    rows = lines(250)
    data = jsonl(*rows)
    dataset, seen = upload(backend, data)
    assert (dataset.name, dataset.entry_count) == ("tickets", 250)
    assert api.dataset_entries(dataset.id) == rows
    assert next(d for d in backend.list_datasets() if d.id == dataset.id).entry_count == 250
    posts = _entry_posts(api)
    assert [len(p.json["entries"]) for p in posts] == [100, 100, 50]
    for request in api.requests:
        if request.method == "POST":
            template = "/datasets/{datasetId}/entries" if request.path.endswith("/entries") else request.path
            contract.validate_request("POST", template, request.json)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (len(data), len(data)) and len(seen) == 3


def test_only_the_valid_lines_go_up(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    good = lines(7)
    data = jsonl(good[0], "{oops", good[1], chat(("user", "x")), *good[2:], {"messages": [], "split": "X"})
    report = validate(io.BytesIO(data), RULES)
    assert (report.valid, report.invalid) == (7, 3)
    dataset, seen = upload(backend, data)
    assert api.dataset_entries(dataset.id) == good
    assert seen == [(report.valid_bytes, report.valid_bytes)]


def test_a_batch_that_fails_for_good_deletes_the_dataset(
    api: LocalOpenPipe, backend: OpenPipeBackend, sleeps: list[float]
) -> None:
    before = set(api.dataset_ids())

    def break_after_first(done: int, total: int) -> None:
        api.inject("POST /datasets/{datasetId}/entries", "status", status=503, times=None)

    data = jsonl(*lines(250))
    with pytest.raises(ServerError) as failed:
        backend.upload_dataset("tickets", valid_lines(io.BytesIO(data), RULES), total_bytes=len(data),
                               progress=break_after_first)  # fmt: skip
    assert "the upload stopped after 100 entries; the partial dataset was deleted" in failed.value.message
    assert set(api.dataset_ids()) == before  # nothing left behind
    assert len(_entry_posts(api)) == 1 + backend.client.max_attempts  # the first batch, then the second tried 4x
    assert len(sleeps) == backend.client.max_attempts - 1  # backed off between, on the injected sleep


def test_a_batch_that_landed_before_the_connection_dropped_is_not_sent_twice(
    api: LocalOpenPipe, backend: OpenPipeBackend
) -> None:
    def drop_once(done: int, total: int) -> None:
        if done < total and not api._faults:
            api.inject("POST /datasets/{datasetId}/entries", "timeout_after_commit", delay=0.05, times=1)

    rows = lines(300)
    data = jsonl(*rows)
    dataset = backend.upload_dataset("t", valid_lines(io.BytesIO(data), RULES), total_bytes=len(data),
                                     progress=drop_once)  # fmt: skip
    assert api.dataset_entries(dataset.id) == rows  # every entry once, in order
    faulted = [r for r in _entry_posts(api) if r.fault]
    assert len(faulted) == 2  # the second and third batches each dropped once, and were resolved by the count
    assert len(_entry_posts(api)) == 3


def test_a_batch_refused_before_processing_is_sent_again(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    api.inject("POST /datasets/{datasetId}/entries", "status", status=429, retry_after=1, times=1)
    api.inject("POST /datasets/{datasetId}/entries", "status", status=500, times=1)
    rows = lines(120)
    dataset, _ = upload(backend, jsonl(*rows))
    assert api.dataset_entries(dataset.id) == rows
    assert [r.fault for r in _entry_posts(api)] == ["status", "status", None, None]


def test_an_entry_the_service_refuses_deletes_the_dataset(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    api.refuse_entries("answer 142", "Entry too long for the model")
    before = set(api.dataset_ids())
    with pytest.raises(ValidationError) as refused:
        upload(backend, jsonl(*lines(250)))
    assert refused.value.message == (
        "OpenPipe refused entry 143 of the upload: Entry too long for the model "
        "(the upload stopped after 100 entries; the partial dataset was deleted)"
    )
    assert set(api.dataset_ids()) == before


def test_a_dataset_that_cannot_be_deleted_is_named(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    api.inject("DELETE /datasets/{datasetId}", "status", status=500, times=None)

    def break_now(done: int, total: int) -> None:
        api.inject("POST /datasets/{datasetId}/entries", "status", status=400, message="Input validation failed")

    with pytest.raises(ValidationError) as failed:
        backend.upload_dataset("t", iter([json.dumps(r).encode() for r in lines(150)]), total_bytes=1,
                               progress=break_now)  # fmt: skip
    assert "the upload stopped after 100 entries" in failed.value.message
    assert "could not be deleted: delete it in OpenPipe" in failed.value.message
    (left,) = [d for d in api.dataset_ids() if d in failed.value.message]  # the one to delete by hand, named
    assert len(api.dataset_entries(left)) == 100


def test_a_create_whose_answer_was_lost_makes_one_dataset(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    api.inject("POST /datasets", "timeout_after_commit", delay=0.05, times=1)
    before = set(api.dataset_ids())
    dataset, _ = upload(backend, jsonl(*lines(3)), name="once")
    assert set(api.dataset_ids()) - before == {dataset.id}
    assert len(api.dataset_entries(dataset.id)) == 3


def test_a_create_that_fails_leaves_nothing(api: LocalOpenPipe, backend: OpenPipeBackend) -> None:
    api.inject("POST /datasets", "timeout", delay=0.05, times=None)
    before = set(api.dataset_ids())
    with pytest.raises(TransportError):
        upload(backend, jsonl(*lines(3)))
    assert set(api.dataset_ids()) == before


def test_the_local_api_answers_as_the_spec_says(api: LocalOpenPipe, contract: Contract) -> None:
    def call(method: str, path: str, body: Any = None) -> httpx.Response:
        return HTTP.request(method, api.url + path, json=body, headers={"Authorization": f"Bearer {KEY}"})

    made = call("POST", "/datasets", {"name": "raw"})
    contract.validate_response("POST", "/datasets", made.status_code, made.json())
    ds = made.json()["id"]
    added = call("POST", f"/datasets/{ds}/entries", {"entries": lines(2)})
    contract.validate_response("POST", "/datasets/{datasetId}/entries", 200, added.json())
    assert added.json()["entries_created"] == 2
    bad = call("POST", f"/datasets/{ds}/entries", {"entries": [{"messages": [{"role": "bot"}]}]})
    assert bad.status_code == 400
    contract.validate_response("POST", "/datasets/{datasetId}/entries", 400, bad.json())
    too_many = call("POST", f"/datasets/{ds}/entries", {"entries": lines(101)})
    assert too_many.status_code == 400
    gone = call("DELETE", f"/datasets/{ds}")
    contract.validate_response("DELETE", "/datasets/{datasetId}", 200, gone.json())
    assert call("DELETE", f"/datasets/{ds}").status_code == 404
    assert call("POST", f"/datasets/{ds}/entries", {"entries": lines(1)}).status_code == 404
    listed = call("GET", "/datasets").json()
    contract.validate_response("GET", "/datasets", 200, listed)


def test_deleting_a_missing_dataset_is_not_found(backend: OpenPipeBackend) -> None:
    with pytest.raises(NotFoundError):
        backend.client.delete_dataset("no-such-dataset")


def test_an_upload_from_a_file_on_disk(api: LocalOpenPipe, backend: OpenPipeBackend, tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(jsonl(*lines(5)))
    with path.open("rb") as stream:
        dataset = backend.upload_dataset("disk", valid_lines(stream, RULES), total_bytes=path.stat().st_size)
    assert dataset.entry_count == 5

"""Together's upload: validated lines become one JSONL file through the service's upload flow, against the local
Together (the contract tests in tests/together check that flow against the spec and the SDK)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from slackbot.backends.base import Method, ValidationError
from slackbot.backends.together.client import TogetherClient
from slackbot.backends.together.datasets import TOGETHER_DATASET_RULES
from slackbot.backends.together.upload import upload_dataset
from slackbot.datasets.validate import valid_lines, validate
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.together_api import LocalTogether
from tests.datasets.conftest import GOOD_CHAT, chat, jsonl
from tests.together.conftest import KEY


@pytest.fixture
def api() -> Iterator[LocalTogether]:
    with LocalTogether(KEY, clock=ManualClock(start=1_764_000_000.0), step_seconds=60.0) as server:
        yield server


@pytest.fixture
def client(api: LocalTogether) -> Iterator[TogetherClient]:
    made = TogetherClient(SecretStr(KEY), api.url, timeout=2.0, sleep=lambda s: None)
    yield made
    made.close()


PAIR = {
    "input": {"messages": [{"role": "user", "content": "Hi"}]},
    "preferred_output": [{"role": "assistant", "content": "Hello."}],
    "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
}


def test_valid_lines_become_one_file(api: LocalTogether, client: TogetherClient) -> None:
    data = jsonl(GOOD_CHAT, "{oops", {"prompt": "a", "completion": "b"}, chat(("assistant", "first")))
    report = validate(io.BytesIO(data), TOGETHER_DATASET_RULES)
    assert (report.valid, report.invalid) == (2, 2)
    seen: list[tuple[int, int]] = []
    dataset = upload_dataset(
        client,
        "tickets",
        valid_lines(io.BytesIO(data), TOGETHER_DATASET_RULES),
        total_bytes=report.valid_bytes,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (dataset.name, dataset.entry_count) == ("tickets.jsonl", 2)
    stored = api.file_data(dataset.id)
    assert stored is not None
    assert [json.loads(line) for line in stored.splitlines()] == [GOOD_CHAT, {"prompt": "a", "completion": "b"}]
    assert len(stored) == report.valid_bytes
    assert seen == [(0, report.valid_bytes), (report.valid_bytes, report.valid_bytes)]
    assert dataset.id in {f.id for f in client.list_files().fine_tune_files()}


def test_a_dpo_file(api: LocalTogether, client: TogetherClient) -> None:
    data = jsonl(PAIR, PAIR)
    assert validate(io.BytesIO(data), TOGETHER_DATASET_RULES, Method.DPO).ok
    lines = valid_lines(io.BytesIO(data), TOGETHER_DATASET_RULES, Method.DPO)
    dataset = upload_dataset(client, "pairs.jsonl", lines, total_bytes=len(data))
    assert dataset.name == "pairs.jsonl" and api.file_data(dataset.id) == data


def test_nothing_to_upload(client: TogetherClient) -> None:
    with pytest.raises(ValidationError, match="there is no line to upload"):
        upload_dataset(client, "empty", iter([]), total_bytes=0)


def test_a_file_larger_than_memory_keeps_is_spooled_and_streamed_whole(
    api: LocalTogether, client: TogetherClient
) -> None:
    # Over the spool's in-memory size the lines go to a temporary file, read twice in chunks (checksum, then PUT).
    line = json.dumps(GOOD_CHAT).encode()
    count = (9 * 1024 * 1024) // (len(line) + 1) + 1
    dataset = upload_dataset(client, "big", (line for _ in range(count)), total_bytes=count * (len(line) + 1))
    stored = api.file_data(dataset.id)
    assert stored is not None and len(stored) == count * (len(line) + 1) > 9 * 1024 * 1024
    assert stored == (line + b"\n") * count and dataset.entry_count == count
    again = upload_dataset(client, "big", (line for _ in range(count)), total_bytes=count * (len(line) + 1))
    assert again.id == dataset.id  # same bytes, same checksum: Together gives the existing file back

"""A validated dataset file uploaded to Together as one JSONL file (`TogetherClient.upload_file`: presigned URL,
PUT, preprocess). Together's backend calls `upload_dataset` for `Capabilities.dataset_upload`.

The upload flow takes the file's bytes at once (its checksum goes first), so the lines are held in memory for
the one PUT: a file up to a few hundred MB is fine; a streaming PUT needs `upload_file` to take a file object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from slackbot.backends.base import Dataset, ValidationError
from slackbot.backends.together.client import TogetherClient


def upload_dataset(
    client: TogetherClient,
    name: str,
    lines: Iterable[bytes],
    *,
    total_bytes: int,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """One file named `name` (".jsonl" added when missing) holding `lines`, one per line; the dataset is the
    file (its id is what a fine-tune's `training_file` takes). The same content uploaded again is the same file."""
    file_name = name if name.lower().endswith(".jsonl") else f"{name}.jsonl"
    parts = bytearray()
    count = 0
    for line in lines:
        parts += line
        parts += b"\n"
        count += 1
    if count == 0:
        raise ValidationError("there is no line to upload", code="empty_dataset")
    if progress is not None:
        progress(0, total_bytes)
    uploaded = client.upload_file(file_name, bytes(parts))
    if progress is not None:
        progress(total_bytes, total_bytes)
    created = str(uploaded.created_at) if uploaded.created_at is not None else None
    return Dataset(id=uploaded.id, name=uploaded.filename or file_name, entry_count=count, created=created)

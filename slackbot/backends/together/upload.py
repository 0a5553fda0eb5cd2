"""A validated dataset file uploaded to Together as one JSONL file (`TogetherClient.upload_file`: presigned URL,
PUT, preprocess). Together's backend calls `upload_dataset` for `Capabilities.dataset_upload`.

The flow needs the file's checksum before its bytes, so the lines are spooled to a temporary file (in memory
only while small) and read from it twice in chunks: a file of any size is never held whole.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from typing import BinaryIO, cast

from slackbot.backends.base import Dataset, ValidationError
from slackbot.backends.together.client import TogetherClient

_IN_MEMORY_BYTES = 8 * 1024 * 1024


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
    count = 0
    with tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY_BYTES) as spool:
        for line in lines:
            spool.write(line)
            spool.write(b"\n")
            count += 1
        if count == 0:
            raise ValidationError("there is no line to upload", code="empty_dataset")
        if progress is not None:
            progress(0, total_bytes)
        uploaded = client.upload_file(file_name, cast(BinaryIO, spool))
    if progress is not None:
        progress(total_bytes, total_bytes)
    created = str(uploaded.created_at) if uploaded.created_at is not None else None
    return Dataset(id=uploaded.id, name=uploaded.filename or file_name, entry_count=count, created=created)

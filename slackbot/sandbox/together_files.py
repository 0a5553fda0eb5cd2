"""The local Together's files: the upload flow the SDK 3.1.1 uses (a multipart POST answered with a 302 to a
presigned PUT on the same server, then a preprocess call), the one-request upload, and the file objects."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from slackbot.sandbox.clock import Clock
from slackbot.sandbox.stand_in import Reply
from slackbot.sandbox.together_http import ApiError

# The spec's FilePurpose and the SDK 3.1.1's (which adds calibration).
PURPOSES = frozenset(
    {"fine-tune", "eval", "eval-sample", "eval-output", "eval-summary", "batch-generated", "batch-api", "calibration"}
)
SEED_FILES = (
    ("support-tickets-2026-q3.jsonl", "fine-tune", 1240),
    ("sql-generation-v2.jsonl", "fine-tune", 530),
    ("product-faq-dpo-pairs.jsonl", "fine-tune", 310),
    ("eval-questions.jsonl", "eval", 20),
)
SEED_LINE = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    file_type: str
    created_at: float
    checksum: str
    data: bytes | None = None  # None: the presigned PUT has not arrived
    processed: bool = False
    upload_token: str = ""


class Files:
    """The files by id. Not locked: `LocalTogether` calls it under its lock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._files: dict[str, StoredFile] = {}

    def add(self, name: str, data: bytes, *, purpose: str = "fine-tune", file_id: str | None = None) -> str:
        file_id = file_id or f"file-{uuid.uuid4()}"
        kind = name.rsplit(".", 1)[-1] if "." in name else "jsonl"
        checksum = hashlib.sha256(data).hexdigest()
        self._files[file_id] = StoredFile(file_id, name, purpose, kind, self._clock.now(), checksum, data, True)
        return file_id

    def get(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def data(self, file_id: str) -> bytes | None:
        return self._files[file_id].data

    def listing(self) -> dict[str, Any]:
        return {"data": [self.render(f) for f in self._files.values() if f.data is not None]}

    def find(self, file_id: str, *, uploaded: bool = True) -> StoredFile:
        entry = self._files.get(file_id)
        if entry is None or (uploaded and entry.data is None):
            raise ApiError(404, f"File {file_id} not found", code="file_not_found")
        return entry

    def render(self, entry: StoredFile) -> dict[str, Any]:
        return {
            "id": entry.id,
            "object": "file",
            "created_at": int(entry.created_at),
            "filename": entry.filename,
            "bytes": len(entry.data or b""),
            "purpose": entry.purpose,
            "FileType": entry.file_type,
            "Processed": entry.processed,
            "processing_status": "COMPLETED" if entry.processed else "PENDING",
            **self._validation_report(entry),
        }

    def _validation_report(self, entry: StoredFile) -> dict[str, Any]:
        """The SDK 3.1.1's report on a validated fine-tune file (newer than the spec): its line count."""
        if not entry.processed or entry.purpose != "fine-tune" or entry.data is None or entry.file_type != "jsonl":
            return {}
        lines = sum(1 for line in entry.data.splitlines() if line.strip())
        return {"validation_report": {"valid": True, "file_id": entry.id, "nlines": lines}}

    # --- uploads ----------------------------------------------------------------------------------------

    def _form(self, body: Any, *names: str) -> dict[str, str]:
        if not isinstance(body, dict):
            raise ApiError(400, "Expected a multipart/form-data body")
        missing = [n for n in names if n not in body]
        if missing:
            raise ApiError(400, f"Missing form field(s): {', '.join(missing)}", param=missing[0])
        return {k: v.decode("utf-8", "replace") for k, v in body.items() if k != "file"}

    def start_upload(self, body: Any, base_url: str) -> Reply:
        """POST /files: a 302 to the presigned PUT under `base_url` (a 409 naming the file already uploaded)."""
        form = self._form(body, "purpose", "file_name", "file_type", "checksum")
        self._file_kind(form)
        for entry in self._files.values():
            if entry.checksum == form["checksum"] and entry.data is not None:
                return Reply(409, {"file_id": entry.id})
        file_id = f"file-{uuid.uuid4()}"
        token = secrets.token_urlsafe(16)
        self._files[file_id] = StoredFile(
            file_id, form["file_name"], form["purpose"], form["file_type"], self._clock.now(), form["checksum"],
            upload_token=token,
        )  # fmt: skip
        location = f"{base_url}/upload/{file_id}?X-Amz-Signature={token}"
        return Reply(302, None, {"Location": location, "X-Together-File-Id": file_id})

    def store_upload(self, file_id: str, signature: str, data: bytes) -> tuple[int, Any]:
        """The presigned PUT: the bytes, if the signature is the one handed out and they match the checksum."""
        entry = self._files.get(file_id)
        if entry is None or not entry.upload_token or not hmac.compare_digest(signature, entry.upload_token):
            return 403, {"error": {"message": "SignatureDoesNotMatch", "type": "permission_error"}}
        if hashlib.sha256(data).hexdigest() != entry.checksum:
            return 400, {
                "error": {
                    "message": "The uploaded bytes do not match the checksum",
                    "type": "invalid_request_error",
                }
            }
        entry.data, entry.upload_token = data, ""
        return 200, None

    def preprocess(self, entry: StoredFile) -> dict[str, Any]:
        if entry.data is None:
            raise ApiError(400, f"File {entry.id} has not been uploaded yet", code="file_not_uploaded")
        if entry.file_type == "jsonl":
            for number, line in enumerate(entry.data.splitlines(), 1):
                try:
                    json.loads(line)
                except ValueError:
                    raise ApiError(
                        400, f"Line {number} of {entry.filename} is not valid JSON", code="invalid_format"
                    ) from None
        entry.processed = True
        return self.render(entry)

    def upload_at_once(self, body: Any) -> dict[str, Any]:
        """POST /files/upload: the file in one multipart request."""
        form = self._form(body, "purpose", "file_name", "file")
        self._file_kind(form)
        file_id = self.add(form["file_name"], body["file"], purpose=form["purpose"])
        return self.render(self._files[file_id])

    def _file_kind(self, form: dict[str, str]) -> None:
        if form.get("file_type", "jsonl") not in ("jsonl", "csv", "parquet"):
            raise ApiError(400, "file_type must be one of jsonl, csv, parquet", param="file_type")
        if form["purpose"] not in PURPOSES:
            raise ApiError(400, f"Unknown purpose {form['purpose']!r}", param="purpose")

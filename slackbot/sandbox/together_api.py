"""A local Together AI fine-tuning API on loopback, with controllable time and injectable faults.

It answers the endpoints the bot uses (shared/together/NOTES.md) with the spec's shapes and the fields the SDK
3.1.1 requires, serves the upload flow the SDK uses (presigned PUT to this same server), prices jobs against a
configurable budget, and moves jobs through their statuses by clock time, with events and metrics that grow
step by step, so tests advance a `ManualClock` instead of sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import signal
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slackbot.sandbox.clock import Clock, ManualClock, SystemClock
from slackbot.sandbox.serving import StandInServer
from slackbot.sandbox.together_http import ApiError, Fault, RecordedRequest, Reply, handler_for

log = logging.getLogger("slackbot.sandbox.together")

FAULT_KINDS = frozenset(
    {"status", "latency", "timeout", "timeout_after_commit", "malformed", "html", "drip", "missing_fields"}
)
# One status per step of `step_seconds`; "running" lasts TRAINING_STEPS steps.
TRAINING_STEPS = 3
GLOBAL_STEPS_PER_STEP = 5  # metric rows logged per step of training
PROGRESSION = ("pending", "queued", *(["running"] * TRAINING_STEPS), "compressing", "uploading", "completed")
NANODOLLARS = 1_000_000_000  # total_price's unit (the SDK's CLI divides by it)
PRICE_PER_MILLION_TOKENS = {"Lora": 0.48, "Full": 0.54}
USER_ID = "user_local_sandbox"
# The spec's FilePurpose and the SDK 3.1.1's (which adds calibration).
PURPOSES = frozenset(
    {"fine-tune", "eval", "eval-sample", "eval-output", "eval-summary", "batch-generated", "batch-api", "calibration"}
)

SUPPORTED_MODELS = (
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference",
    "Qwen/Qwen2.5-7B-Instruct",
)
_SEED_FILES = (
    ("support-tickets-2026-q3.jsonl", "fine-tune", 1240),
    ("sql-generation-v2.jsonl", "fine-tune", 530),
    ("product-faq-dpo-pairs.jsonl", "fine-tune", 310),
    ("eval-questions.jsonl", "eval", 20),
)
_LINE = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    file_type: str
    created_at: float
    checksum: str
    data: bytes | None = None  # None: the presigned PUT has not arrived
    processed: bool = False
    upload_token: str = ""


@dataclass
class _Job:
    id: str
    body: dict[str, Any]
    created_at: float
    tokens: int
    price: int  # nanodollars
    forced_status: str | None = None
    forced_at: float = 0.0
    error_message: str | None = None
    cancelled_at: float | None = None
    extra_events: list[tuple[float, str, str, str]] = field(default_factory=list)  # (time, type, level, message)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _template(path: str) -> str:
    path = re.sub(r"^/fine-tunes/(?!models/|estimate-price$)[^/]+", "/fine-tunes/{id}", path)
    return re.sub(r"^/files/(?!upload$)[^/]+", "/files/{id}", path)


class LocalTogether:
    """See the module docstring. Thread-safe: the HTTP threads and the test share one lock."""

    def __init__(
        self,
        api_key: str = "tgp_local_test",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        step_seconds: float = 60.0,
        budget: float = 100.0,
        seed: bool = True,
    ) -> None:
        if step_seconds <= 0:
            raise ValueError("step_seconds must be positive")
        self._key = api_key
        self._host, self._port = host, port
        self.clock: Clock = clock or ManualClock()
        self.step_seconds = step_seconds
        self.budget = budget  # dollars: an estimate above it says allowed_to_proceed: false
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._jobs: dict[str, _Job] = {}
        self._files: dict[str, _File] = {}
        self._faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.raw_requests: list[tuple[str, str, dict[str, str], str]] = []  # method, path, query, content type
        self.puts: list[tuple[str, bool]] = []  # presigned uploads: file id, whether an Authorization came along
        self.chats: list[dict[str, Any]] = []  # chat completion bodies received
        self._server: StandInServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        if seed:
            for name, purpose, lines in _SEED_FILES:
                self.add_file(
                    name, _LINE * lines, purpose=purpose, file_id=f"file-{uuid.uuid5(uuid.NAMESPACE_URL, name)}"
                )

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> LocalTogether:
        server = StandInServer((self._host, self._port), handler_for(self))
        self._stopping.clear()
        self._server = server
        self.url = f"http://{self._host}:{server.server_address[1]}"  # TOGETHER_BASE_URL: the API is under /v1
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="local-together", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that hold a connection open for a fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalTogether:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- state for tests --------------------------------------------------------------------------------

    def add_file(self, name: str, data: bytes, *, purpose: str = "fine-tune", file_id: str | None = None) -> str:
        file_id = file_id or f"file-{uuid.uuid4()}"
        kind = name.rsplit(".", 1)[-1] if "." in name else "jsonl"
        entry = _File(file_id, name, purpose, kind, self.clock.now(), hashlib.sha256(data).hexdigest(), data, True)
        with self._lock:
            self._files[file_id] = entry
        return file_id

    def file_data(self, file_id: str) -> bytes | None:
        with self._lock:
            return self._files[file_id].data

    def fail_job(self, job_id: str, message: str) -> None:
        """From now on the job reads as `error`, with a job_error event carrying this message."""
        with self._lock:
            job = self._jobs[job_id]
            now = self.clock.now()
            job.forced_status, job.forced_at, job.error_message = "error", now, message
            job.extra_events.append((now, "job_error", "error", message))

    def set_status(self, job_id: str, status: str) -> None:
        """Force any status string (including one the spec does not know yet)."""
        with self._lock:
            job = self._jobs[job_id]
            job.forced_status, job.forced_at = status, self.clock.now()

    def inject(
        self,
        endpoint: str,
        kind: str,
        *,
        status: int = 500,
        retry_after: float | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        message: str | None = None,
    ) -> None:
        """Make the next `times` requests (None: all) to `endpoint` misbehave, as the local OpenPipe does.

        `endpoint` is "METHOD /path" relative to /v1 with "{id}" for a job or file id (e.g.
        "GET /fine-tunes/{id}"), or "*". Kinds: "status" (Together's error body with `status` and Retry-After if
        given), "html", "timeout", "latency" before processing; "timeout_after_commit", "malformed",
        "missing_fields", "drip" after it (so e.g. the job IS created).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        method, _, template = endpoint.partition(" ")
        with self._lock:
            self._faults.append(Fault(method, template, kind, status, retry_after, delay, times, message))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            return self._render(self._jobs[job_id], full=True)

    # --- behaviour --------------------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == "*" or (fault.method == method and fault.template == _template(path)):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _step(self, job: _Job, at: float | None = None) -> float:
        """Steps of `step_seconds` since the job was created (fractional), frozen when it was cancelled."""
        now = self.clock.now() if at is None else at
        if job.cancelled_at is not None:
            now = min(now, job.cancelled_at)
        return max(0.0, (now - job.created_at) / self.step_seconds)

    def _status(self, job: _Job) -> str:
        if job.forced_status is not None:
            return job.forced_status
        if job.cancelled_at is not None:
            return "cancelled" if self.clock.now() >= job.cancelled_at + self.step_seconds else "cancel_requested"
        return PROGRESSION[min(int(self._step(job)), len(PROGRESSION) - 1)]

    def _global_steps(self, job: _Job) -> int:
        """Training steps done: they grow while the job runs, and stop when it is cancelled or fails."""
        at = job.forced_at if job.forced_status is not None else None
        trained = self._step(job, at) - 2  # two steps of pending and queued
        return int(max(0.0, min(trained, TRAINING_STEPS)) * GLOBAL_STEPS_PER_STEP)

    def _metrics(self, job: _Job) -> list[dict[str, float]]:
        rows = []
        for n in range(1, self._global_steps(job) + 1):
            t = job.created_at + (2 + n / GLOBAL_STEPS_PER_STEP) * self.step_seconds
            loss = 2.0 * 0.93**n
            row = {"train/loss": round(loss, 6), "train/global_step": float(n), "train/lr": 1e-5, "timestamp": t}
            if job.body.get("validation_file") and n % GLOBAL_STEPS_PER_STEP == 0:
                row["eval/loss"] = round(loss * 1.07, 6)
            rows.append(row)
        return rows

    def _events(self, job: _Job) -> list[dict[str, Any]]:
        s, t0 = self.step_seconds, job.created_at
        plan: list[tuple[float, str, str, str]] = [(t0, "job_pending", "info", "Fine-tune request created")]
        plan.append((t0 + 2 * s, "job_start", "info", "Job started"))
        plan.append((t0 + 2 * s, "training_start", "info", "Training started"))
        total = TRAINING_STEPS * GLOBAL_STEPS_PER_STEP
        for k in range(1, TRAINING_STEPS + 1):
            step = k * GLOBAL_STEPS_PER_STEP
            plan.append((t0 + (2 + k) * s, "checkpoint_save", "info", f"Checkpoint saved at step {step} of {total}"))
        plan.append((t0 + (2 + TRAINING_STEPS) * s, "epoch_complete", "info", "Epoch completed"))
        plan.append((t0 + (2 + TRAINING_STEPS) * s, "training_complete", "info", "Training completed"))
        plan.append((t0 + (2 + TRAINING_STEPS) * s, "model_compressing", "info", "Compressing the model"))
        plan.append((t0 + (3 + TRAINING_STEPS) * s, "model_uploading", "info", "Uploading the model"))
        done = t0 + (4 + TRAINING_STEPS) * s
        plan.append((done, "model_upload_complete", "info", "Model uploaded"))
        plan.append((done, "job_complete", "info", f"Job completed: {job.body.get('model_output_name', '')}"))
        now = self.clock.now()
        cutoff = min(now, job.forced_at if job.forced_status is not None else now)
        events = [e for e in plan if e[0] <= min(cutoff, job.cancelled_at or now)]
        if job.cancelled_at is not None:
            stopped = job.cancelled_at + s
            cancel = [(job.cancelled_at, "cancel_requested", "info", "Cancel requested")]
            cancel += [
                (stopped, "job_stopped", "info", "Job stopped"),
                (stopped, "refund", "info", "Untrained steps refunded"),
            ]
            events += [e for e in cancel if e[0] <= now]
        events += job.extra_events
        events.sort(key=lambda e: e[0])
        return [self._event(job, *e) for e in events]

    def _event(self, job: _Job, at: float, kind: str, level: str, message: str) -> dict[str, Any]:
        step = self._global_steps(job) if kind in ("checkpoint_save", "job_error") else 0
        if kind == "checkpoint_save":
            step = int(message.split(" at step ", 1)[1].split(" ")[0])
        return {
            "object": "fine-tune-event",
            "created_at": _iso(at),
            "level": level,
            "message": message,
            "type": kind,
            "param_count": 8_030_261_248,
            "token_count": job.tokens,
            "total_steps": TRAINING_STEPS * GLOBAL_STEPS_PER_STEP,
            "wandb_url": "",
            "step": step,
            "checkpoint_path": f"s3://local-together/{job.id}/checkpoint-{step}" if kind == "checkpoint_save" else "",
            "model_path": "",
            "training_offset": 0,
            "hash": hashlib.sha256(f"{job.id}{at}{kind}".encode()).hexdigest()[:16],
        }

    def _render(self, job: _Job, *, full: bool) -> dict[str, Any]:
        status = self._status(job)
        body = job.body
        updated = (
            job.forced_at
            if job.forced_status
            else job.created_at + min(int(self._step(job)), len(PROGRESSION) - 1) * self.step_seconds
        )
        out: dict[str, Any] = {
            "id": job.id,
            "status": status,
            "created_at": _iso(job.created_at),
            "updated_at": _iso(updated),
            "user_id": USER_ID,
            "owner_address": "owner@example.com",
            "model": body["model"],
            "model_output_name": body["model_output_name"],
            "training_file": body["training_file"],
            "n_epochs": body.get("n_epochs", 1),
            "n_checkpoints": body.get("n_checkpoints", 1),
            "n_evals": body.get("n_evals", 0),
            "batch_size": body["resolved_batch_size"],
            "learning_rate": body.get("learning_rate", 1e-5),
            "lr_scheduler": body.get(
                "lr_scheduler", {"lr_scheduler_type": "linear", "lr_scheduler_args": {"min_lr_ratio": 0.0}}
            ),
            "warmup_ratio": body.get("warmup_ratio", 0.0),
            "max_grad_norm": body.get("max_grad_norm", 1.0),
            "weight_decay": body.get("weight_decay", 0.0),
            "training_method": body["training_method"],
            "training_type": body["training_type"],
            "token_count": job.tokens,
            "total_price": job.price,
            "events": [],
        }
        for key in ("validation_file", "suffix", "wandb_project_name", "wandb_name", "from_checkpoint"):
            if key in body:
                out[key] = body[key]
        if status not in ("pending", "queued"):
            out["started_at"] = _iso(job.created_at + 2 * self.step_seconds)
        remaining = max(0.0, (len(PROGRESSION) - 1 - self._step(job)) * self.step_seconds)
        running = status in ("running", "compressing", "uploading")
        out["progress"] = {"estimate_available": running, "seconds_remaining": int(remaining) if running else 0}
        if full:
            out["events"] = self._events(job)
            out["epochs_completed"] = out["n_epochs"] if status == "completed" else 0
            out["queue_depth"] = 0
            out["param_count"] = 8_030_261_248
            out["trainingfile_numlines"] = job.tokens // 25
            out["trainingfile_size"] = len(self._files[body["training_file"]].data or b"")
            out["job_id"] = job.id
        return out

    def _render_file(self, entry: _File) -> dict[str, Any]:
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

    def _validation_report(self, entry: _File) -> dict[str, Any]:
        """The SDK 3.1.1's report on a validated fine-tune file (newer than the spec): its line count."""
        if not entry.processed or entry.purpose != "fine-tune" or entry.data is None or entry.file_type != "jsonl":
            return {}
        lines = sum(1 for line in entry.data.splitlines() if line.strip())
        return {"validation_report": {"valid": True, "file_id": entry.id, "nlines": lines}}

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Any, auth: str) -> Any:
        if not hmac.compare_digest(auth.encode(), f"Bearer {self._key}".encode()):
            raise ApiError(
                401,
                "Invalid API key provided. You can find your API key at api.together.ai/settings/api-keys.",
                code="invalid_api_key",
            )
        if isinstance(body, ApiError):
            raise body
        template = _template(path)
        item = path.split("/")[2] if template.count("{id}") else ""
        with self._lock:
            match method, template:
                case "GET", "/files":
                    return {"data": [self._render_file(f) for f in self._files.values() if f.data is not None]}
                case "POST", "/files":
                    return self._start_upload(body)
                case "POST", "/files/upload":
                    return self._upload_at_once(body)
                case "GET", "/files/{id}":
                    return self._render_file(self._file(item))
                case "POST", "/files/{id}/preprocess":
                    return self._preprocess(self._file(item, uploaded=False))
                case "GET", "/fine-tunes/models/supported":
                    return {"models": list(SUPPORTED_MODELS)}
                case "GET", "/fine-tunes/models/limits":
                    return self._limits(query.get("model_name", ""))
                case "POST", "/fine-tunes/estimate-price":
                    return self._estimate(self._checked(body, for_estimate=True))
                case "POST", "/fine-tunes":
                    return self._create(body)
                case "GET", "/fine-tunes":
                    return {"data": [self._render(j, full=False) for j in self._jobs.values()]}
                case "GET", "/fine-tunes/{id}":
                    return self._render(self._job(item), full=True)
                case "DELETE", "/fine-tunes/{id}":
                    self._jobs.pop(self._job(item).id)
                    return {"message": f"Fine-tune job {item} deleted"}
                case "GET", "/fine-tunes/{id}/events":
                    return {"data": self._events(self._job(item))}
                case "GET", "/fine-tunes/{id}/metrics":
                    return {"metrics": self._filtered_metrics(self._job(item), body, query)}
                case "POST", "/fine-tunes/{id}/cancel":
                    return self._cancel(self._job(item))
                case "POST", "/chat/completions":
                    return self._chat(body)
        raise ApiError(404, f"No route for {method} {path}")

    # --- files ------------------------------------------------------------------------------------------

    def _file(self, file_id: str, *, uploaded: bool = True) -> _File:
        entry = self._files.get(file_id)
        if entry is None or (uploaded and entry.data is None):
            raise ApiError(404, f"File {file_id} not found", code="file_not_found")
        return entry

    def _form(self, body: Any, *names: str) -> dict[str, str]:
        if not isinstance(body, dict):
            raise ApiError(400, "Expected a multipart/form-data body")
        missing = [n for n in names if n not in body]
        if missing:
            raise ApiError(400, f"Missing form field(s): {', '.join(missing)}", param=missing[0])
        return {k: v.decode("utf-8", "replace") for k, v in body.items() if k != "file"}

    def _start_upload(self, body: Any) -> Reply:
        form = self._form(body, "purpose", "file_name", "file_type", "checksum")
        self._file_kind(form)
        for entry in self._files.values():
            if entry.checksum == form["checksum"] and entry.data is not None:
                return Reply(409, {"file_id": entry.id})
        file_id = f"file-{uuid.uuid4()}"
        token = secrets.token_urlsafe(16)
        self._files[file_id] = _File(
            file_id, form["file_name"], form["purpose"], form["file_type"], self.clock.now(), form["checksum"],
            upload_token=token,
        )  # fmt: skip
        location = f"{self.url}/upload/{file_id}?X-Amz-Signature={token}"
        return Reply(302, None, {"Location": location, "X-Together-File-Id": file_id})

    def _store_upload(self, file_id: str, query: dict[str, str], data: bytes) -> tuple[int, Any]:
        with self._lock:
            entry = self._files.get(file_id)
            token = query.get("X-Amz-Signature", "")
            if entry is None or not entry.upload_token or not hmac.compare_digest(token, entry.upload_token):
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

    def _preprocess(self, entry: _File) -> dict[str, Any]:
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
        return self._render_file(entry)

    def _upload_at_once(self, body: Any) -> dict[str, Any]:
        form = self._form(body, "purpose", "file_name", "file")
        self._file_kind(form)
        file_id = self.add_file(form["file_name"], body["file"], purpose=form["purpose"])
        return self._render_file(self._files[file_id])

    def _file_kind(self, form: dict[str, str]) -> None:
        if form.get("file_type", "jsonl") not in ("jsonl", "csv", "parquet"):
            raise ApiError(400, "file_type must be one of jsonl, csv, parquet", param="file_type")
        if form["purpose"] not in PURPOSES:
            raise ApiError(400, f"Unknown purpose {form['purpose']!r}", param="purpose")

    # --- jobs -------------------------------------------------------------------------------------------

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"Fine-tune job {job_id} not found", code="not_found")
        return job

    def _limits(self, model: str) -> Any:
        if model not in SUPPORTED_MODELS:
            return Reply(404, {"message": f"Model {model} is not available for fine-tuning"})
        big = "70B" in model
        return {
            "model_name": model,
            "full_training": {
                "max_batch_size": 32 if big else 96,
                "max_batch_size_dpo": 16 if big else 48,
                "min_batch_size": 8,
            },
            "lora_training": {
                "max_batch_size": 64 if big else 128,
                "max_batch_size_dpo": 32 if big else 64,
                "min_batch_size": 8,
                "max_rank": 64,
                "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"],
                "default_rank": 16,
            },
            "max_num_epochs": 20,
            "max_num_evals": 100,
            "max_num_checkpoints": 10,
            "max_learning_rate": 1.0,
            "min_learning_rate": 1e-8,
            "default_gradient_accumulation_steps": 1,
            "max_seq_length_sft": 8192,
            "max_seq_length_dpo": 8192,
            "min_max_seq_length": 512,
            "supports_full_training": not big,
            "supports_vision": False,
            "supports_tools": True,
            "supports_reasoning": False,
            "merge_output_lora": True,
        }

    def _checked(self, body: Any, *, for_estimate: bool = False) -> dict[str, Any]:
        """The spec's rules the real service enforces, with its kind of message and the field in `param`."""
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object")
        required = ("training_file",) if for_estimate else ("training_file", "model")
        for key in required:
            if not isinstance(body.get(key), str) or not body[key]:
                raise ApiError(400, f"{key} is required", param=key)
        entry = self._files.get(body["training_file"])
        if entry is None or entry.data is None or entry.purpose != "fine-tune":
            raise ApiError(
                400, f"training_file {body['training_file']} is not an uploaded fine-tune file", param="training_file"
            )
        if body.get("validation_file") and body["validation_file"] not in self._files:
            raise ApiError(400, f"validation_file {body['validation_file']} was not found", param="validation_file")
        model = body.get("model", SUPPORTED_MODELS[0])
        if model not in SUPPORTED_MODELS:
            raise ApiError(400, f"Model {model} is not supported for fine-tuning", param="model")
        limits = self._limits(model)
        for key, low, high in (
            ("n_epochs", 1, limits["max_num_epochs"]),
            ("n_evals", 0, limits["max_num_evals"]),
            ("n_checkpoints", 1, limits["max_num_checkpoints"]),
        ):
            value = body.get(key)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high
            ):
                raise ApiError(400, f"{key} must be an integer between {low} and {high}", param=key)
        lr = body.get("learning_rate")
        if lr is not None and (
            isinstance(lr, bool)
            or not isinstance(lr, int | float)
            or not limits["min_learning_rate"] <= lr <= limits["max_learning_rate"]
        ):
            raise ApiError(
                400,
                f"learning_rate must be between {limits['min_learning_rate']} and {limits['max_learning_rate']}",
                param="learning_rate",
            )
        ttype = body.get("training_type") or {"type": "Lora", "lora_r": 16, "lora_alpha": 32}
        if not isinstance(ttype, dict) or ttype.get("type") not in ("Lora", "Full"):
            raise ApiError(400, "training_type.type must be Lora or Full", param="training_type")
        if ttype["type"] == "Full" and not limits["supports_full_training"]:
            raise ApiError(400, f"Full training is not available for {model}", param="training_type")
        if ttype["type"] == "Lora":
            rank = ttype.get("lora_r")
            if not isinstance(rank, int) or not isinstance(ttype.get("lora_alpha"), int) or not 1 <= rank <= 64:
                raise ApiError(
                    400, "lora_r (1 to 64) and lora_alpha are required for LoRA training", param="training_type"
                )
        method = body.get("training_method") or {"method": "sft", "train_on_inputs": "auto"}
        if not isinstance(method, dict) or method.get("method") not in ("sft", "dpo"):
            raise ApiError(400, "training_method.method must be sft or dpo", param="training_method")
        if method["method"] == "sft" and method.get("train_on_inputs") not in (True, False, "auto"):
            raise ApiError(400, "train_on_inputs must be true, false or auto", param="training_method")
        side = limits["lora_training"] if ttype["type"] == "Lora" else limits["full_training"]
        high = side["max_batch_size_dpo"] if method["method"] == "dpo" else side["max_batch_size"]
        batch = body.get("batch_size", "max")
        if batch != "max" and (
            not isinstance(batch, int) or isinstance(batch, bool) or not side["min_batch_size"] <= batch <= high
        ):
            raise ApiError(
                400, f"batch_size must be max or between {side['min_batch_size']} and {high}", param="batch_size"
            )
        return {**body, "model": model, "training_type": ttype, "training_method": method,
                "resolved_batch_size": high if batch == "max" else batch}  # fmt: skip

    def _price(self, body: dict[str, Any]) -> tuple[int, float]:
        data = self._files[body["training_file"]].data or b""
        tokens = max(1, len(data) // 4) * body.get("n_epochs", 1)
        rate = PRICE_PER_MILLION_TOKENS[body["training_type"]["type"]]
        if body["training_method"]["method"] == "dpo":
            rate *= 2  # a pair is two sequences
        return tokens, round(tokens * rate / 1_000_000, 6)

    def _estimate(self, body: dict[str, Any]) -> dict[str, Any]:
        tokens, price = self._price(body)
        evals = body.get("n_evals", 0)
        return {
            "estimation_available": True,
            "estimated_total_price": price,
            "allowed_to_proceed": price <= self.budget,
            "user_limit": self.budget,
            "estimated_train_token_count": tokens,
            "estimated_eval_token_count": tokens // 10 if evals else 0,
        }

    def _create(self, raw: Any) -> dict[str, Any]:
        body = self._checked(raw)
        tokens, price = self._price(body)
        job_id = f"ft-{uuid.uuid4()}"
        suffix = body.get("suffix") or job_id[3:11]
        body["model_output_name"] = f"sandbox/{body['model'].split('/')[-1]}-{suffix}"
        job = _Job(job_id, body, self.clock.now(), tokens, int(price * NANODOLLARS))
        self._jobs[job_id] = job
        return self._render(job, full=False)

    def _chat(self, body: Any) -> dict[str, Any]:
        """A fine-tuned model answers once its job completed, under its model_output_name (as Together serves it
        on serverless LoRA); any other model name is "not available"."""
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise ApiError(400, "model is required", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages must be a non-empty list", param="messages")
        served = {j.body["model_output_name"]: j for j in self._jobs.values() if self._status(j) == "completed"}
        job = served.get(body["model"])
        if job is None:
            raise ApiError(
                404, f"Unable to access model {body['model']}. Please visit https://api.together.ai/models",
                code="model_not_available",
            )  # fmt: skip
        last = next((m.get("content") for m in reversed(messages) if isinstance(m, dict)), "")
        text = f"[{job.body.get('suffix', job.id)}] you said: {str(last)[:200]}"
        prompt_tokens = sum(len(str(m.get("content", ""))) // 4 + 1 for m in messages if isinstance(m, dict))
        completion_tokens = len(text) // 4 + 1
        self.chats.append(body)
        return {
            "id": f"chat-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(self.clock.now()),
            "model": body["model"],
            "prompt": [],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _cancel(self, job: _Job) -> dict[str, Any]:
        status = self._status(job)
        if status in ("completed", "error", "cancelled"):
            raise ApiError(400, f"Job {job.id} is {status} and cannot be cancelled", code="invalid_state")
        if job.cancelled_at is None:
            job.cancelled_at = self.clock.now()
            done = self._global_steps(job) / (TRAINING_STEPS * GLOBAL_STEPS_PER_STEP)
            job.price = int(job.price * done)  # billed for the steps trained, the rest refunded
        return self._render(job, full=False)

    def _filtered_metrics(self, job: _Job, body: Any, query: dict[str, str]) -> list[dict[str, float]]:
        """Filters in the query string (the SDK 3.1.1) or in a GET body (the spec's older form)."""
        rows = self._metrics(job)
        if body is not None and not isinstance(body, dict):
            raise ApiError(400, "Invalid request — the filter must be a JSON object")
        given: dict[str, Any] = {**(body or {}), **query}
        bounds: list[int | None] = []
        for name in ("global_step_from", "global_step_to"):
            value = given.get(name)
            if isinstance(value, str):
                value = int(value) if value.lstrip("-").isdigit() else value
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ApiError(400, f"{name} must be an integer", param=name)
            bounds.append(value)
        low, high = bounds
        return [
            r for r in rows
            if (low is None or r["train/global_step"] >= low) and (high is None or r["train/global_step"] <= high)
        ]  # fmt: skip


def serve_forever(
    api_key: str,
    port: int,
    step_seconds: float,
    host: str = "127.0.0.1",
    *,
    budget: float = 100.0,
    stop: threading.Event | None = None,
) -> None:
    """Run a LocalTogether on wall-clock time until Ctrl-C, SIGTERM or `stop` (`slackbot sandbox together`)."""
    done = stop or threading.Event()
    api = LocalTogether(api_key, host=host, port=port, clock=SystemClock(), step_seconds=step_seconds, budget=budget)
    api.start()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: done.set())
    log.info("local Together API listening on %s (use it as TOGETHER_BASE_URL)", api.url)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()

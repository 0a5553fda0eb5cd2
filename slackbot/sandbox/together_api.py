"""A local Together AI fine-tuning API on loopback, with controllable time and injectable faults.

It answers the endpoints the bot uses (shared/together/NOTES.md) with the spec's shapes and the fields the SDK
3.1.1 requires, serves the upload flow the SDK uses (presigned PUT to this same server), prices jobs against a
configurable budget, and moves jobs through their statuses by clock time, with events and metrics that grow
step by step, so tests advance a `ManualClock` instead of sleeping.
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any, Unpack

from slackbot.sandbox.clock import SystemClock
from slackbot.sandbox.serving import Fault
from slackbot.sandbox.stand_in import Serving, StandIn, StandInError, iso
from slackbot.sandbox.together_files import SEED_FILES, SEED_LINE, Files
from slackbot.sandbox.together_http import ApiError, TogetherHandler, parse_multipart
from slackbot.sandbox.together_rules import SUPPORTED_MODELS, checked, estimate, job_price, model_limits
from slackbot.sandbox.together_training import GLOBAL_STEPS_PER_STEP, PROGRESSION, TRAINING_STEPS, Job, JobCourse

__all__ = ["PROGRESSION", "SUPPORTED_MODELS", "TRAINING_STEPS", "LocalTogether", "serve_forever"]

NANODOLLARS = 1_000_000_000  # total_price's unit (the SDK's CLI divides by it)
USER_ID = "user_local_sandbox"


class LocalTogether(JobCourse, StandIn):
    """See the module docstring; faults, the request log and serving come from `StandIn`, files from `Files`,
    a job's course by time from `JobCourse`, what a create may ask from together_rules."""

    name, title, api_root, base_path = "together", "Together", "/v1", ""  # TOGETHER_BASE_URL: the API is under /v1
    error = ApiError
    missing_fields = ("data", "id", "status", "models")
    handler = TogetherHandler

    def __init__(
        self, api_key: str = "tgp_local_test", *, budget: float = 100.0, seed: bool = True, **serving: Unpack[Serving]
    ) -> None:
        super().__init__(api_key, **serving)
        self.budget = budget  # dollars: an estimate above it says allowed_to_proceed: false
        self._jobs: dict[str, Job] = {}
        self._files = Files(self.clock)
        self.raw_requests: list[tuple[str, str, dict[str, str], str]] = []  # method, path, query, content type
        self.puts: list[tuple[str, bool]] = []  # presigned uploads: file id, whether an Authorization came along
        self.chats: list[dict[str, Any]] = []  # chat completion bodies received
        if seed:
            for name, purpose, lines in SEED_FILES:
                self.add_file(
                    name, SEED_LINE * lines, purpose=purpose, file_id=f"file-{uuid.uuid5(uuid.NAMESPACE_URL, name)}"
                )

    # --- state for tests --------------------------------------------------------------------------------

    def add_file(self, name: str, data: bytes, *, purpose: str = "fine-tune", file_id: str | None = None) -> str:
        with self._lock:
            return self._files.add(name, data, purpose=purpose, file_id=file_id)

    def file_data(self, file_id: str) -> bytes | None:
        with self._lock:
            return self._files.data(file_id)

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

    def job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            return self._render(self._jobs[job_id], full=True)

    # --- what Together says -----------------------------------------------------------------------------

    @staticmethod
    def template(path: str) -> str:
        path = re.sub(r"^/fine-tunes/(?!models/|estimate-price$)[^/]+", "/fine-tunes/{id}", path)
        return re.sub(r"^/files/(?!upload$)[^/]+", "/files/{id}", path)

    def _refused_key(self) -> StandInError:
        return ApiError(
            401,
            "Invalid API key provided. You can find your API key at api.together.ai/settings/api-keys.",
            code="invalid_api_key",
        )

    def _bad_json(self) -> StandInError:
        return ApiError(400, "Invalid JSON in the request body")

    def _parse(self, raw: bytes, content_type: str) -> Any:
        if not content_type.startswith("multipart/form-data"):
            return super()._parse(raw, content_type)
        try:
            return parse_multipart(content_type, raw)
        except ApiError as exc:
            return exc

    def _record(
        self, method: str, path: str, body: Any, fault: Fault | None, query: dict[str, str], content_type: str
    ) -> None:
        if isinstance(body, dict) and body and all(isinstance(v, bytes) for v in body.values()):
            body = {k: v.decode("utf-8", "replace") for k, v in body.items()}  # a form, as text
        with self._lock:
            super()._record(method, path, body, fault, query, content_type)
            self.raw_requests.append((method, path, query, content_type))

    def _outside_api(
        self, method: str, path: str, query: dict[str, str], data: bytes, authorization: bool
    ) -> tuple[int, Any] | None:
        """The presigned storage URL: no API key, no API faults (it is another host in real life)."""
        if method != "PUT" or not path.startswith("/upload/"):
            return None
        file_id = path.removeprefix("/upload/")
        with self._lock:
            self.puts.append((file_id, authorization))
            return self._files.store_upload(file_id, query.get("X-Amz-Signature", ""), data)

    # --- jobs -------------------------------------------------------------------------------------------

    def _render(self, job: Job, *, full: bool) -> dict[str, Any]:
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
            "created_at": iso(job.created_at),
            "updated_at": iso(updated),
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
            out["started_at"] = iso(job.created_at + 2 * self.step_seconds)
        remaining = max(0.0, (len(PROGRESSION) - 1 - self._step(job)) * self.step_seconds)
        running = status in ("running", "compressing", "uploading")
        out["progress"] = {"estimate_available": running, "seconds_remaining": int(remaining) if running else 0}
        if full:
            out["events"] = self._events(job)
            out["epochs_completed"] = out["n_epochs"] if status == "completed" else 0
            out["queue_depth"] = 0
            out["param_count"] = 8_030_261_248
            out["trainingfile_numlines"] = job.tokens // 25
            out["trainingfile_size"] = len(self._files.data(body["training_file"]) or b"")
            out["job_id"] = job.id
        return out

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        template = self.template(path)
        item = path.split("/")[2] if template.count("{id}") else ""
        with self._lock:
            match method, template:
                case "GET", "/files":
                    return self._files.listing()
                case "POST", "/files":
                    return self._files.start_upload(body, self.url)
                case "POST", "/files/upload":
                    return self._files.upload_at_once(body)
                case "GET", "/files/{id}":
                    return self._files.render(self._files.find(item))
                case "POST", "/files/{id}/preprocess":
                    return self._files.preprocess(self._files.find(item, uploaded=False))
                case "GET", "/fine-tunes/models/supported":
                    return {"models": list(SUPPORTED_MODELS)}
                case "GET", "/fine-tunes/models/limits":
                    return model_limits(query.get("model_name", ""))
                case "POST", "/fine-tunes/estimate-price":
                    return estimate(checked(body, self._files, for_estimate=True), self._files, self.budget)
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

    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"Fine-tune job {job_id} not found", code="not_found")
        return job

    def _create(self, raw: Any) -> dict[str, Any]:
        body = checked(raw, self._files)
        tokens, price = job_price(body, self._files)
        job_id = f"ft-{uuid.uuid4()}"
        suffix = body.get("suffix") or job_id[3:11]
        body["model_output_name"] = f"sandbox/{body['model'].split('/')[-1]}-{suffix}"
        job = Job(job_id, body, self.clock.now(), tokens, int(price * NANODOLLARS))
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

    def _cancel(self, job: Job) -> dict[str, Any]:
        status = self._status(job)
        if status in ("completed", "error", "cancelled"):
            raise ApiError(400, f"Job {job.id} is {status} and cannot be cancelled", code="invalid_state")
        if job.cancelled_at is None:
            job.cancelled_at = self.clock.now()
            done = self._global_steps(job) / (TRAINING_STEPS * GLOBAL_STEPS_PER_STEP)
            job.price = int(job.price * done)  # billed for the steps trained, the rest refunded
        return self._render(job, full=False)


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
    api = LocalTogether(api_key, host=host, port=port, clock=SystemClock(), step_seconds=step_seconds, budget=budget)
    api.serve_until(stop)

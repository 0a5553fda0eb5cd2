"""A local Together job's course by clock time: its status every `step_seconds`, the events it logs and the
training metrics that grow step by step while it runs (and stop when it is cancelled or fails)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from slackbot.sandbox.clock import Clock
from slackbot.sandbox.stand_in import iso
from slackbot.sandbox.together_http import ApiError

# One status per step of `step_seconds`; "running" lasts TRAINING_STEPS steps.
TRAINING_STEPS = 3
GLOBAL_STEPS_PER_STEP = 5  # metric rows logged per step of training
PROGRESSION = ("pending", "queued", *(["running"] * TRAINING_STEPS), "compressing", "uploading", "completed")


@dataclass
class Job:
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


class JobCourse:
    """The course of `Job`s on the stand-in's clock (a part of `LocalTogether`)."""

    clock: Clock
    step_seconds: float

    def _step(self, job: Job, at: float | None = None) -> float:
        """Steps of `step_seconds` since the job was created (fractional), frozen when it was cancelled."""
        now = self.clock.now() if at is None else at
        if job.cancelled_at is not None:
            now = min(now, job.cancelled_at)
        return max(0.0, (now - job.created_at) / self.step_seconds)

    def _status(self, job: Job) -> str:
        if job.forced_status is not None:
            return job.forced_status
        if job.cancelled_at is not None:
            return "cancelled" if self.clock.now() >= job.cancelled_at + self.step_seconds else "cancel_requested"
        return PROGRESSION[min(int(self._step(job)), len(PROGRESSION) - 1)]

    def _global_steps(self, job: Job) -> int:
        """Training steps done: they grow while the job runs, and stop when it is cancelled or fails."""
        at = job.forced_at if job.forced_status is not None else None
        trained = self._step(job, at) - 2  # two steps of pending and queued
        return int(max(0.0, min(trained, TRAINING_STEPS)) * GLOBAL_STEPS_PER_STEP)

    def _metrics(self, job: Job) -> list[dict[str, float]]:
        rows = []
        for n in range(1, self._global_steps(job) + 1):
            t = job.created_at + (2 + n / GLOBAL_STEPS_PER_STEP) * self.step_seconds
            loss = 2.0 * 0.93**n
            row = {"train/loss": round(loss, 6), "train/global_step": float(n), "train/lr": 1e-5, "timestamp": t}
            if job.body.get("validation_file") and n % GLOBAL_STEPS_PER_STEP == 0:
                row["eval/loss"] = round(loss * 1.07, 6)
            rows.append(row)
        return rows

    def _events(self, job: Job) -> list[dict[str, Any]]:
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

    def _event(self, job: Job, at: float, kind: str, level: str, message: str) -> dict[str, Any]:
        step = self._global_steps(job) if kind in ("checkpoint_save", "job_error") else 0
        if kind == "checkpoint_save":
            step = int(message.split(" at step ", 1)[1].split(" ")[0])
        return {
            "object": "fine-tune-event",
            "created_at": iso(at),
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

    def _filtered_metrics(self, job: Job, body: Any, query: dict[str, str]) -> list[dict[str, float]]:
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

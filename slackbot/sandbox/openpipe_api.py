"""A local OpenPipe v1 API on loopback, with controllable time and injectable faults.

It answers the endpoints the bot uses with the spec's shapes, validates request bodies against the spec's own
schemas (a copy in `openpipe_openapi.json`), keeps the 2024 server's quirks (a taken slug is a 500), and
moves models through their statuses by clock time, so tests advance a `ManualClock` instead of sleeping.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Unpack

from slackbot.sandbox.clock import SystemClock
from slackbot.sandbox.openpipe_http import CODES, ApiError
from slackbot.sandbox.openpipe_schema import base_model_names, body_schema, check, spec
from slackbot.sandbox.serving import Fault
from slackbot.sandbox.stand_in import Serving, StandIn, StandInError, iso

PROGRESSION = ("PENDING", "QUEUED", "PROVISIONING", "TRAINING", "DEPLOYED")
_SEED = (("support-tickets-2026-q3", 1240), ("sql-generation-v2", 530), ("product-faq-dpo-pairs", 310))


@dataclass
class _Model:
    id: str
    slug: str
    dataset_id: str
    config: dict[str, Any]
    created_at: float
    forced_status: str | None = None
    forced_at: float = 0.0
    error_message: str | None = None


class LocalOpenPipe(StandIn):
    """See the module docstring; faults, the request log and serving come from `StandIn`."""

    name, title, api_root, base_path = "openpipe", "OpenPipe", "/api/v1", "/api/v1"
    error = ApiError
    missing_fields = ("data", "openpipe", "id")

    def __init__(self, api_key: str = "opk_local_test", *, seed: bool = True, **serving: Unpack[Serving]) -> None:
        super().__init__(api_key, **serving)
        self._spec = spec()
        self._base_models = base_model_names(self._spec)
        self._models: dict[str, _Model] = {}
        self._datasets: dict[str, dict[str, Any]] = {}
        # Seconds (real time) each chat completion takes to answer: a slow model, for Try it's time limit.
        self.chat_delay_seconds = 0.0
        if seed:
            for name, entries in _SEED:
                self.add_dataset(name, entries, dataset_id=str(uuid.uuid5(uuid.NAMESPACE_URL, name)))

    # --- state for tests --------------------------------------------------------------------------------

    def add_dataset(self, name: str, entries: int = 100, *, dataset_id: str | None = None) -> str:
        ds_id = dataset_id or str(uuid.uuid4())
        now = iso(self.clock.now())
        with self._lock:
            self._datasets[ds_id] = {"id": ds_id, "name": name, "entries": entries, "created": now}
        return ds_id

    def remove_dataset(self, dataset_id: str) -> None:
        with self._lock:
            self._datasets.pop(dataset_id, None)

    def fail_model(self, slug: str, message: str) -> None:
        """From now on the model reads as ERROR with this errorMessage."""
        with self._lock:
            model = self._models[slug]
            model.forced_status, model.error_message = "ERROR", message
            model.forced_at = self.clock.now()

    def set_status(self, slug: str, status: str) -> None:
        with self._lock:
            model = self._models[slug]
            model.forced_status, model.forced_at = status, self.clock.now()

    def models(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._render(m) for m in self._models.values()]

    def model(self, slug: str) -> dict[str, Any]:
        with self._lock:
            return self._render(self._models[slug])

    # --- behaviour --------------------------------------------------------------------------------------

    def _status(self, model: _Model) -> str:
        if model.forced_status is not None:
            return model.forced_status
        step = int((self.clock.now() - model.created_at) // self.step_seconds)
        return PROGRESSION[max(0, min(step, len(PROGRESSION) - 1))]

    def _render(self, model: _Model) -> dict[str, Any]:
        status = self._status(model)
        steps = PROGRESSION.index(status) if status in PROGRESSION else 0
        updated = model.forced_at if model.forced_status else model.created_at + steps * self.step_seconds
        hyper = {k: v for k, v in model.config.items() if k not in ("provider", "baseModel")}
        return {
            "id": model.id,
            "name": model.slug,
            "object": "model",
            "description": None,
            "created": iso(model.created_at),
            "updated": iso(updated),
            "openpipe": {
                "baseModel": model.config["baseModel"],
                "hyperparameters": hyper or None,
                "status": status,
                "datasetId": model.dataset_id,
                "errorMessage": model.error_message if status == "ERROR" else None,
            },
            "contextWindow": 32768,
            "maxCompletionTokens": 4096,
            "capabilities": ["chat", "tools", "json"],
            "pricing": {"chatIn": 0.3, "chatOut": 0.45},
            "owned_by": "openpipe",
        }

    def _dataset(self, ds: dict[str, Any]) -> dict[str, Any]:
        count = sum(1 for m in self._models.values() if m.dataset_id == ds["id"])
        return {
            "object": "dataset",
            "id": ds["id"],
            "name": ds["name"],
            "created": ds["created"],
            "updated": ds["created"],
            "dataset_entry_count": ds["entries"],
            "fine_tune_count": count,
        }

    # --- what OpenPipe says -----------------------------------------------------------------------------

    @staticmethod
    def template(path: str) -> str:
        path = re.sub(r"^/datasets/[^/]+", "/datasets/{datasetId}", path)
        return re.sub(r"^/models/[^/]+$", "/models/{slug}", path)

    def _fault_body(self, fault: Fault) -> dict[str, Any]:
        body = ApiError(fault.status, fault.message or f"Injected {fault.status}", fault.issues).body()
        return {**body, "code": CODES.get(fault.status, "INTERNAL_SERVER_ERROR")}

    def _refused_key(self) -> StandInError:
        return ApiError(401, "Missing or invalid API key")

    def _bad_json(self) -> StandInError:
        return ApiError(400, "Input validation failed", ["body: Invalid JSON"])

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        if (method, path) == ("POST", "/chat/completions") and self.chat_delay_seconds:
            # Outside the lock: a slow answer holds up only its own caller, as a busy inference server would.
            self._stopping.wait(self.chat_delay_seconds)
        with self._lock:
            if (method, path) == ("GET", "/models"):
                return {"object": "list", "data": [self._render(m) for m in self._models.values()]}
            if (method, path) == ("POST", "/models"):
                return self._create(body)
            if (method, path) == ("GET", "/datasets"):
                return {"object": "list", "data": [self._dataset(d) for d in self._datasets.values()]}
            if (method, path) == ("POST", "/chat/completions"):
                return self._chat(body)
            if path.startswith("/datasets"):
                return self._datasets_route(method, path, body)
            if self.template(path) == "/models/{slug}" and method in ("GET", "DELETE"):
                slug = path.removeprefix("/models/")
                if slug not in self._models:
                    raise ApiError(404, "Model not found")
                if method == "GET":
                    return self._render(self._models[slug])
                gone = self._models.pop(slug)
                return {"id": gone.id, "object": "model", "deleted": True}
        raise ApiError(404, f"No route for {method} {path}")

    def _create(self, body: Any) -> dict[str, Any]:
        problems = check(body_schema(self._spec, "/models"), body)
        if problems:
            raise ApiError(400, "Input validation failed", problems)
        # Same order and wording as the 2024 server, including its 500s for refusals.
        if body["datasetId"] not in self._datasets:
            raise ApiError(500, "Dataset not found")
        if body["slug"] in self._base_models:
            raise ApiError(500, "Fine tune IDs cannot match any base model names")
        if body["slug"] in self._models:
            raise ApiError(500, "Fine tune IDs have to be globally unique. Please choose a different ID.")
        model = _Model(str(uuid.uuid4()), body["slug"], body["datasetId"], body["trainingConfig"], self.clock.now())
        self._models[model.slug] = model
        return self._render(model)

    def _chat(self, body: Any) -> dict[str, Any]:
        problems = check(body_schema(self._spec, "/chat/completions"), body)
        if problems:
            raise ApiError(400, "Input validation failed", problems)
        slug = str(body["model"]).removeprefix("openpipe:")
        model = self._models.get(slug)
        if model is None or self._status(model) != "DEPLOYED":
            raise ApiError(404, f"The model `{body['model']}` does not exist or is not deployed")
        text = echo_answer(slug, body["messages"])
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(self.clock.now()),
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 11, "total_tokens": 23},
        }

    # --- datasets: create, add entries, delete -----------------------------------------------------------

    def dataset_entries(self, dataset_id: str) -> list[dict[str, Any]]:
        """The entries a dataset holds (for tests)."""
        with self._lock:
            return list(self._datasets[dataset_id].get("rows", []))

    def dataset_ids(self) -> list[str]:
        with self._lock:
            return list(self._datasets)

    def refuse_entries(self, marker: str, message: str) -> None:
        """From now on an entry whose JSON contains `marker` is not created and is listed in the answer's errors."""
        with self._lock:
            self._refused = (marker, message)

    def _datasets_route(self, method: str, path: str, body: Any) -> dict[str, Any]:
        if (method, path) == ("POST", "/datasets"):
            problems = check(body_schema(self._spec, "/datasets"), body)
            if problems:
                raise ApiError(400, "Input validation failed", problems)
            ds_id = self.add_dataset(body["name"], 0)
            self._datasets[ds_id]["rows"] = []
            return self._dataset(self._datasets[ds_id])
        template = self.template(path)
        ds_id = path.split("/")[2]
        if template not in ("/datasets/{datasetId}", "/datasets/{datasetId}/entries") or not ds_id:
            raise ApiError(404, f"No route for {method} {path}")
        if ds_id not in self._datasets:
            raise ApiError(404, "Dataset not found")
        if (method, template) == ("DELETE", "/datasets/{datasetId}"):
            self._datasets.pop(ds_id)
            return {"id": ds_id, "object": "dataset", "deleted": True}
        if (method, template) == ("POST", "/datasets/{datasetId}/entries"):
            problems = check(body_schema(self._spec, "/datasets/{datasetId}/entries"), body)
            if problems:
                raise ApiError(400, "Input validation failed", problems[:20])
            if not 1 <= len(body["entries"]) <= 100:
                raise ApiError(400, "Input validation failed", ["entries: Array must contain 1 to 100 element(s)"])
            marker, message = getattr(self, "_refused", (None, ""))
            errors, rows = [], self._datasets[ds_id].setdefault("rows", [])
            for index, entry in enumerate(body["entries"]):
                if marker is not None and marker in json.dumps(entry):
                    errors.append(
                        {"object": "dataset.entries.creation.error", "entry_index": index, "message": message}
                    )
                else:
                    rows.append(entry)
            created = len(body["entries"]) - len(errors)
            self._datasets[ds_id]["entries"] += created
            return {
                "object": "dataset.entries.creation",
                "entries_created": created,
                "errors": {"object": "list", "data": errors},
            }
        raise ApiError(404, f"No route for {method} {path}")


def echo_answer(slug: str, messages: list[Any]) -> str:
    """The sandbox model's answer: deterministic, naming the model and echoing the last user message, so a test
    can tell which question was answered by which model."""
    said = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    last = said[-1] if said else ""
    if isinstance(last, list):  # content parts: their text, in order
        last = " ".join(str(p.get("text", "")) for p in last if isinstance(p, dict))
    return f"[{slug}] You said: {last}"


def serve_forever(
    api_key: str, port: int, step_seconds: float, host: str = "127.0.0.1", *, stop: threading.Event | None = None
) -> None:
    """Run a LocalOpenPipe on wall-clock time until Ctrl-C, SIGTERM or `stop` (for `slackbot sandbox openpipe`)."""
    LocalOpenPipe(api_key, host=host, port=port, clock=SystemClock(), step_seconds=step_seconds).serve_until(stop)
